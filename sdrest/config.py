"""Server settings: one schema read from flags, environment (``SDREST_*``) and a YAML file.

Precedence, lowest first: the defaults below, the config file, the environment,
the command-line flags. Every field has exactly one name in each: ``--queue-limit``,
``SDREST_QUEUE_LIMIT``, ``queue_limit:``.
"""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ENV_PREFIX = "SDREST_"
#: the ``auth`` modes (docs/security.md)
AUTH_MODES = ("none", "api-key", "jwt", "pam", "unix", "optional")
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


def _setting(default: Any, help: str, choices: tuple[str, ...] | None = None, *, secret: bool = False) -> Any:
    return field(default=default, metadata={"help": help, "choices": choices, "secret": secret})


@dataclass(frozen=True)
class ServerConfig:
    """Everything ``sdrest serve`` can be told. Paths are resolved by :func:`load_config`."""

    # One schema: each field carries its help text and choices, for flags, env and the file alike.
    host: str = _setting("127.0.0.1", "address to bind")
    port: int = _setting(8080, "port to bind")
    models_dir: Path | None = _setting(None, "folder of models (checkpoints/, lora/, vae/, esrgan/ ...)")  # noqa: RUF009
    data_dir: Path = _setting(Path("sdrest-data"), "folder for the job database and the outputs")  # noqa: RUF009
    ui_dir: Path | None = _setting(None, "serve the web UI at /ui/ from this folder instead of the one "  # noqa: RUF009
                                         "installed with the package")
    devices: str = _setting("default", "devices, comma-separated, each served by its own worker process: "
                                       "'default' (what the build sees) or GPU indices such as 0,1")
    workers: int = _setting(1, "worker processes per device, each owning one native context (0, with a broker: "
                               "none on this node, only workers that join through the broker)")
    n_threads: int | None = _setting(None, "CPU threads per native context (default: physical cores)")
    queue_limit: int = _setting(100, "most jobs waiting in the queue; past it requests get 429")
    queue_order: str = _setting("fair", "the order waiting jobs are served in: fair (round-robin over their owners, "
                                        "so one user's batch does not hold back everyone else) or fifo (by arrival)",
                                ("fair", "fifo"))
    broker: str | None = _setting(None, "a Redis URL (redis://host:6379/0): dispatch jobs through it to workers on "
                                        "other hosts too (sdrest worker; docs/scaling.md)")
    broker_namespace: str = _setting("sdrest", "the prefix of every Redis key (several servers may share one Redis)")
    lease_seconds: float = _setting(30.0, "a remote worker that stops renewing its job's lease this long has the job "
                                          "taken back and run again elsewhere (up to max_attempts)")
    on_interrupted: str = _setting("requeue", "what happens to a job that was running when the server stopped",
                                   ("requeue", "fail"))
    max_attempts: int = _setting(2, "most times a job runs when a server stop or a lost remote worker interrupts "
                                    "it (a job that crashes its worker is never run again)")
    cancel_grace_seconds: float = _setting(10.0, "a cancelled job whose worker has not stopped this long after "
                                                 "has its worker killed and restarted (and at a server stop, "
                                                 "a worker still busy this long after is killed)")
    job_timeout_seconds: float = _setting(0.0, "fail a job running longer than this, killing its worker if it "
                                               "does not stop (0: no limit)")
    retention_days: float = _setting(0.0, "delete finished jobs and their outputs older than this (0: keep forever)")
    idle_unload_seconds: float = _setting(0.0, "unload a model idle this long (0: keep it loaded)")
    memory_budget_mb: int = _setting(0, "unload models when this process uses more (0: no budget)")
    header_timeout_seconds: float = _setting(10.0, "close a connection that has not sent a whole request head "
                                                   "this long after it opened or after its last response")
    keep_alive_seconds: int = _setting(5, "close an idle keep-alive connection after this long")
    max_connections: int = _setting(1000, "most connections and requests at once; past it new ones get 503")
    max_body_mb: float = _setting(50.0, "largest request body accepted")
    max_pixels: int = _setting(4096 * 4096, "largest width*height accepted for a generation")
    max_steps: int = _setting(500, "largest step count accepted")
    max_batch: int = _setting(16, "largest batch_count accepted")
    default_model: str | None = _setting(None, "model used when a request names none")
    log_level: str = _setting("info", "log level", ("debug", "info", "warning", "error"))
    log_file: Path | None = _setting(None, "also log to this file, rotated at 10 MiB (5 kept)")  # noqa: RUF009
    models_links: str = _setting("follow", "links in the models dir: follow them all, or only those whose target "
                                 "is inside the models dir (hardened installs)", ("follow", "inside"))
    allowed_hosts: str = _setting("", "more names clients may reach the server by (the Host header), comma-separated; "
                                  "loopback names and the bound address always work; * allows any")
    # -- authentication (docs/security.md) --
    auth: str = _setting("none", "who may use the server: none (anyone who reaches it; loopback only unless "
                         "allow_unauthenticated_network), api-key, jwt (local users and API keys), pam or unix "
                         "(system users), optional (guests may generate, signed-in users get their own space)",
                         AUTH_MODES)
    allow_unauthenticated_network: bool = _setting(False, "with auth none, allow binding an address other than "
                                                          "loopback (anyone who reaches the port can do anything)")
    pam_service: str = _setting("sdrest", "the PAM service for auth pam (install.sh writes /etc/pam.d/sdrest; "
                                          "'login' is used where that file is absent)")
    admin_users: str = _setting("", "system users (auth pam or unix) who are admins, comma-separated")
    jwt_secret: str | None = _setting(None, "the HS256 signing secret (default: generated into the data dir, "
                                            "mode 0600)", secret=True)
    access_token_minutes: float = _setting(15.0, "lifetime of an access token (and of a session cookie's idle time)")
    refresh_token_days: float = _setting(14.0, "lifetime of a refresh token and of a browser session")
    signed_url_seconds: int = _setting(3600, "lifetime of a signed output URL")
    login_attempts: int = _setting(5, "failed logins (per user name, and per client address) before back-off")
    login_backoff_seconds: float = _setting(30.0, "the first back-off after too many failed logins; it doubles "
                                                  "with each further failure, up to an hour")
    max_queued_per_user: int = _setting(20, "most unfinished jobs one user (not an admin) may have at once "
                                            "(0: no limit)")
    requests_per_minute: int = _setting(60, "most generation requests per minute from one user (not an admin) "
                                            "(0: no limit)")
    cors_origins: str = _setting("", "origins (scheme://host[:port]) whose pages may call the API, "
                                     "comma-separated; none by default")
    # -- images given as URLs --
    url_images: bool = _setting(False, "accept http(s) URLs for input images and answer /api/image/download "
                                       "(public addresses only, see url_fetch_allow)")
    url_fetch_allow: str = _setting("", "networks (CIDR) URL downloads may reach although they are not public, "
                                        "comma-separated")
    url_max_mb: float = _setting(20.0, "largest image a URL download may fetch")
    url_timeout_seconds: float = _setting(15.0, "longest a URL download may take, redirects included")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly copy (paths as strings); secrets show only whether they are set."""
        secret = {f.name for f in dataclasses.fields(self) if f.metadata.get("secret")}
        return {k: ("(set)" if v else None) if k in secret else (str(v) if isinstance(v, Path) else v)
                for k, v in dataclasses.asdict(self).items()}

    @property
    def device_list(self) -> list[str]:
        """The devices, one worker process (times ``workers``) each; empty when the setting is malformed."""
        items = [item.strip() for item in self.devices.split(",")]
        if not items or any(not (item == "default" or item.isascii() and item.isdigit()) for item in items):
            return []
        return items

    @property
    def origin_list(self) -> list[str]:
        """``cors_origins`` as a list, each without a trailing slash."""
        return [item.strip().rstrip("/") for item in self.cors_origins.split(",") if item.strip()]

    @property
    def url_fetch_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        """``url_fetch_allow`` as networks (a bare address is one host)."""
        return _fetch_networks(self.url_fetch_allow)

    @property
    def admin_list(self) -> list[str]:
        """``admin_users`` as a list."""
        return [item.strip() for item in self.admin_users.split(",") if item.strip()]

    @property
    def db_path(self) -> Path:
        """The SQLite job store."""
        return self.data_dir / "jobs.sqlite3"

    @property
    def outputs_dir(self) -> Path:
        """Where job outputs live (one folder per job)."""
        return self.data_dir / "outputs"


def _fetch_networks(text: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """Comma-separated CIDRs (``"10.1.0.0/16, fd00::/8"``) as networks; ValueError naming one that is none."""
    out = []
    for item in (part.strip() for part in text.split(",")):
        if item:
            try:
                out.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                raise ValueError(f"url_fetch_allow: {item!r} is not a network (CIDR such as 10.1.0.0/16)") from None
    return tuple(out)


def _fields() -> list[dataclasses.Field]:
    return list(dataclasses.fields(ServerConfig))


def _base_type(f: dataclasses.Field) -> str:
    """The field's type name without ``None`` (``"int"`` for ``int | None``)."""
    text = str(f.type).replace("Optional[", "").rstrip("]")
    return text.replace(" | None", "").replace("None | ", "")


