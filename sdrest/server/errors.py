"""API errors: every error is JSON ``{"error": {"code", "message", "field"?}}`` with the right status."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Match
from starlette.types import Message, Scope, Send

log = logging.getLogger("sdrest.server")

_CODES = {400: "bad_request", 403: "forbidden", 404: "not_found", 405: "method_not_allowed", 409: "conflict",
          413: "too_large", 415: "unsupported_media_type", 421: "misdirected", 422: "invalid", 429: "queue_full",
          500: "internal", 503: "unavailable"}


#: where a route that answers errors in its own dialect's shape (A1111, OpenAI) puts its formatter in the scope
ERROR_FORMAT = "sdrest.error_format"


class ApiError(Exception):
    """An error answered as JSON. ``field`` names the request field at fault."""

    def __init__(self, status: int, message: str, *, field: str | None = None, code: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.code = code or _CODES.get(status, "error")
        self.headers = headers


def invalid(field: str, message: str) -> ApiError:
    """A 422 about one field; the message starts with the field name."""
    return ApiError(422, message if message.startswith(field) else f"{field}: {message}", field=field)


def error_response(status: int, code: str, message: str, field: str | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    """The JSON error body."""
    body: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        body["field"] = field
    return JSONResponse({"error": body}, status_code=status, headers=headers)


#: turns an error into the response a dialect's clients expect
ErrorFormat = Callable[[ApiError], Response]


def _answer(request: Request, error: ApiError) -> Response:
    """``error`` in the shape of the route's dialect (set by the route), else the native JSON."""
    formatter: ErrorFormat | None = request.scope.get(ERROR_FORMAT)
    if formatter is not None:
        return formatter(error)
    return error_response(error.status, error.code, error.message, error.field, error.headers)


def _dialect_of(scope: Scope) -> ErrorFormat | None:
    """The error format of the route ``scope`` is for: the one the route set, else the one of the route its path
    matches (for a refusal made before any route ran); None for a native route."""
    found: ErrorFormat | None = scope.get(ERROR_FORMAT)
    if found is not None:
        return found
    router = getattr(scope.get("app"), "router", None)
    for route in getattr(router, "routes", ()):
        dialect = getattr(route, "error_format", None)
        if dialect is not None and route.matches(scope)[0] != Match.NONE:
            return dialect  # type: ignore[no-any-return]
    return None


async def send_error(scope: Scope, send: Send, status: int, code: str, message: str,
                     headers: tuple[tuple[bytes, bytes], ...] = ()) -> None:
    """The JSON error body, sent straight through ASGI (for middleware, which answers before any route), in the
    shape of the dialect of the route it was meant for."""
    dialect = _dialect_of(scope)
    if dialect is not None:
        error = ApiError(status, message, code=code,
                         headers={name.decode("latin-1"): value.decode("latin-1") for name, value in headers})
        await dialect(error)(scope, _no_body, send)
        return
    data = json.dumps({"error": {"code": code, "message": message}}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": data})


async def _no_body() -> Message:
    """The ``receive`` of a response sent in place of the route's: the request is not read any further."""
    return {"type": "http.disconnect"}


async def api_error_handler(request: Request, exc: Exception) -> Response:
    """ApiError -> JSON."""
    assert isinstance(exc, ApiError)
    return _answer(request, exc)


async def http_error_handler(request: Request, exc: Exception) -> Response:
    """Starlette's HTTPException (404 route, 405 method) -> JSON."""
    assert isinstance(exc, HTTPException)
    message = exc.detail if isinstance(exc.detail, str) else "error"
    if exc.status_code == 404 and message == "Not Found":
        message = f"no route {request.url.path}"
    return _answer(request, ApiError(exc.status_code, message, code=_CODES.get(exc.status_code, "error"),
                                     headers=dict(exc.headers or {})))


async def internal_error_handler(request: Request, exc: Exception) -> Response:
    """Anything unforeseen: logged, answered as a 500 without internals."""
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return _answer(request, ApiError(500, "internal server error", code="internal"))


def exception_handlers() -> dict[Any, Any]:
    """The handlers to give Starlette."""
    return {ApiError: api_error_handler, HTTPException: http_error_handler, Exception: internal_error_handler}
