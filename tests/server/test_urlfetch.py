"""``sdrest.server.urlfetch`` on its own: which addresses the policy refuses and why, that a refused URL never
opens a connection, that the host is resolved once and connected to as resolved, that https still checks the
certificate against the URL's host, and the redirect, size and time limits."""

from __future__ import annotations

import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from certificates import self_signed
from url_hosts import ImageServer, Trap

from sdrest.config import ServerConfig, validate
from sdrest.server import urlfetch
from sdrest.server.urlfetch import (
    AddressPolicy,
    UrlFetcher,
    UrlFetchError,
    UrlRefused,
    fetch,
)

#: the image server's address: loopback, so refused unless exempt
IMAGE_HOST = "127.0.0.3"
EXEMPT = AddressPolicy(allow=(ipaddress.ip_network(f"{IMAGE_HOST}/32"),))
MAX_BYTES = 10_000

REFUSED_ADDRESSES = [
    ("127.0.0.1", "a loopback address"), ("127.255.255.254", "a loopback address"), ("::1", "a loopback address"),
    ("10.0.0.1", "a private address"), ("172.16.0.1", "a private address"), ("172.31.255.255", "a private address"),
    ("192.168.1.1", "a private address"), ("100.64.0.1", "a shared (carrier-grade NAT) address"),
    ("169.254.169.254", "the cloud metadata address"), ("fd00:ec2::254", "the cloud metadata address"),
    ("169.254.10.10", "a link-local address"), ("fe80::1", "a link-local address"),
    ("224.0.0.1", "a multicast address"), ("239.255.255.250", "a multicast address"), ("ff02::1", "a multicast address"),
    ("0.0.0.0", "an unspecified ('this network') address"), ("0.1.2.3", "an unspecified ('this network') address"),
    ("::", "an unspecified address"), ("240.0.0.1", "a reserved address"), ("255.255.255.255", "a reserved address"),
    ("192.0.2.1", "a documentation address"), ("198.51.100.7", "a documentation address"),
    ("203.0.113.9", "a documentation address"), ("2001:db8::1", "a documentation address"),
    ("198.18.0.1", "a benchmarking address"), ("fc00::1", "a private (unique local) address"),
    ("fd12:3456::1", "a private (unique local) address"), ("fec0::1", "a site-local address"),
    ("::ffff:127.0.0.1", "the IPv4-mapped form of 127.0.0.1, a loopback address"),
    ("::ffff:10.0.0.1", "the IPv4-mapped form of 10.0.0.1, a private address"),
    ("::ffff:169.254.169.254", "the IPv4-mapped form of 169.254.169.254, the cloud metadata address"),
    ("64:ff9b::7f00:1", "the NAT64 form of 127.0.0.1, a loopback address"),
    ("64:ff9b::a9fe:a9fe", "the NAT64 form of 169.254.169.254, the cloud metadata address"),
    ("2002:7f00:1::", "a 6to4 address embedding 127.0.0.1, a loopback address"),
    ("2002:c0a8:101::1", "a 6to4 address embedding 192.168.1.1, a private address"),
    ("2001:0:4136:e378:8000:63bf:80ff:fffe", "a Teredo address embedding 127.0.0.1, a loopback address"),
    ("::7f00:1", "an IPv4-compatible address embedding 127.0.0.1, a loopback address"),
    ("100::1", "a reserved address"), ("64:ff9b:1::1", "a reserved address"),
]
PUBLIC_ADDRESSES = ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808",
                    "2002:808:808::1"]


@pytest.mark.parametrize(("address", "reason"), REFUSED_ADDRESSES, ids=[a for a, _ in REFUSED_ADDRESSES])
def test_the_policy_refuses_every_address_that_is_not_public_and_says_why(address: str, reason: str) -> None:
    assert AddressPolicy().refusal(ipaddress.ip_address(address)) == reason


@pytest.mark.parametrize("address", PUBLIC_ADDRESSES)
def test_the_policy_allows_public_addresses_and_their_ipv6_forms(address: str) -> None:
    assert AddressPolicy().refusal(ipaddress.ip_address(address)) is None


