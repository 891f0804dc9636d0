"""API errors: every error is JSON ``{"error": {"code", "message", "field"?}}`` with the right status."""

from __future__ import annotations

import logging
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

log = logging.getLogger("sdrest.server")

_CODES = {400: "bad_request", 403: "forbidden", 404: "not_found", 405: "method_not_allowed", 409: "conflict",
          413: "too_large", 415: "unsupported_media_type", 421: "misdirected", 422: "invalid", 429: "queue_full",
          500: "internal", 503: "unavailable"}


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


async def api_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """ApiError -> JSON."""
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, exc.field, exc.headers)


async def http_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """Starlette's HTTPException (404 route, 405 method) -> JSON."""
    assert isinstance(exc, HTTPException)
    message = exc.detail if isinstance(exc.detail, str) else "error"
    if exc.status_code == 404 and message == "Not Found":
        message = f"no route {request.url.path}"
    return error_response(exc.status_code, _CODES.get(exc.status_code, "error"), message, headers=exc.headers)


async def internal_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """Anything unforeseen: logged, answered as a 500 without internals."""
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, "internal", "internal server error")


def exception_handlers() -> dict[Any, Any]:
    """The handlers to give Starlette."""
    return {ApiError: api_error_handler, HTTPException: http_error_handler, Exception: internal_error_handler}
