"""Who makes each request, and whether they may: the HTTP side of :mod:`sdrest.auth`.

:class:`Authenticate` (ASGI middleware) reads the credentials of every request once:
``Authorization: Bearer <access token or API key>``, ``X-API-Key``, ``Authorization: Basic`` (user name and
password, or ``apikey:<key>``), or the browser's session cookie, which needs the CSRF header on every request
that changes something. With ``auth optional`` a request without credentials is a guest, known by a signed guest
cookie. The principal goes into the request's scope; each route then checks its own ``access``
(:meth:`sdrest.server.spec.ApiRoute.handle` calls :func:`authorize`).
"""

from __future__ import annotations

import hmac
from http.cookies import SimpleCookie

import anyio
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sdrest.auth.service import LOCAL, OPTIONAL, Authenticator, AuthFailure, Principal
from sdrest.server.errors import ApiError, send_error
from sdrest.server.spec import ADMIN, PUBLIC

SESSION_COOKIE = "sdrest_session"
CSRF_COOKIE = "sdrest_csrf"
GUEST_COOKIE = "sdrest_guest"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: what a 401 answers in ``WWW-Authenticate`` (not Basic: browsers would pop up a password dialog)
CHALLENGE = 'Bearer realm="sdrest"'

_PRINCIPAL, _FAILURE = "sdrest.principal", "sdrest.auth_failure"


def client_address(scope: Scope) -> str | None:
    """The client's address (as uvicorn saw it: behind a trusted proxy, the forwarded one)."""
    client = scope.get("client")
    return client[0] if client else None


def _cookies(headers: dict[bytes, str]) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(headers.get(b"cookie", ""))
    except Exception:  # a malformed Cookie header is no cookie at all  # noqa: BLE001
        return {}
    return {name: morsel.value for name, morsel in jar.items()}


def cookie_header(name: str, value: str, *, max_age: int, http_only: bool, secure: bool) -> bytes:
    """A ``Set-Cookie`` value: SameSite=Strict, path /, Secure over https."""
    parts = [f"{name}={value}", "Path=/", f"Max-Age={max_age}", "SameSite=Strict"]
    if http_only:
        parts.append("HttpOnly")
    if secure:
        parts.append("Secure")
    return "; ".join(parts).encode("latin-1")


class Authenticate:
    """ASGI middleware: the request's principal (or why its credentials were refused) into the scope."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        auth: Authenticator = scope["app"].state.sdrest.auth
        headers = {name: value.decode("latin-1") for name, value in scope.get("headers", [])
                   if name in (b"authorization", b"x-api-key", b"cookie", b"x-csrf-token")}
        cookies = _cookies(headers)
        new_guest: str | None = None
        principal: Principal | None = None
        if not auth.enabled:
            principal = LOCAL
        else:
            if b"authorization" in headers or b"x-api-key" in headers or SESSION_COOKIE in cookies:
                try:  # a password or a key is checked off the event loop (argon2, PAM, SQLite)
                    principal = await anyio.to_thread.run_sync(_credentials, auth, headers, cookies,
                                                               client_address(scope))
                except AuthFailure as failure:
                    scope[_FAILURE] = failure
            if principal is None and _FAILURE not in scope and auth.mode == OPTIONAL:
                guest = auth.guests.check(cookies.get(GUEST_COOKIE, ""))
                if guest is None:
                    new_guest = auth.guests.new()
                    guest = auth.guests.check(new_guest)
                principal = auth.guest(guest)  # type: ignore[arg-type]
        if (principal is not None and principal.via == "cookie" and scope["method"] not in SAFE_METHODS
                and not hmac.compare_digest(headers.get(b"x-csrf-token", ""), principal.csrf or "")):
            await send_error(scope, send, 403, "csrf", "a request made with the session cookie must carry the "
                                                       "X-CSRF-Token header (the value of the sdrest_csrf cookie)")
            return
        scope[_PRINCIPAL] = principal
        if new_guest is None:
            await self.app(scope, receive, send)
            return
        secure = scope.get("scheme") == "https"

        async def send_with_guest(message: Message) -> None:
            if message["type"] == "http.response.start":
                cookie = cookie_header(GUEST_COOKIE, new_guest, max_age=int(auth.tokens.refresh_seconds),
                                       http_only=True, secure=secure)
                message = {**message, "headers": [*message.get("headers", []), (b"set-cookie", cookie)]}
            await send(message)

        await self.app(scope, receive, send_with_guest)


def _credentials(auth: Authenticator, headers: dict[bytes, str], cookies: dict[str, str],
                 address: str | None) -> Principal | None:
    """The principal the request's credentials name; None without credentials; AuthFailure for bad ones."""
    authorization = headers.get(b"authorization", "").strip()
    if authorization:
        scheme, _, value = authorization.partition(" ")
        scheme, value = scheme.lower(), value.strip()
        if scheme == "bearer" and value:
            return auth.from_bearer(value, address)
        if scheme == "basic" and value:
            return auth.from_basic(value, address)
        raise AuthFailure("the Authorization header must be 'Bearer <token or API key>' or 'Basic <credentials>'")
    key = headers.get(b"x-api-key", "").strip()
    if key:
        return auth.from_key(key, address)
    session = cookies.get(SESSION_COOKIE)
    if session:
        found = auth.from_session(session)
        if found is None:
            raise AuthFailure("the session has ended: log in again", code="session_ended")
        return found
    return None


