"""Errors in the shape A1111's FastAPI server gives them: ``{"error", "detail", "body", "errors"}``.

``detail`` is what clients read. A refused field (422) has FastAPI's validation shape, a list of
``{"loc", "msg", "type"}`` naming the field by its A1111 name (``["body", "sampler_name"]``); every other error
has the message as a string. A 401 challenges for HTTP Basic, the only scheme A1111 clients know.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.responses import JSONResponse

from sdrest.server.errors import ApiError

__all__ = ["ERROR_SCHEMA", "a1111_error", "as_a1111", "field_error", "location"]

#: the challenge of a 401: A1111's (clients that wait for one before sending credentials need Basic)
BASIC_CHALLENGE = 'Basic realm="sdrest"'
#: the detail of a 401 for a request without credentials
NOT_AUTHENTICATED = ("Not authenticated: send HTTP Basic credentials (user name and password, or apikey and an API "
                     "key), or 'Authorization: Bearer <token or API key>'")

_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")

#: what the OpenAPI document says of an A1111 route's errors: A1111's shape, or the native one for the few
#: refusals made before a request reaches its route (an unknown Host, a body too large, a cross-site request)
ERROR_SCHEMA: dict[str, Any] = {"anyOf": [
    {"type": "object", "required": ["detail"], "properties": {
        "detail": {"anyOf": [{"type": "string"}, {"type": "array", "items": {
            "type": "object", "required": ["loc", "msg", "type"], "properties": {
                "loc": {"type": "array"}, "msg": {"type": "string"}, "type": {"type": "string"}}}}]},
        "error": {"type": "string"}, "body": {}, "errors": {"type": "string"}}},
    {"$ref": "#/components/schemas/Error"},
]}


def location(field: str) -> list[str | int]:
    """FastAPI's ``loc`` of a request field: ``init_images[0]`` -> ``["body", "init_images", 0]``."""
    parts: list[str | int] = ["body"]
    for name, index in _PART.findall(field):
        parts.append(int(index) if index else name)
    return parts


def field_error(field: str, message: str) -> ApiError:
    """A 422 about the A1111 field ``field``; the message starts with the field's name."""
    return ApiError(422, message if message.startswith(f"{field}:") else f"{field}: {message}", field=field)


def as_a1111(error: ApiError, fields: dict[str, str]) -> ApiError:
    """``error`` (from the native parser) naming the A1111 field a native one came from (``fields``: native name
    -> A1111 name), in its field and at the start of its message."""
    if error.field is None:
        return error
    head, dot, rest = error.field.partition(".")
    base, bracket, index = head.partition("[")
    renamed = fields.get(error.field) or (fields[base] + bracket + index + dot + rest if base in fields else None)
    if renamed is None:
        return error
    message = error.message
    if message.startswith(f"{error.field}:"):
        message = f"{renamed}:{message[len(error.field) + 1:]}"
    return ApiError(error.status, message, field=renamed, code=error.code, headers=error.headers)


class _A1111Errors:
    """The error format of the ``/sdapi/v1`` routes (:data:`sdrest.server.errors.ErrorFormat`), with the schema
    the OpenAPI document shows for it."""

    schema = ERROR_SCHEMA

    def __call__(self, error: ApiError) -> JSONResponse:
        if error.status == 401 and error.code == "unauthorized":  # no credentials at all: say how A1111's send them
            error = ApiError(401, NOT_AUTHENTICATED, code=error.code, headers=error.headers)
        validation = error.status == 422 and error.field is not None
        detail: Any = ([{"loc": location(error.field), "msg": error.message, "type": "value_error"}]  # type: ignore[arg-type]
                       if validation else error.message)
        body = {"error": "RequestValidationError" if validation else "HTTPException", "detail": detail, "body": "",
                "errors": error.message}
        headers = dict(error.headers or {})
        if error.status == 401:
            headers["WWW-Authenticate"] = BASIC_CHALLENGE
        return JSONResponse(body, status_code=error.status, headers=headers)


#: answers an error as A1111 does (``ApiRoute(error_format=a1111_error)``)
a1111_error = _A1111Errors()
