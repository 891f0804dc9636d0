"""The Host header check that defeats DNS rebinding.

A page on ``evil.example`` can point its own name at 127.0.0.1 and have the browser send it requests to a
server on localhost, same-origin as far as the browser knows. Those requests still say ``Host: evil.example``.
So the server answers only the names it is meant to be reached by: the loopback names, the address it is
bound to (any IP address when it is bound to all of them: an address is not a name anyone can rebind) and
the names in ``allowed_hosts``; anything else gets a JSON 421.

Cross-site requests: a page on any site may POST to a server on localhost (no body needed for
``/api/system/restart``). Browsers say where such a request comes from (``Origin``, and
``Sec-Fetch-Site``), so a request that changes anything (any method but GET, HEAD, OPTIONS) from an
origin the policy would not answer as a Host, and not listed in ``cors_origins``, gets a JSON 403. Clients
that are not browsers send neither header and pass.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from sdrest.config import ServerConfig
from sdrest.server.errors import send_error

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
    origins: frozenset[str] = frozenset()

    @classmethod
    def from_config(cls, config: ServerConfig) -> HostPolicy:
        """Loopback names, the bound address and ``allowed_hosts`` (``*``: anything)."""
        extra = {host_name(n) for n in config.allowed_hosts.split(",") if n.strip()}
        bound = host_name(config.host)
        return cls(names=frozenset(LOOPBACK_NAMES | extra | {bound}), any_name="*" in extra,
                   any_address=bound in WILDCARD_ADDRESSES, origins=frozenset(config.origin_list))

    def allows(self, header: str) -> bool:
        """Whether a request with this Host header is answered."""
        name = host_name(header)
        return self.any_name or name in self.names or (self.any_address and _is_ip(name))


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class HostGuard:
    """ASGI middleware: a request whose Host the policy refuses gets a JSON 421, an unsafe request from a
    foreign origin a JSON 403; neither goes further.

    A request without a Host header (HTTP/1.0) passes: browsers always send one.
    """

    def __init__(self, app: ASGIApp, policy: HostPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = {name: value.decode("latin-1") for name, value in scope.get("headers", [])
                       if name in (b"host", b"origin", b"sec-fetch-site")}
            host = headers.get(b"host")
            if host is not None and not self.policy.allows(host):
                await send_error(scope, send, 421, "misdirected",
                                 f"this server does not answer to the host {host[:100]!r}; add it to "
                                 "allowed_hosts (SDREST_ALLOWED_HOSTS) to reach it by that name")
                return
            if scope["method"] not in SAFE_METHODS and self._cross_site(headers):
                await send_error(scope, send, 403, "cross_site",
                                 "a cross-site request may not change anything here; send it from a page of "
                                 "this server, or from a client that is not a browser")
                return
        await self.app(scope, receive, send)

    def _cross_site(self, headers: dict[bytes, str]) -> bool:
        """Whether a browser says the request comes from another site."""
        origin = headers.get(b"origin")
        if origin is not None and origin.strip().rstrip("/") in self.policy.origins:
            return False  # a CORS origin the settings list
        if origin is not None:
            netloc = urlsplit(origin.strip()).netloc if origin.strip() != "null" else ""
            return not netloc or not self.policy.allows(netloc)
        return headers.get(b"sec-fetch-site", "").strip().lower() == "cross-site"