def authorize(scope: Scope, access: str) -> None:
    """Let the request through to a route with ``access``, or raise the ApiError saying why not."""
    if access == PUBLIC:
        return
    failure: AuthFailure | None = scope.get(_FAILURE)
    if failure is not None:
        headers = {"WWW-Authenticate": CHALLENGE} if failure.status == 401 else {}
        if failure.retry_after:
            headers["Retry-After"] = str(failure.retry_after)
        raise ApiError(failure.status, failure.message, code=failure.code, headers=headers)
    auth: Authenticator = scope["app"].state.sdrest.auth
    if auth.enabled and auth.needs_admin():
        raise ApiError(503, "no admin exists yet: create one with `sdrest users add NAME --role admin --data-dir "
                            f"{auth.config.data_dir}`", code="no_admin")
    principal: Principal | None = scope.get(_PRINCIPAL)
    if principal is None:
        raise ApiError(401, "authentication required: send 'Authorization: Bearer <token or API key>', "
                            "X-API-Key, or log in at /api/auth/login", code="unauthorized",
                       headers={"WWW-Authenticate": CHALLENGE})
    if access == ADMIN and not principal.is_admin:
        raise ApiError(403, "only an admin may do this", code="forbidden")


def principal_of(request: Request) -> Principal:
    """The principal of a request that :func:`authorize` let through to a route that is not public."""
    principal = request.scope.get(_PRINCIPAL)
    if principal is None:
        raise ApiError(401, "authentication required", headers={"WWW-Authenticate": CHALLENGE})
    return principal


def maybe_principal(request: Request) -> Principal | None:
    """The principal of a request to a public route, if its credentials named one."""
    return request.scope.get(_PRINCIPAL)


def failure_of(request: Request) -> AuthFailure | None:
    """Why the request's credentials were refused, if they were."""
    return request.scope.get(_FAILURE)


def session_cookies(auth: Authenticator, session_id: str, csrf: str, *, secure: bool) -> list[tuple[str, str]]:
    """The ``Set-Cookie`` headers that start a browser session (the session itself, and the CSRF token)."""
    age = int(auth.tokens.refresh_seconds)
    return [("set-cookie", cookie_header(SESSION_COOKIE, session_id, max_age=age, http_only=True,
                                         secure=secure).decode()),
            ("set-cookie", cookie_header(CSRF_COOKIE, csrf, max_age=age, http_only=False, secure=secure).decode())]


def cleared_cookies(*, secure: bool) -> list[tuple[str, str]]:
    """The ``Set-Cookie`` headers that end a browser session."""
    return [("set-cookie", cookie_header(name, "", max_age=0, http_only=name != CSRF_COOKIE, secure=secure).decode())
            for name in (SESSION_COOKIE, CSRF_COOKIE)]


def sees(request: Request, owner: str | None) -> bool:
    """Whether the request's principal may see something owned by ``owner``."""
    principal: Principal | None = request.scope.get(_PRINCIPAL)
    return principal is not None and principal.sees(owner)


def owner_filter(principal: Principal) -> str | None:
    """The owner to filter listings by: None for admins (everything), else the principal's own."""
    return None if principal.is_admin else principal.owner
