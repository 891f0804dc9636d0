"""Images by URL: one GET, to public addresses only, within a size and a time limit.

A server that fetches what a client names can be made to reach what the client cannot (server-side
request forgery): its own loopback services, the intranet, a cloud's metadata service. So a fetch

- takes http and https URLs only, with a host and without ``user:password@``;
- resolves the host once, refuses it when any address it resolves to is not public
  (:class:`AddressPolicy`), and connects to one of those very addresses: no second lookup that a
  DNS rebinding could answer differently. For https the socket is wrapped here with the URL's host
  name, so the certificate is still checked against that name;
- follows at most :data:`MAX_REDIRECTS` redirects, each hop checked the same way;
- has one deadline for everything (resolving, connecting, TLS, every read and write) and a size
  cap (the ``Content-Length`` and the bytes actually read).

Every failure is a :class:`UrlFetchError` (:class:`UrlRefused` when the policy said no), whose message
names the URL and the reason in words fit for the client. Blocking: call :func:`fetch` from a worker thread.
"""

from __future__ import annotations

import http.client
import io
import ipaddress
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

from sdrest.config import ServerConfig

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
#: what ``socket.getaddrinfo`` answers: (family, type, proto, canonname, sockaddr)
AddrInfo = tuple[Any, ...]
Resolver = Callable[..., list[AddrInfo]]

MAX_REDIRECTS = 3
MAX_URL_LENGTH = 2048
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_DEFAULT_PORTS = {"http": 80, "https": 443}
_CHUNK = 64 * 1024
#: a host name once in ASCII (IDNA): labels of letters, digits, ``-`` and ``_``, an optional final dot
_HOST_NAME = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,62})(?:\.[a-z0-9_](?:[a-z0-9_-]{0,62}))*\.?")
_SHOWN_URL = 200

#: ranges named by what they are, checked first (before the general properties below), in this order
_NAMED_RANGES: tuple[tuple[Network, str], ...] = tuple((ipaddress.ip_network(net), what) for net, what in (
    ("169.254.169.254/32", "the cloud metadata address"),
    ("fd00:ec2::254/128", "the cloud metadata address"),
    ("0.0.0.0/8", "an unspecified ('this network') address"),
    ("100.64.0.0/10", "a shared (carrier-grade NAT) address"),
    ("192.0.2.0/24", "a documentation address"),
    ("198.51.100.0/24", "a documentation address"),
    ("203.0.113.0/24", "a documentation address"),
    ("2001:db8::/32", "a documentation address"),
    ("3fff::/20", "a documentation address"),
    ("198.18.0.0/15", "a benchmarking address"),
    ("10.0.0.0/8", "a private address"),
    ("172.16.0.0/12", "a private address"),
    ("192.168.0.0/16", "a private address"),
    ("fc00::/7", "a private (unique local) address"),
))
#: IPv6 prefixes whose last 32 bits are an IPv4 address that a translator reaches in their stead
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


class UrlFetchError(Exception):
    """A URL could not be fetched; the message names it and says why, in words fit for the client."""


class UrlRefused(UrlFetchError):
    """The URL, or an address or a redirect it leads to, is one the server may not fetch."""


def _category(address: Address) -> str | None:
    """What makes ``address`` unfit to fetch from (``"a loopback address"``); None for a public address."""
    for network, what in _NAMED_RANGES:
        if address.version == network.version and address in network:
            return what
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if isinstance(address, ipaddress.IPv6Address) and address.is_site_local:
        return "a site-local address"
    if address.is_reserved:
        return "a reserved address"
    if not address.is_global:
        return "not a public address"
    return None


def _translated(address: ipaddress.IPv6Address) -> tuple[str, ipaddress.IPv4Address] | None:
    """The IPv4 address that ``address`` stands for (IPv4-mapped, NAT64), with the form's name; else None."""
    if address.ipv4_mapped is not None:
        return "IPv4-mapped", address.ipv4_mapped
    if address in _NAT64:
        return "NAT64", ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _embedded(address: ipaddress.IPv6Address) -> list[tuple[str, ipaddress.IPv4Address]]:
    """The IPv4 addresses ``address`` carries inside it (6to4, Teredo, IPv4-compatible), each with its form's
    name and article (``"a 6to4"``)."""
    out: list[tuple[str, ipaddress.IPv4Address]] = []
    if address.sixtofour is not None:
        out.append(("a 6to4", address.sixtofour))
    if address.teredo is not None:
        out += [("a Teredo", inner) for inner in address.teredo]
    if address in _IPV4_COMPATIBLE and int(address) > 1:
        out.append(("an IPv4-compatible", ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)))
    return out


