"""Log-in, tokens, API keys, users and the audit log: ``/api/auth/*`` (and the seed's ``/api/v1/auth/*``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse

from sdrest.auth.passwords import check_new_password, hash_password
from sdrest.auth.service import PASSWORD_MODES, AuthFailure, Authenticator, Principal
from sdrest.auth.store import ROLES, USER, AuthStoreError
from sdrest.server.auth import (cleared_cookies, client_address, failure_of, maybe_principal, principal_of,
                                session_cookies)
from sdrest.server.body import read_json
from sdrest.server.errors import ApiError, invalid
from sdrest.server.query import Integer, Text, schemas
from sdrest.server.spec import ADMIN, PUBLIC, ApiRoute, Schema
from sdrest.server.state import state_of

#: answers that carry credentials are never stored by a cache
NO_STORE = {"Cache-Control": "no-store"}
_STRING: Schema = {"type": "string", "minLength": 1, "maxLength": 1024}
_USER: Schema = {"type": "object", "properties": {"username": {"type": "string"}, "role": {"type": "string"}}}
TOKENS_SCHEMA: Schema = {"type": "object", "properties": {
    "access_token": {"type": "string"}, "refresh_token": {"type": "string"}, "token_type": {"type": "string"},
    "expires_in": {"type": "integer"}, "csrf_token": {"type": "string"}, "user": _USER}}
LOGIN_SCHEMA: Schema = {"type": "object", "required": ["username", "password"], "properties": {
    "username": _STRING, "password": _STRING,
    "cookie": {"type": "boolean", "description": "start a browser session (an HttpOnly cookie) instead of tokens"}}}
REFRESH_SCHEMA: Schema = {"type": "object", "required": ["refresh_token"], "properties": {"refresh_token": _STRING}}
NEW_USER_SCHEMA: Schema = {"type": "object", "required": ["username", "password"], "properties": {
    "username": _STRING, "password": _STRING, "role": {"type": "string", "enum": list(ROLES)}}}
UPDATE_USER_SCHEMA: Schema = {"type": "object", "properties": {
    "role": {"type": "string", "enum": list(ROLES)}, "disabled": {"type": "boolean"}}}
PASSWORD_SCHEMA: Schema = {"type": "object", "required": ["password"], "properties": {"password": _STRING}}
NEW_KEY_SCHEMA: Schema = {"type": "object", "required": ["label"], "properties": {
    "label": {"type": "string", "minLength": 1, "maxLength": 100}}}
AUDIT_LIMIT = Integer("limit", 100, "most lines, newest first", minimum=1, maximum=1000)
AUDIT_USER = Text("username", None, "only this user's lines")


def _auth(request: Request) -> Authenticator:
    return state_of(request).auth


def _string(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise invalid(name, "required: a non-empty string")
    if len(value) > 1024:
        raise invalid(name, "at most 1024 characters")
    return value


async def _run(function: Callable[..., Any], *args: Any) -> Any:
    """Call a blocking auth function in a thread; its AuthFailure (or AuthStoreError) as an API error."""
    try:
        return await anyio.to_thread.run_sync(function, *args)
    except AuthFailure as failure:
        headers = dict(NO_STORE)
        if failure.retry_after:
            headers["Retry-After"] = str(failure.retry_after)
        raise ApiError(failure.status, failure.message, code=failure.code, headers=headers) from None
    except AuthStoreError as exc:
        raise ApiError(409 if "already exists" in str(exc) else 422, str(exc)) from None
    except ValueError as exc:
        raise ApiError(422, str(exc), field="password") from None


# -- log-in and tokens ------------------------------------------------------------------


async def login(request: Request) -> JSONResponse:
    auth = _auth(request)
    body = await read_json(request)
    username, password = _string(body, "username"), _string(body, "password")
    cookie = body.get("cookie", False)
    if not isinstance(cookie, bool):
        raise invalid("cookie", "expected true or false")
    if auth.mode not in PASSWORD_MODES:
        raise ApiError(400, f"this server does not log users in (auth {auth.mode})"
                       + ("; send an API key instead" if auth.enabled else ""), code="no_login")
    address = client_address(request.scope)
    if not cookie:
        return JSONResponse(await _run(auth.login, username, password, address), headers=NO_STORE)
    user = await _run(auth.check_password, username, password, address, "login")
    session, csrf = await _run(auth.start_session, user)
    response = JSONResponse({"token_type": "cookie", "csrf_token": csrf, "expires_in": int(auth.tokens.refresh_seconds),
                             "user": {"username": user.username, "role": user.role}}, headers=NO_STORE)
    for name, value in session_cookies(auth, session, csrf, secure=request.url.scheme == "https"):
        response.headers.append(name, value)
    return response


async def refresh(request: Request) -> JSONResponse:
    auth = _auth(request)
    token = _string(await read_json(request), "refresh_token")
    if auth.mode not in PASSWORD_MODES:
        raise ApiError(400, f"this server issues no tokens (auth {auth.mode})", code="no_login")
    return JSONResponse(await _run(auth.refresh, token, client_address(request.scope)), headers=NO_STORE)


async def validate(request: Request) -> JSONResponse:
    principal = principal_of(request)
    return JSONResponse({"valid": True, "user": principal.to_dict(), "expires_at": principal.expires})


async def me(request: Request) -> JSONResponse:
    """Who the request is, and what the server's mode lets them do (public: a client asks before logging in)."""
    auth = _auth(request)
    principal = maybe_principal(request)
    failure = failure_of(request)
    if principal is None:
        message = failure.message if failure is not None else "not logged in"
        raise ApiError(401, message, code="unauthorized", headers={"WWW-Authenticate": 'Bearer realm="sdrest"'})
    return JSONResponse({**principal.to_dict(), "auth": auth.mode, "login": auth.mode in PASSWORD_MODES,
                         "permissions": ["admin", "generate"] if principal.is_admin else ["generate"]})