def _coerce(f: dataclasses.Field, value: Any) -> Any:
    """``value`` (a string from env/flags, or a YAML scalar) as the field's type; ValueError naming it."""
    if value is None:
        return None
    kind = _base_type(f)
    try:
        if kind == "int":
            if isinstance(value, bool):
                raise ValueError
            out: Any = int(value)
        elif kind == "float":
            out = float(value)
        elif kind == "bool":
            text = str(value).strip().lower()
            if not isinstance(value, bool) and text not in _TRUE | _FALSE:
                raise ValueError
            out = value if isinstance(value, bool) else text in _TRUE
        elif kind == "Path":
            out = Path(os.path.expanduser(str(value)))
        else:
            out = str(value)
    except (TypeError, ValueError):
        raise ValueError(f"{f.name}: expected {kind}, got {value!r}") from None
    choices = f.metadata.get("choices")
    if choices and out not in choices:
        raise ValueError(f"{f.name}: expected one of {', '.join(choices)}, got {value!r}")
    return out


def add_arguments(parser: argparse.ArgumentParser, only: Collection[str] | None = None) -> None:
    """Add one ``--flag`` per setting (``only`` those named; defaults left None so unset flags do not override)."""
    parser.add_argument("--config", type=Path, default=None, help="YAML config file (env: SDREST_CONFIG)")
    for f in _fields():
        if only is not None and f.name not in only:
            continue
        flag = "--" + f.name.replace("_", "-")
        help_text = f"{f.metadata['help']} (env: {ENV_PREFIX}{f.name.upper()}, default: {f.default})"
        if _base_type(f) == "bool":
            parser.add_argument(flag, dest=f.name, default=None, action=argparse.BooleanOptionalAction, help=help_text)
        else:
            parser.add_argument(flag, dest=f.name, default=None, choices=f.metadata.get("choices"), help=help_text)


