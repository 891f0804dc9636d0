"""Presets and prompt templates from the models dir (``presets/``, ``prompts/``, ``neg_prompts/``)."""

from __future__ import annotations

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse

from sdrest.models.templates import TEMPLATE_FOLDERS, Template, TemplateError
from sdrest.server.errors import ApiError
from sdrest.server.query import Choice, schemas
from sdrest.server.spec import USER, ApiRoute, Schema
from sdrest.server.state import state_of

KINDS = tuple(TEMPLATE_FOLDERS.values())
KIND = Choice("kind", None, "only this kind: preset (generation parameters), prompt or neg_prompt (text)",
              choices=KINDS)

TEMPLATE_SCHEMA: Schema = {"type": "object", "required": ["id", "kind", "name", "format"], "properties": {
    "id": {"type": "string"}, "kind": {"type": "string", "enum": list(KINDS)}, "name": {"type": "string"},
    "format": {"type": "string"}, "size": {"type": "integer"}}}
LIST_SCHEMA: Schema = {"type": "object", "required": ["templates"], "properties": {
    "templates": {"type": "array", "items": TEMPLATE_SCHEMA}}}
ONE_SCHEMA: Schema = {"type": "object", "required": ["id", "kind", "content"], "properties": {
    **TEMPLATE_SCHEMA["properties"],
    "content": {"description": "a preset: an object of generation parameters; a prompt: its text",
                "type": ["object", "string"]}}}


def _describe(template: Template) -> dict:
    """A template as the API shows it: no server path."""
    return {"id": template.id, "kind": template.kind, "name": template.id.rsplit("/", 1)[-1],
            "format": template.format, "size": template.size}


async def list_templates(request: Request) -> JSONResponse:
    kind = KIND.read(request)
    found = sorted(state_of(request).registry.templates(kind), key=lambda t: (t.kind, t.id.lower()))
    return JSONResponse({"templates": [_describe(t) for t in found]})


async def get_template(request: Request) -> JSONResponse:
    registry = state_of(request).registry
    template_id = request.path_params["template_id"]
    try:
        template = registry.template(template_id)
    except KeyError:
        raise ApiError(404, f"no template {template_id[:200]!r}", field="template_id") from None
    try:
        content = await anyio.to_thread.run_sync(template.load)
    except TemplateError as exc:
        raise ApiError(422, str(exc), field="template_id", code="bad_template") from None
    if template.kind == "preset" and not isinstance(content, dict):
        raise ApiError(422, f"{template.id}: a preset is a mapping of parameters", field="template_id",
                       code="bad_template")
    if template.kind != "preset":
        content = content.get("prompt", "") if isinstance(content, dict) else content
        content = "" if content is None else str(content)
    return JSONResponse({**_describe(template), "content": content})


def routes() -> list[ApiRoute]:
    """The template routes."""
    return [
        ApiRoute("/api/templates", list_templates, methods=["GET"], summary="Presets and prompt templates",
                 tag="models", query=schemas((KIND,)), response=LIST_SCHEMA, access=USER),
        ApiRoute("/api/templates/{template_id:path}", get_template, methods=["GET"],
                 summary="One preset or prompt template, parsed", tag="models", response=ONE_SCHEMA,
                 errors=(404, 422), access=USER),
    ]