@dataclass(frozen=True)
class AddressPolicy:
    """Which addresses a URL download may connect to: public (globally routable) ones, and ``allow``.

    Refused: loopback, private (RFC 1918, unique local fc00::/7), shared 100.64.0.0/10, link-local (with the
    cloud metadata address 169.254.169.254), multicast, unspecified, reserved, documentation and benchmarking
    ranges, and IPv6 forms of any of them: IPv4-mapped and NAT64 addresses are judged by the IPv4 address
    they stand for; 6to4, Teredo and IPv4-compatible ones are refused when the IPv4 address inside is.
    """

    #: networks exempt from the rule (``url_fetch_allow``): an intranet image server, a test's listener
    allow: tuple[Network, ...] = ()

    def refusal(self, address: Address) -> str | None:
        """Why ``address`` may not be connected to (``"a loopback address"``); None when it may."""
        if any(address.version == network.version and address in network for network in self.allow):
            return None
        if isinstance(address, ipaddress.IPv6Address):
            translated = _translated(address)
            if translated is not None:
                form, inner = translated
                why = self.refusal(inner)
                return f"the {form} form of {inner}, {why}" if why else None
            for form, inner in _embedded(address):
                what = _category(inner)
                if what:
                    return f"{form} address embedding {inner}, {what}"
        return _category(address)


@dataclass(frozen=True)
class Fetched:
    """What a URL answered: the body, its declared ``Content-Type`` (None if none) and the URL after redirects."""

    data: bytes
    content_type: str | None
    final_url: str


@dataclass(frozen=True)
class _Target:
    """One URL, taken apart and checked: what the connection and the request need."""

    scheme: str
    host: str
    port: int
    path: str

    @property
    def address(self) -> Address | None:
        """The host when it is an IP address (``127.1`` and ``0x7f.1`` are too, as ``inet_aton`` reads them);
        None for a name."""
        try:
            return ipaddress.ip_address(self.host)
        except ValueError:
            pass
        try:
            return ipaddress.IPv4Address(socket.inet_aton(self.host))
        except OSError:
            return None

    @property
    def host_header(self) -> str:
        """The ``Host`` header: the host (bracketed when IPv6), with the port when not the scheme's own."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == _DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"


def _parse(url: str) -> _Target:
    """``url`` as a target; :class:`UrlRefused` saying what is wrong with it."""
    if len(url) > MAX_URL_LENGTH:
        raise UrlRefused(f"the URL is longer than {MAX_URL_LENGTH} characters")
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise UrlRefused("the URL holds spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UrlRefused("not a valid URL (host or port)") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise UrlRefused("only http and https URLs are fetched")
    if "@" in parts.netloc:
        raise UrlRefused("user names and passwords in the URL (user:password@host) are not accepted")
    if not parts.hostname:
        raise UrlRefused("the URL has no host")
    if port == 0:
        raise UrlRefused("port 0 cannot be connected to")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return _Target(scheme, _ascii_host(parts.hostname), port or _DEFAULT_PORTS[scheme], path)


def _ascii_host(host: str) -> str:
    """``host`` (lower case, from ``urlsplit``) as the ASCII form DNS and the ``Host`` header take."""
    if ":" in host:  # an IPv6 literal (urlsplit has removed its brackets)
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise UrlRefused(f"{host!r} is not a valid IPv6 address") from None
        return host
    try:
        ascii_host = host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise UrlRefused(f"{host!r} is not a valid host name") from None
    if not _HOST_NAME.fullmatch(ascii_host):
        raise UrlRefused(f"{host!r} is not a valid host name")
    if ascii_host.rstrip(".") == "localhost" or ascii_host.rstrip(".").endswith(".localhost"):
        raise UrlRefused(f"{host} is a loopback name")
    return ascii_host


def _remaining(deadline: float) -> float:
    """Seconds left before ``deadline``; :class:`TimeoutError` when none are."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("deadline passed")
    return left