async def logout(request: Request) -> JSONResponse:
    auth = _auth(request)
    principal = principal_of(request)
    if principal.via in ("token", "cookie"):
        await _run(auth.logout, principal, client_address(request.scope))
    response = JSONResponse({"logged_out": principal.via in ("token", "cookie"), "via": principal.via},
                            headers=NO_STORE)
    if principal.via == "cookie":
        for name, value in cleared_cookies(secure=request.url.scheme == "https"):
            response.headers.append(name, value)
    return response


# -- API keys ---------------------------------------------------------------------------


def _user_principal(request: Request) -> Principal:
    principal = principal_of(request)
    if principal.guest or principal.owner is None:
        raise ApiError(403, "only a signed-in user has API keys", code="forbidden")
    return principal


async def list_keys(request: Request) -> JSONResponse:
    principal = _user_principal(request)
    keys = await _run(_auth(request).store.keys, principal.username)
    return JSONResponse({"keys": [k.to_dict() for k in keys]})


async def add_key(request: Request) -> JSONResponse:
    principal = _user_principal(request)
    label = _string(await read_json(request), "label")
    auth = _auth(request)
    record, key = await _run(auth.store.add_key, principal.username, label)
    await _run(auth.store.audit, principal.username, client_address(request.scope), "api_key", "created",
               f"key {record.id}")
    return JSONResponse({**record.to_dict(), "key": key, "note": "shown once: store it now"}, status_code=201,
                        headers=NO_STORE)


async def revoke_key(request: Request) -> JSONResponse:
    principal = principal_of(request)
    key_id = request.path_params["key_id"]
    auth = _auth(request)
    owner = None if principal.is_admin else principal.username
    if not await _run(auth.store.revoke_key, key_id, owner):
        raise ApiError(404, f"no live key {key_id!r}", field="key_id")
    await _run(auth.store.audit, principal.username, client_address(request.scope), "api_key", "revoked",
               f"key {key_id}")
    return JSONResponse({"id": key_id, "revoked": True})


# -- users (admins) ---------------------------------------------------------------------


async def list_users(request: Request) -> JSONResponse:
    users = await _run(_auth(request).store.users)
    return JSONResponse({"users": [u.to_dict() for u in users]})


async def add_user(request: Request) -> JSONResponse:
    body = await read_json(request)
    username, password = _string(body, "username"), _string(body, "password")
    role = body.get("role", USER)
    if role not in ROLES:
        raise invalid("role", f"expected one of {', '.join(ROLES)}")
    try:
        check_new_password(password)
    except ValueError as exc:
        raise invalid("password", str(exc)) from None
    auth = _auth(request)
    user = await _run(auth.store.add_user, username, role, await anyio.to_thread.run_sync(hash_password, password))
    await _run(auth.store.audit, principal_of(request).username, client_address(request.scope), "users", "created",
               f"user {username} ({role})")
    return JSONResponse(user.to_dict(), status_code=201)


def _known(auth: Authenticator, username: str) -> None:
    if auth.store.user(username) is None:
        raise ApiError(404, f"no user named {username!r}", field="username")


