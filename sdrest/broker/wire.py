"""What crosses Redis: key names, the records written there, and paths made portable between hosts.

Keys (all under the namespace, ``sdrest`` by default):

- ``{ns}:inbox:{worker}``: a stream per worker holding the job dispatched to it, read through the consumer
  group ``sdrest``; the entry stays pending while the worker holds it, and its idle time is the lease
  (the worker renews it with ``XCLAIM ... JUSTID``; the API node reclaims it with ``XAUTOCLAIM``).
- ``{ns}:events``: one stream of what workers report (progress, previews, outcomes, model news, replies),
  read by the API node through the consumer group ``api``, so an answer given while it restarts waits for it.
- ``{ns}:control:{worker}``: a list of control messages (cancel, load, unload) for one worker.
- ``{ns}:worker:{worker}``: the worker's heartbeat (what it is and holds), expiring unless renewed.
- ``{ns}:caps:{worker}``: what the worker's build offers (sampler names, versions), kept while it lives.
- ``{ns}:workers``: the set of worker names seen.
"""

from __future__ import annotations

import json
import logging
import re
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

try:
    import redis
except ModuleNotFoundError as missing:  # the broker extra is not installed
    raise ModuleNotFoundError("a broker needs redis-py: pip install 'sdrest[broker]' (or pip install redis)",
                              name=missing.name) from None

T = TypeVar("T")

#: Redis errors that mean "not reachable now": retried, never fatal.
UNREACHABLE = (redis.ConnectionError, redis.TimeoutError)
#: The consumer group on every inbox, and the API node's group on the events stream.
WORKER_GROUP, API_GROUP = "sdrest", "api"
#: The events stream keeps about this many entries (older ones were read long ago).
EVENTS_MAXLEN = 10_000
#: A path under the models dir, as it crosses hosts: each end puts its own models dir in its place.
MODELS = "{models}/"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$")


def check_name(name: str, what: str = "worker name") -> str:
    """``name`` when it is usable in key names (letters, digits, ``_.:@-``), else ValueError."""
    if not _NAME.match(name):
        raise ValueError(f"{what} {name!r}: use letters, digits and _.:@- (at most 128)")
    return name


@dataclass(frozen=True)
class Keys:
    """The key names of one namespace."""

    namespace: str = "sdrest"

    def __post_init__(self) -> None:
        check_name(self.namespace, "broker namespace")

    def inbox(self, worker: str) -> str:
        """The stream of jobs dispatched to ``worker``."""
        return f"{self.namespace}:inbox:{worker}"

    def control(self, worker: str) -> str:
        """The list of control messages for ``worker``."""
        return f"{self.namespace}:control:{worker}"

    def heartbeat(self, worker: str) -> str:
        """``worker``'s expiring heartbeat."""
        return f"{self.namespace}:worker:{worker}"

    def capabilities(self, worker: str) -> str:
        """What ``worker``'s build offers."""
        return f"{self.namespace}:caps:{worker}"

    @property
    def events(self) -> str:
        """The stream of what workers report."""
        return f"{self.namespace}:events"

    @property
    def workers(self) -> str:
        """The set of worker names seen."""
        return f"{self.namespace}:workers"


def connect(url: str) -> Any:
    """A Redis client for ``url`` (``redis://host:port/db``, ``rediss://``, ``unix://``), answers as text."""
    return redis.Redis.from_url(url, decode_responses=True, socket_connect_timeout=5, socket_timeout=30,
                                health_check_interval=30)


class BrokerRefused(ValueError):
    """The broker answers but refuses this client: a wrong or missing password, a database it does not have."""


def redact(url: str) -> str:
    """``url`` without its password (``redis://user:***@host:6379/0``), to show in messages and logs."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


def check_broker(client: Any, url: str) -> None:
    """Ask the broker at ``url`` for a PONG. Raises :class:`BrokerRefused` when it refuses this client and
    ``ConnectionError`` when nobody answers, each with one line that names the URL without its password."""
    try:
        client.ping()
    except (redis.AuthenticationError, redis.ResponseError) as exc:  # before ConnectionError: its subclass
        raise BrokerRefused(f"the broker at {redact(url)} refuses this client: {exc}") from None
    except UNREACHABLE as exc:
        raise ConnectionError(f"cannot reach the broker at {redact(url)}: {exc}") from None


def relocate(value: Any, old: str, new: str) -> Any:
    """``value`` (JSON: dicts, lists, strings) with every string that starts with ``old`` starting with ``new``."""
    if isinstance(value, str):
        return new + value[len(old):] if old and value.startswith(old) else value
    if isinstance(value, Mapping):
        return {k: relocate(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [relocate(v, old, new) for v in value]
    return value


def folder_prefix(path: Any) -> str:
    """A folder as the prefix of the paths under it (``/models/``); empty for None."""
    return str(path).rstrip("/") + "/" if path else ""


def dumps(record: Mapping[str, Any]) -> str:
    """One record as stored in a stream entry or a key."""
    return json.dumps(record, separators=(",", ":"))


def loads(text: str | bytes) -> dict[str, Any]:
    """A record read back; an empty dict when it is not one of ours."""
    try:
        value = json.loads(text)
    except (ValueError, TypeError):
        return {}
    return value if isinstance(value, dict) else {}


def create_group(client: redis.Redis, stream: str, group: str, start: str) -> None:
    """Create consumer ``group`` on ``stream`` (and the stream) reading from ``start``; a no-op when it exists."""
    try:
        client.xgroup_create(stream, group, id=start, mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def settle(client: redis.Redis, stream: str, group: str, entry_id: str) -> None:
    """Acknowledge entry ``entry_id`` of ``stream`` for ``group`` and delete it: it is done with."""
    client.pipeline().xack(stream, group, entry_id).xdel(stream, entry_id).execute()


class Complaints:
    """What goes wrong with Redis, said in ``log`` at most every 10 s (an outage must not flood the log)."""

    def __init__(self, log: logging.Logger) -> None:
        self._log = log
        self._last = 0.0

    def call(self, fn: Callable[[], T]) -> T | None:
        """``fn()``, or None when Redis is unreachable."""
        try:
            return fn()
        except UNREACHABLE as exc:
            self.say(f"Redis is unreachable: {exc}")
            return None

    def say(self, message: str) -> None:
        """Log ``message`` as a warning unless one was logged in the last 10 s."""
        now = time.monotonic()
        if now - self._last > 10:
            self._last = now
            self._log.warning("%s", message)
