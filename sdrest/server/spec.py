"""Routes that carry their own OpenAPI description, so the document always matches the routes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from sdrest.generation_fields import ENUM_SETTING, MAXIMUM_SETTING

Schema = dict[str, Any]

ERROR_SCHEMA: Schema = {
    "type": "object", "required": ["error"],
    "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {
        "code": {"type": "string"}, "message": {"type": "string"}, "field": {"type": "string"}}}},
}
OBJECT: Schema = {"type": "object", "additionalProperties": True}

# MAXIMUM_SETTING: a schema keyword naming the server setting that bounds a value (``{"type": "integer",
# MAXIMUM_SETTING: "max_steps"}``); ENUM_SETTING: one naming the server's list a value must be one of
# (``samplers``). The served document adds ``maximum`` and ``enum`` from the running server.


def limited(schema: Schema, *, maximum: str | None = None, enum: str | None = None) -> Schema:
    """``schema`` whose maximum, or whose choices, the running server's settings give."""
    out = dict(schema)
    if maximum is not None:
        out[MAXIMUM_SETTING] = maximum
    if enum is not None:
        out[ENUM_SETTING] = enum
    return out


#: what every route can answer: a Host the server does not serve (:mod:`sdrest.server.hosts`)
EVERY_ROUTE_ERRORS = (421,)
#: what a route that changes something (not GET/HEAD) can answer: a browser's cross-site request (hosts.py)
UNSAFE_ROUTE_ERRORS = (403,)
#: what a route with query parameters can answer: a malformed one (:mod:`sdrest.server.query`)
QUERY_ERRORS = (400,)
#: what a route with a JSON body can answer: malformed or too deep (400), too large (413), not declared as JSON
#: (415), a field refused (422) (:mod:`sdrest.server.body`, :mod:`sdrest.server.middleware`)
BODY_ERRORS = (400, 413, 415, 422)
#: what a route with path parameters can answer: nothing by that name
PATH_ERRORS = (404,)

#: who may call a route: anyone, any signed-in principal (a guest too, with ``auth optional``), or admins
PUBLIC, USER, ADMIN = "public", "user", "admin"
ACCESS_LEVELS = (PUBLIC, USER, ADMIN)
#: what a route that needs a principal can answer: no or bad credentials (401), too many failed passwords (429),
#: no admin made yet (503); one for admins also: not an admin (403)
AUTH_ERRORS = {USER: (401, 429, 503), ADMIN: (401, 403, 429, 503)}


class ApiRoute(Route):
    """A Starlette route plus what the OpenAPI document says about it.

    ``status`` and ``response`` describe the usual answer, ``responses`` any other success (``{200: schema}``);
    ``errors`` the error statuses particular to the route: those every route, every query, every body and every
    path parameter can bring are added by :meth:`error_statuses`. ``content_type`` may list several media types.
    ``access`` says who may call it (:data:`PUBLIC`, :data:`USER`, :data:`ADMIN`; :mod:`sdrest.server.auth`).
    ``error_format`` (an :data:`sdrest.server.errors.ErrorFormat`) answers its errors in a dialect's own shape.
    """

    def __init__(self, path: str, endpoint: Callable[..., Any], *, methods: Sequence[str], summary: str, tag: str,
                 request: Schema | None = None, response: Schema | None = None,
                 query: dict[str, Schema] | None = None, status: int = 200, errors: Sequence[int] = (),
                 content_type: str | Sequence[str] = "application/json",
                 responses: dict[int, Schema] | None = None, access: str = USER,
                 error_format: Callable[..., Any] | None = None) -> None:
        super().__init__(path, endpoint, methods=list(methods))
        if access not in ACCESS_LEVELS:
            raise ValueError(f"access: expected one of {ACCESS_LEVELS}, got {access!r}")
        self.access = access
        self.error_format = error_format
        self.summary = summary
        self.tag = tag
        self.request_schema = request
        self.response_schema = response or OBJECT
        self.query = query or {}
        self.status = status
        self.errors = tuple(errors)
        self.content_types = (content_type,) if isinstance(content_type, str) else tuple(content_type)
        self.responses = dict(responses or {})

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve the request once :func:`sdrest.server.auth.authorize` lets it through to this route's access."""
        from sdrest.server.auth import authorize  # the policy module imports this one
        from sdrest.server.errors import ERROR_FORMAT

        if self.error_format is not None:
            scope[ERROR_FORMAT] = self.error_format
        authorize(scope, self.access)
        await super().handle(scope, receive, send)

    @property
    def content_type(self) -> str:
        """The first (main) media type of the usual answer."""
        return self.content_types[0]

    def error_statuses(self) -> list[int]:
        """Every error status the route can answer, sorted."""
        statuses = set(self.errors) | set(EVERY_ROUTE_ERRORS)
        if self.access != PUBLIC:
            statuses.update(AUTH_ERRORS[self.access])
        if self.methods and not self.methods <= {"GET", "HEAD", "OPTIONS"}:
            statuses.update(UNSAFE_ROUTE_ERRORS)
        if self.query:
            statuses.update(QUERY_ERRORS)
        if self.request_schema is not None:
            statuses.update(BODY_ERRORS)
        if self.param_convertors:
            statuses.update(PATH_ERRORS)
        return sorted(statuses)