async def update_user(request: Request) -> JSONResponse:
    auth = _auth(request)
    username = request.path_params["username"]
    body = await read_json(request)
    await _run(_known, auth, username)
    if "role" in body:
        if body["role"] not in ROLES:
            raise invalid("role", f"expected one of {', '.join(ROLES)}")
        await _run(auth.store.set_role, username, body["role"])
    if "disabled" in body:
        if not isinstance(body["disabled"], bool):
            raise invalid("disabled", "expected true or false")
        await _run(auth.store.set_disabled, username, body["disabled"])
    await _run(auth.store.audit, principal_of(request).username, client_address(request.scope), "users", "changed",
               f"user {username}: {', '.join(sorted(k for k in body if k in ('role', 'disabled')))}")
    return JSONResponse(auth.store.user(username).to_dict())  # type: ignore[union-attr]


async def remove_user(request: Request) -> JSONResponse:
    auth = _auth(request)
    username = request.path_params["username"]
    await _run(_known, auth, username)
    await _run(auth.store.remove_user, username)
    await _run(auth.store.audit, principal_of(request).username, client_address(request.scope), "users", "removed",
               f"user {username}")
    return JSONResponse({"username": username, "removed": True})


async def set_password(request: Request) -> JSONResponse:
    auth = _auth(request)
    username = request.path_params["username"]
    password = _string(await read_json(request), "password")
    try:
        check_new_password(password)
    except ValueError as exc:
        raise invalid("password", str(exc)) from None
    await _run(_known, auth, username)
    await _run(auth.store.set_password, username, await anyio.to_thread.run_sync(hash_password, password))
    await _run(auth.store.audit, principal_of(request).username, client_address(request.scope), "users",
               "password set", f"user {username}")
    return JSONResponse({"username": username, "password_changed": True})


async def audit(request: Request) -> JSONResponse:
    limit, username = AUDIT_LIMIT.read(request), AUDIT_USER.read(request)
    return JSONResponse({"entries": await _run(_auth(request).store.audit_log, limit, username)})


def _aliased(paths: tuple[str, ...], endpoint: Callable[[Request], Awaitable[Any]], **kwargs: Any) -> list[ApiRoute]:
    return [ApiRoute(path, endpoint, **kwargs) for path in paths]


def routes() -> list[ApiRoute]:
    """The auth routes; log-in and refresh under both the native and the seed's ``/api/v1`` paths."""
    tag = "auth"
    credentials_errors = (400, 401, 429, 503)
    return [
        *_aliased(("/api/auth/login", "/api/v1/auth/login"), login, methods=["POST"], summary="Log in", tag=tag,
                  request=LOGIN_SCHEMA, response=TOKENS_SCHEMA, errors=credentials_errors, access=PUBLIC),
        *_aliased(("/api/auth/refresh", "/api/v1/auth/refresh"), refresh, methods=["POST"],
                  summary="New tokens for a refresh token", tag=tag, request=REFRESH_SCHEMA, response=TOKENS_SCHEMA,
                  errors=credentials_errors, access=PUBLIC),
        ApiRoute("/api/auth/validate", validate, methods=["GET"], summary="Check the credentials", tag=tag),
        *_aliased(("/api/auth/me", "/api/v1/auth/profile"), me, methods=["GET"], summary="Who am I", tag=tag,
                  errors=(401,), access=PUBLIC),
        *_aliased(("/api/auth/logout", "/api/v1/auth/logout"), logout, methods=["POST"], summary="Log out", tag=tag),
        ApiRoute("/api/auth/keys", list_keys, methods=["GET"], summary="My API keys", tag=tag),
        ApiRoute("/api/auth/keys", add_key, methods=["POST"], summary="A new API key (shown once)", tag=tag,
                 request=NEW_KEY_SCHEMA, status=201),
        ApiRoute("/api/auth/keys/{key_id}", revoke_key, methods=["DELETE"], summary="Revoke an API key", tag=tag),
        ApiRoute("/api/auth/audit", audit, methods=["GET"], summary="The audit log", tag=tag, access=ADMIN,
                 query=schemas((AUDIT_LIMIT, AUDIT_USER))),
        ApiRoute("/api/users", list_users, methods=["GET"], summary="Users", tag=tag, access=ADMIN),
        ApiRoute("/api/users", add_user, methods=["POST"], summary="Add a user", tag=tag, access=ADMIN,
                 request=NEW_USER_SCHEMA, status=201, errors=(409,)),
        ApiRoute("/api/users/{username}", update_user, methods=["POST"], summary="Change a user's role or disable",
                 tag=tag, access=ADMIN, request=UPDATE_USER_SCHEMA),
        ApiRoute("/api/users/{username}", remove_user, methods=["DELETE"], summary="Remove a user", tag=tag,
                 access=ADMIN),
        ApiRoute("/api/users/{username}/password", set_password, methods=["POST"], summary="Set a user's password",
                 tag=tag, access=ADMIN, request=PASSWORD_SCHEMA),
    ]