def load_config(
    flags: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    config_file: Path | None = None,
) -> ServerConfig:
    """Merge defaults, ``config_file``, ``environ`` and ``flags`` into a :class:`ServerConfig`."""
    environ = os.environ if environ is None else environ
    flags = dict(flags or {})
    names = {f.name: f for f in _fields()}
    values: dict[str, Any] = {}
    path = config_file or flags.pop("config", None) or environ.get(ENV_PREFIX + "CONFIG")
    if path:
        loaded = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"config: {path} must hold a mapping")
        for key, value in loaded.items():
            key = str(key).replace("-", "_")
            if key not in names:
                raise ValueError(f"config: unknown setting {key!r} in {path}")
            values[key] = _coerce(names[key], value)
    for name, f in names.items():
        env_value = environ.get(ENV_PREFIX + name.upper())
        if env_value is not None and env_value != "":
            values[name] = _coerce(f, env_value)
    for name, value in flags.items():
        if name in names and value is not None:
            values[name] = _coerce(names[name], value)
    config = ServerConfig(**values)
    return validate(config)


def validate(config: ServerConfig) -> ServerConfig:
    """Check ranges; returns ``config`` with paths made absolute."""
    if not 0 <= config.port <= 65535:
        raise ValueError(f"port: must be 0..65535, got {config.port}")
    if config.workers < (0 if config.broker else 1):
        raise ValueError("workers: must be at least 1 (0 only with a broker)")
    if config.broker is not None and not config.broker.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError("broker: expected a Redis URL such as redis://127.0.0.1:6379/0")
    if config.lease_seconds < 1:
        raise ValueError("lease_seconds: must be at least 1")
    if not config.device_list:
        raise ValueError("devices: expected 'default' or GPU indices such as 0,1")
    if config.max_attempts < 1:
        raise ValueError("max_attempts: must be at least 1")
    if config.cancel_grace_seconds < 0 or config.job_timeout_seconds < 0:
        raise ValueError("cancel_grace_seconds, job_timeout_seconds: must not be negative")
    if config.queue_limit < 1:
        raise ValueError("queue_limit: must be at least 1")
    if min(config.max_queued_per_user, config.requests_per_minute, config.login_attempts) < 0:
        raise ValueError("max_queued_per_user, requests_per_minute, login_attempts: must not be negative")
    if config.access_token_minutes <= 0 or config.refresh_token_days <= 0 or config.signed_url_seconds <= 0:
        raise ValueError("access_token_minutes, refresh_token_days, signed_url_seconds: must be positive")
    if config.url_max_mb <= 0 or config.url_timeout_seconds <= 0:
        raise ValueError("url_max_mb, url_timeout_seconds: must be positive")
    _fetch_networks(config.url_fetch_allow)
    if "*" in config.origin_list:
        raise ValueError("cors_origins: list the origins; '*' would let every site use a signed-in browser")
    models = config.models_dir.resolve() if config.models_dir else None
    ui_dir = config.ui_dir.resolve() if config.ui_dir else None
    if ui_dir is not None and not (ui_dir / "index.html").is_file():
        raise ValueError(f"ui_dir: {ui_dir} holds no index.html")
    return dataclasses.replace(config, data_dir=config.data_dir.resolve(), models_dir=models, ui_dir=ui_dir)
