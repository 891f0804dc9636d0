"""The Host header check that defeats DNS rebinding.

A page on ``evil.example`` can point its own name at 127.0.0.1 and have the browser send it requests to a
server on localhost, same-origin as far as the browser knows. Those requests still say ``Host: evil.example``.
So the server answers only the names it is meant to be reached by: the loopback names, the address it is
bound to (any IP address when it is bound to all of them: an address is not a name anyone can rebind) and
the names in ``allowed_hosts``; anything else gets a JSON 421.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from sdrest.config import ServerConfig

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
WILDCARD_ADDRESSES = frozenset({"", "0.0.0.0", "::"})


def host_name(header: str) -> str:
    """The name in a Host header, without its port, brackets or trailing dot, in lower case."""
    value = header.strip().lower()
    if value.startswith("["):
        return value[1:].partition("]")[0]
    if value.count(":") == 1:
        value = value.partition(":")[0]
    return value.rstrip(".")


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class HostPolicy:
    """Which Host names the server answers."""

    names: frozenset[str]
    any_name: bool = False
    any_address: bool = False

    @classmethod
    def from_config(cls, config: ServerConfig) -> HostPolicy:
        """Loopback names, the bound address and ``allowed_hosts`` (``*``: anything)."""
        extra = {host_name(n) for n in config.allowed_hosts.split(",") if n.strip()}
        bound = host_name(config.host)
        return cls(names=frozenset(LOOPBACK_NAMES | extra | {bound}), any_name="*" in extra,
                   any_address=bound in WILDCARD_ADDRESSES)

    def allows(self, header: str) -> bool:
        """Whether a request with this Host header is answered."""
        name = host_name(header)
        return self.any_name or name in self.names or (self.any_address and _is_ip(name))


class HostGuard:
    """ASGI middleware: a request whose Host the policy refuses gets a JSON 421 and goes no further.

    A request without a Host header (HTTP/1.0) passes: browsers always send one.
    """

    def __init__(self, app: ASGIApp, policy: HostPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for name, value in scope.get("headers", []):
                if name == b"host":
                    host = value.decode("latin-1")
                    if not self.policy.allows(host):
                        await self._refuse(send, host)
                        return
                    break
        await self.app(scope, receive, send)

    async def _refuse(self, send: Send, host: str) -> None:
        message = (f"this server does not answer to the host {host[:100]!r}; "
                   "add it to allowed_hosts (SDREST_ALLOWED_HOSTS) to reach it by that name")
        data = json.dumps({"error": {"code": "misdirected", "message": message}}).encode()
        await send({"type": "http.response.start", "status": 421,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(data)).encode())]})
        await send({"type": "http.response.body", "body": data})