def test_exempt_networks_are_allowed_in_their_ipv4_mapped_form_too_and_nothing_else_is() -> None:
    policy = AddressPolicy(allow=(ipaddress.ip_network("10.1.0.0/16"), ipaddress.ip_network("fd00:1::/32")))
    for address in ("10.1.2.3", "::ffff:10.1.2.3", "fd00:1::5"):
        assert policy.refusal(ipaddress.ip_address(address)) is None, address
    for address in ("10.2.0.1", "127.0.0.1", "fd00:2::5", "2002:a01:203::"):
        assert policy.refusal(ipaddress.ip_address(address)) is not None, address


def test_the_settings_build_the_fetcher_and_a_bad_network_is_a_config_error(tmp_path: Path) -> None:
    config = validate(ServerConfig(data_dir=tmp_path, url_fetch_allow="10.1.0.0/16, 192.168.7.7",
                                   url_max_mb=0.5, url_timeout_seconds=2.5))
    fetcher = UrlFetcher.from_config(config)
    assert fetcher.policy.allow == (ipaddress.ip_network("10.1.0.0/16"), ipaddress.ip_network("192.168.7.7/32"))
    assert (fetcher.max_bytes, fetcher.timeout) == (512 * 1024, 2.5)
    with pytest.raises(ValueError, match="url_fetch_allow: 'intranet' is not a network"):
        validate(ServerConfig(data_dir=tmp_path, url_fetch_allow="10.0.0.0/8,intranet"))
    with pytest.raises(ValueError, match="url_max_mb"):
        validate(ServerConfig(data_dir=tmp_path, url_max_mb=0))


# -- a refused URL opens no connection ------------------------------------------------------------------------