def _resolve(target: _Target, deadline: float, resolver: Resolver) -> list[AddrInfo]:
    """Every address ``target``'s host resolves to, asked once; the lookup may not outlast ``deadline``.

    The lookup runs in a thread of its own because ``getaddrinfo`` takes no timeout: past the deadline it is
    left to finish on its own, and its answer unused.
    """
    answer: dict[str, Any] = {}

    def lookup() -> None:
        try:
            answer["infos"] = resolver(target.host, target.port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
        except (OSError, UnicodeError, ValueError):  # what getaddrinfo raises for a name it cannot resolve
            answer["infos"] = []

    thread = threading.Thread(target=lookup, name="urlfetch-resolve", daemon=True)
    thread.start()
    thread.join(_remaining(deadline))
    if thread.is_alive():
        raise TimeoutError("lookup")
    if not answer["infos"]:
        raise UrlFetchError(f"{target.host} could not be resolved")
    return answer["infos"]


def _check(target: _Target, address: Address, policy: AddressPolicy) -> None:
    """:class:`UrlRefused` when the policy refuses ``address``, one of ``target``'s; the message names the address
    only when the URL gave it (the internal address a name resolves to is not told)."""
    why = policy.refusal(address)
    if not why:
        return
    literal = target.address
    if literal is None:
        raise UrlRefused(f"{target.host} resolves to {why}")
    if target.host == str(literal) or literal.version == 6:
        raise UrlRefused(f"{target.host} is {why}")
    raise UrlRefused(f"{target.host} is {literal}, {why}")


def _connect(infos: list[AddrInfo], deadline: float) -> socket.socket:
    """A TCP connection to the first of ``infos`` that answers (each address exactly as resolved)."""
    for family, kind, proto, _, sockaddr in infos:
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(_remaining(deadline))
            sock.connect(sockaddr)
            return sock
        except TimeoutError:
            sock.close()
            raise
        except OSError:
            sock.close()
    raise ConnectionError("no address answered")


class _DeadlineSocket:
    """A connected (maybe TLS) socket whose every read and write must end before one deadline.

    ``http.client`` talks through it (``sendall``, ``makefile``, ``close``): a server that dribbles its answer
    a byte at a time cannot stretch the fetch past the deadline, as it could with a per-read timeout.
    """

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self.sock = sock
        self.deadline = deadline

    def sendall(self, data: bytes) -> None:
        """Send all of ``data`` before the deadline."""
        self.sock.settimeout(_remaining(self.deadline))
        self.sock.sendall(data)

    def recv_into(self, buffer: Any) -> int:
        """Read into ``buffer`` what has come, waiting at most until the deadline."""
        self.sock.settimeout(_remaining(self.deadline))
        return self.sock.recv_into(buffer)

    def makefile(self, mode: str = "rb") -> io.BufferedReader:
        """A buffered reader over :meth:`recv_into` (what ``http.client.HTTPResponse`` reads from)."""
        return io.BufferedReader(_Reader(self))

    def close(self) -> None:
        """Nothing: ``http.client`` closes its connection as soon as the answer's head says ``Connection:
        close``, while the body is still to be read; the fetch closes the socket when it is done."""


class _Reader(io.RawIOBase):
    """The raw stream of a :class:`_DeadlineSocket`."""

    def __init__(self, conn: _DeadlineSocket) -> None:
        super().__init__()
        self.conn = conn

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        return self.conn.recv_into(buffer)


@dataclass
class _Answer:
    """One hop's answer: a redirect's target, or the body."""

    location: str | None = None
    fetched: Fetched | None = None


def _get(target: _Target, url: str, policy: AddressPolicy, max_bytes: int, deadline: float,
         context: ssl.SSLContext | None, resolver: Resolver) -> _Answer:
    """One GET of ``target`` (whose text is ``url``): checked, connected, sent, read."""
    if target.address is not None:  # refused before anything is asked or sent
        _check(target, target.address, policy)
    infos = _resolve(target, deadline, resolver)
    for info in infos:  # every address, not only the one connected to
        _check(target, ipaddress.ip_address(info[4][0]), policy)
    try:
        sock = _connect(infos, deadline)
    except ConnectionError:
        raise UrlFetchError(f"could not connect to {target.host_header}") from None
    try:
        if target.scheme == "https":
            sock.settimeout(_remaining(deadline))
            sock = (context or ssl.create_default_context()).wrap_socket(sock, server_hostname=target.host)
        conn = http.client.HTTPConnection(target.host, target.port)  # for the request and parsing: the socket is ours
        conn.sock = _DeadlineSocket(sock, deadline)  # type: ignore[assignment]
        conn.request("GET", target.path, headers={
            "Host": target.host_header, "User-Agent": "sdrest", "Accept": "image/png, image/jpeg, image/webp",
            "Accept-Encoding": "identity", "Connection": "close"})
        response = conn.getresponse()
        if response.status in _REDIRECT_STATUSES:
            location = response.getheader("Location")
            if not location:
                raise UrlFetchError(f"answered HTTP {response.status} without a Location")
            return _Answer(location=urljoin(url, location.strip()))
        if response.status != 200:
            raise UrlFetchError(f"answered HTTP {response.status}")
        return _Answer(fetched=Fetched(_read_body(response, max_bytes), response.getheader("Content-Type"), url))
    finally:
        sock.close()


def _read_body(response: http.client.HTTPResponse, max_bytes: int) -> bytes:
    """The body, refused once it is known (``Content-Length``) or seen to be over ``max_bytes``."""
    too_large = UrlRefused(f"the answer is larger than {max_bytes} bytes")
    length = response.getheader("Content-Length", "")
    if length.strip().isdigit() and int(length) > max_bytes:
        raise too_large
    chunks: list[bytes] = []
    total = 0
    while chunk := response.read(min(_CHUNK, max_bytes + 1 - total)):
        total += len(chunk)
        if total > max_bytes:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def _shown(url: str) -> str:
    """``url`` as error messages show it: cut short, without any ``user:password@``."""
    shown = re.sub(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@", r"\1***@", url)
    return shown if len(shown) <= _SHOWN_URL else shown[:_SHOWN_URL] + "..."


def fetch(url: str, policy: AddressPolicy, max_bytes: int, timeout: float, *,
          context: ssl.SSLContext | None = None, resolver: Resolver = socket.getaddrinfo) -> Fetched:
    """GET ``url`` under ``policy``: at most ``max_bytes`` of body, everything within ``timeout`` seconds.

    ``context`` verifies https certificates (the system's trusted authorities by default); ``resolver`` is
    ``socket.getaddrinfo`` (tests pass their own). :class:`UrlRefused` when the URL, an address or a redirect
    is refused, or the body too large; :class:`UrlFetchError` for anything else that stops it.
    """
    deadline = time.monotonic() + timeout
    current = url
    for _ in range(MAX_REDIRECTS + 1):
        where = _shown(current) if current == url else f"{_shown(current)} (redirected from {_shown(url)})"
        try:
            answer = _get(_parse(current), current, policy, max_bytes, deadline, context, resolver)
        except UrlRefused as exc:
            raise UrlRefused(f"refused {where}: {exc}") from None
        except UrlFetchError as exc:
            raise UrlFetchError(f"could not fetch {where}: {exc}") from None
        except TimeoutError:
            raise UrlFetchError(f"could not fetch {where}: no complete answer within {timeout:g} s") from None
        except ssl.SSLCertVerificationError as exc:
            raise UrlFetchError(f"could not fetch {where}: its certificate is not valid "
                                f"({exc.verify_message})") from None
        except ssl.SSLError:
            raise UrlFetchError(f"could not fetch {where}: the TLS handshake failed") from None
        except (http.client.HTTPException, OSError):
            raise UrlFetchError(f"could not fetch {where}: the server did not answer valid HTTP") from None
        if answer.fetched is not None:
            return answer.fetched
        assert answer.location is not None
        current = answer.location
    raise UrlRefused(f"refused {_shown(url)}: more than {MAX_REDIRECTS} redirects")


@dataclass(frozen=True)
class UrlFetcher:
    """:func:`fetch` with the server's settings bound: ``fetcher(url)``."""

    policy: AddressPolicy
    max_bytes: int
    timeout: float
    context: ssl.SSLContext | None = None

    @classmethod
    def from_config(cls, config: ServerConfig) -> UrlFetcher:
        """The fetcher of ``url_fetch_allow``, ``url_max_mb`` and ``url_timeout_seconds``."""
        return cls(AddressPolicy(config.url_fetch_networks), int(config.url_max_mb * 1024 * 1024),
                   config.url_timeout_seconds)

    def __call__(self, url: str) -> Fetched:
        """GET ``url`` (see :func:`fetch`)."""
        return fetch(url, self.policy, self.max_bytes, self.timeout, context=self.context)
