"""Routes that carry their own OpenAPI description, so the document always matches the routes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from starlette.routing import Route

Schema = dict[str, Any]

ERROR_SCHEMA: Schema = {
    "type": "object", "required": ["error"],
    "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {
        "code": {"type": "string"}, "message": {"type": "string"}, "field": {"type": "string"}}}},
}
OBJECT: Schema = {"type": "object", "additionalProperties": True}


class ApiRoute(Route):
    """A Starlette route plus what the OpenAPI document says about it."""

    def __init__(self, path: str, endpoint: Callable[..., Any], *, methods: Sequence[str], summary: str, tag: str,
                 request: Schema | None = None, response: Schema | None = None,
                 query: dict[str, Schema] | None = None, status: int = 200, errors: Sequence[int] = (),
                 content_type: str = "application/json") -> None:
        super().__init__(path, endpoint, methods=list(methods))
        self.summary = summary
        self.tag = tag
        self.request_schema = request
        self.response_schema = response or OBJECT
        self.query = query or {}
        self.status = status
        self.errors = tuple(errors)
        self.content_type = content_type