@pytest.fixture
def connects(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every connection :func:`fetch` would open (none is: the spy refuses them all)."""
    seen: list[Any] = []

    def spy(infos: list[Any], deadline: float) -> socket.socket:
        seen.append(infos)
        raise ConnectionError("the spy connects nowhere")

    monkeypatch.setattr(urlfetch, "_connect", spy)
    return seen


REFUSED_URLS = [
    ("http://127.0.0.1:8080/", "127.0.0.1 is a loopback address"),
    ("http://2130706433/", "2130706433 is 127.0.0.1, a loopback address"),
    ("http://0x7f.1/", "0x7f.1 is 127.0.0.1, a loopback address"),
    ("http://0177.0.0.1/", "0177.0.0.1 is 127.0.0.1, a loopback address"),
    ("http://127.1/", "127.1 is 127.0.0.1, a loopback address"),
    ("http://0/", "0 is 0.0.0.0, an unspecified ('this network') address"),
    ("http://localhost/", "localhost is a loopback name"), ("http://localhost./", "localhost. is a loopback name"),
    ("http://LocalHost:9/", "localhost is a loopback name"), ("http://api.localhost/", "api.localhost is a loopback name"),
    ("http://[::1]/", "::1 is a loopback address"),
    ("http://[::ffff:127.0.0.1]/", "::ffff:127.0.0.1 is the IPv4-mapped form of 127.0.0.1"),
    ("http://[::ffff:7f00:1]/", "the IPv4-mapped form of 127.0.0.1"),
    ("http://[::ffff:10.0.0.1]/", "the IPv4-mapped form of 10.0.0.1, a private address"),
    ("http://[64:ff9b::7f00:1]/", "the NAT64 form of 127.0.0.1"),
    ("http://[2002:7f00:1::]/", "a 6to4 address embedding 127.0.0.1"),
    ("http://[fe80::1%25eth0]/", "a link-local address"),
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is the cloud metadata address"),
    ("https://169.254.169.254/", "169.254.169.254 is the cloud metadata address"),
    ("http://10.0.0.1/", "10.0.0.1 is a private address"), ("http://192.168.0.1/", "192.168.0.1 is a private address"),
    ("http://172.16.0.1/", "172.16.0.1 is a private address"),
    ("http://100.64.0.1/", "100.64.0.1 is a shared (carrier-grade NAT) address"),
    ("http://[fc00::1]/", "fc00::1 is a private (unique local) address"),
    ("http://user:secret@8.8.8.8/", "user names and passwords in the URL"),
    ("http://@8.8.8.8/", "user names and passwords in the URL"),
    ("ftp://8.8.8.8/image.png", "only http and https URLs are fetched"),
    ("file:///etc/passwd", "only http and https URLs are fetched"),
    ("gopher://8.8.8.8:70/", "only http and https URLs are fetched"),
    ("http:///image.png", "the URL has no host"), ("http://8.8.8.8:0/", "port 0"),
    ("http://8.8.8.8:99999/", "not a valid URL"), ("http://8.8.8.8/a b", "spaces or control characters"),
    ("http://8.8.8.8/\r\nX-Injected: 1", "spaces or control characters"),
    ("http://%31%32%37.0.0.1/", "'%31%32%37.0.0.1' is not a valid host name"),
    ("http://[::1/", "not a valid URL"), ("http://8.8.8.8/" + "a" * 3000, "longer than 2048 characters"),
]


@pytest.mark.parametrize(("url", "reason"), REFUSED_URLS, ids=[u[:60] for u, _ in REFUSED_URLS])
def test_a_refused_url_is_refused_before_any_connection(connects: list[Any], url: str, reason: str) -> None:
    with pytest.raises(UrlRefused) as caught:
        fetch(url, AddressPolicy(), MAX_BYTES, 5)
    message = str(caught.value)
    assert message.startswith("refused ") and reason in message, message
    assert connects == []
    assert "secret" not in message


def test_a_name_is_refused_when_any_of_its_addresses_is_and_its_internal_address_is_not_told(
        connects: list[Any]) -> None:
    def resolver(host: str, port: int, **kwargs: Any) -> list[Any]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("8.8.8.8", port)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.20.30.40", port))]

    with pytest.raises(UrlRefused, match=r"^refused http://intranet\.test/x\.png: intranet\.test resolves to a "
                                         r"private address$") as caught:
        fetch("http://intranet.test/x.png", AddressPolicy(), MAX_BYTES, 5, resolver=resolver)
    assert "10.20.30.40" not in str(caught.value)
    assert connects == []


# -- fetching from the (exempt) image server ----------------------------------------------------------------


@pytest.fixture(scope="module")
def images() -> Iterator[ImageServer]:
    with ImageServer(IMAGE_HOST, big=MAX_BYTES) as server:
        yield server


@pytest.fixture(scope="module")
def trap() -> Iterator[Trap]:
    """A listener on 127.0.0.2: loopback, and not exempt."""
    trap = Trap("127.0.0.2")
    yield trap
    trap.close()


def test_an_exempt_address_is_fetched(images: ImageServer) -> None:
    fetched = fetch(f"{images.base}/image.png", EXEMPT, MAX_BYTES, 5)
    assert fetched.data == images.png and fetched.content_type == "image/png"
    assert fetched.final_url == f"{images.base}/image.png"


def test_the_host_is_resolved_once_and_the_connection_goes_to_that_address(images: ImageServer,
                                                                           trap: Trap) -> None:
    # a rebinding resolver: the first answer is the image server, every later one the trap
    asked: list[str] = []

    def resolver(host: str, port: int, **kwargs: Any) -> list[Any]:
        asked.append(host)
        address = IMAGE_HOST if len(asked) == 1 else trap.host
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, images.port))]

    before = len(images.requests)
    fetched = fetch(f"http://images.test:{images.port}/image.png", EXEMPT, MAX_BYTES, 5, resolver=resolver)
    assert fetched.data == images.png
    assert asked == ["images.test"]
    assert images.requests[before:] == [("/image.png", f"images.test:{images.port}")]
    assert trap.connections() == 0


def test_relative_redirects_are_followed_up_to_three(images: ImageServer) -> None:
    fetched = fetch(f"{images.base}/hops/3", EXEMPT, MAX_BYTES, 5)
    assert fetched.data == images.png and fetched.final_url == f"{images.base}/hops/0"
    before = len(images.requests)
    with pytest.raises(UrlRefused, match=rf"^refused {images.base}/hops/4: more than 3 redirects$"):
        fetch(f"{images.base}/hops/4", EXEMPT, MAX_BYTES, 5)
    assert [path for path, _ in images.requests[before:]] == ["/hops/4", "/hops/3", "/hops/2", "/hops/1"]


@pytest.mark.parametrize(("target", "reason"), [
    ("http://127.0.0.2:{port}/", "127.0.0.2 is a loopback address"),
    ("http://[::ffff:127.0.0.2]:{port}/", "::ffff:127.0.0.2 is the IPv4-mapped form of 127.0.0.2, a loopback address"),
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is the cloud metadata address"),
    ("file:///etc/passwd", "only http and https URLs are fetched"),
])
def test_a_redirect_is_checked_like_the_url(images: ImageServer, trap: Trap, target: str, reason: str) -> None:
    url = f"{images.base}/redirect?to={target.format(port=trap.port)}"
    with pytest.raises(UrlRefused) as caught:
        fetch(url, EXEMPT, MAX_BYTES, 5)
    assert str(caught.value) == f"refused {target.format(port=trap.port)} (redirected from {url}): {reason}"
    assert trap.connections() == 0


@pytest.mark.parametrize("path", ["/big", "/big-unsized"])
def test_a_body_over_the_limit_is_refused(images: ImageServer, path: str) -> None:
    with pytest.raises(UrlRefused, match=f"^refused {images.base}{path}: the answer is larger than {MAX_BYTES} bytes$"):
        fetch(f"{images.base}{path}", EXEMPT, MAX_BYTES, 5)


@pytest.mark.parametrize("path", ["/stall", "/drip"])
def test_one_deadline_covers_the_whole_fetch(images: ImageServer, path: str) -> None:
    # /drip sends a byte every 50 ms for ever: only a deadline over all reads ends it (a timeout per read never
    # fires). The thread's join bound only keeps a broken fetch from hanging the run.
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            fetch(f"{images.base}{path}", EXEMPT, MAX_BYTES, 0.5)
        except UrlFetchError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    assert not thread.is_alive(), "the fetch outlived its deadline"
    assert [str(exc) for exc in outcome] == [f"could not fetch {images.base}{path}: no complete answer within 0.5 s"]
    assert not isinstance(outcome[0], UrlRefused)


def test_failures_say_what_happened(images: ImageServer, trap: Trap) -> None:
    with pytest.raises(UrlFetchError, match=r"/missing: answered HTTP 404$"):
        fetch(f"{images.base}/missing", EXEMPT, MAX_BYTES, 5)
    closed = socket.socket()
    closed.bind((IMAGE_HOST, 0))
    port = closed.getsockname()[1]
    closed.close()
    with pytest.raises(UrlFetchError, match=rf"could not connect to {IMAGE_HOST}:{port}$"):
        fetch(f"http://{IMAGE_HOST}:{port}/", EXEMPT, MAX_BYTES, 5)
    with pytest.raises(UrlFetchError, match=r"^could not fetch http://no-such-host\.invalid/: no-such-host\.invalid "
                                            r"could not be resolved$"):
        fetch("http://no-such-host.invalid/", EXEMPT, MAX_BYTES, 5)


# -- https: the socket is wrapped by hand, the certificate still checked against the URL's host -----------------


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(the server's context, a client context trusting only its certificate) for the name ``images.test``."""
    cert, key = self_signed(tmp_path_factory.mktemp("tls"), "images.test")
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert, key)
    client = ssl.create_default_context(cafile=str(cert))
    return server, client


def test_https_is_verified_against_the_url_host(tls: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    server_context, client_context = tls
    with ImageServer(IMAGE_HOST, tls=server_context) as https:
        def resolver(host: str, port: int, **kwargs: Any) -> list[Any]:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (IMAGE_HOST, port))]

        url = f"https://images.test:{https.port}/image.png"
        fetched = fetch(url, EXEMPT, MAX_BYTES, 5, context=client_context, resolver=resolver)
        assert fetched.data == https.png
        assert https.requests == [("/image.png", f"images.test:{https.port}")]
        # the same server by its address: the certificate does not name it
        with pytest.raises(UrlFetchError, match="its certificate is not valid .*(mismatch|match)"):
            fetch(f"https://{IMAGE_HOST}:{https.port}/image.png", EXEMPT, MAX_BYTES, 5, context=client_context)
        # the system's authorities do not know it
        with pytest.raises(UrlFetchError, match="its certificate is not valid"):
            fetch(url, EXEMPT, MAX_BYTES, 5, resolver=resolver)
        assert len(https.requests) == 1
