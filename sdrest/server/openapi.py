"""The OpenAPI 3.1 document, built from the routes themselves, and a small docs page."""

from __future__ import annotations

import base64
import hashlib
import math
import re
from http import HTTPStatus
from collections.abc import Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse

import sdrest
from sdrest.server.middleware import PAGE_POLICY
from sdrest.server.spec import ENUM_SETTING, ERROR_SCHEMA, MAXIMUM_SETTING, PUBLIC, ApiRoute
from sdrest.server.state import ServerState, state_of

#: how a client may authenticate (docs/security.md); a route that is not public takes any one of them
SECURITY_SCHEMES: dict[str, Any] = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "an access token from /api/auth/login, or an API key"},
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
    "basic": {"type": "http", "scheme": "basic", "description": "user name and password, or apikey:<key>"},
    "cookie": {"type": "apiKey", "in": "cookie", "name": "sdrest_session",
               "description": "from /api/auth/login with cookie: true; needs the X-CSRF-Token header to change things"},
}
SECURITY = [{name: []} for name in SECURITY_SCHEMES]
_PARAM = re.compile(r"{([^}:]+)(?::[^}]+)?}")


def _error_schema(route: ApiRoute) -> dict[str, Any]:
    """The schema of a route's error bodies: its dialect's, when its ``error_format`` states one (a ``schema``
    attribute), else the native ``Error``."""
    schema = getattr(route.error_format, "schema", None)
    return schema if schema is not None else {"$ref": "#/components/schemas/Error"}


def build_document(api_routes: Sequence[ApiRoute]) -> dict[str, Any]:
    """One path item per route, with request, response and error schemas."""
    paths: dict[str, Any] = {}
    for route in api_routes:
        path = _PARAM.sub(r"{\1}", route.path)
        parameters = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                      for name in _PARAM.findall(route.path)]
        parameters += [{"name": name, "in": "query", "required": False, "schema": schema}
                       for name, schema in route.query.items()]
        responses: dict[str, Any] = {str(route.status): {
            "description": route.summary,
            "content": {media: {"schema": route.response_schema} for media in route.content_types}}}
        for status, schema in route.responses.items():
            responses[str(status)] = {"description": HTTPStatus(status).phrase,
                                      "content": {"application/json": {"schema": schema}}}
        error_schema = _error_schema(route)
        for status in route.error_statuses():
            responses[str(status)] = {"description": HTTPStatus(status).phrase,
                                      "content": {"application/json": {"schema": error_schema}}}
        for method in sorted(m for m in (route.methods or ()) if m != "HEAD"):
            operation: dict[str, Any] = {
                "operationId": f"{method.lower()}_{re.sub(r'[^A-Za-z0-9]+', '_', path).strip('_')}",
                "summary": route.summary, "tags": [route.tag], "responses": responses}
            operation["security"] = [] if route.access == PUBLIC else SECURITY
            if parameters:
                operation["parameters"] = parameters
            if route.request_schema is not None:
                operation["requestBody"] = {"required": True, "content": {
                    "application/json": {"schema": route.request_schema}}}
            paths.setdefault(path, {})[method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "sdrest", "version": sdrest.__version__,
                 "description": "stable-diffusion.cpp as a REST service: queue, jobs, models, live progress."},
        "paths": paths,
        "components": {"schemas": {"Error": ERROR_SCHEMA}, "securitySchemes": SECURITY_SCHEMES},
    }


_DOCS = """<!doctype html><html><head><meta charset="utf-8"><title>sdrest API</title>
<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}code{background:#eee;padding:0 .3em}
h2{margin-top:1.5em}li{margin:.2em 0}</style></head><body><h1>sdrest API</h1>
<p>The machine-readable document: <a href="/api/openapi.json">/api/openapi.json</a>.</p><div id="list"></div>
<script>fetch('/api/openapi.json').then(r=>r.json()).then(doc=>{const tags={};
for(const [p,item] of Object.entries(doc.paths))for(const [m,op] of Object.entries(item))
(tags[op.tags[0]]=tags[op.tags[0]]||[]).push([m.toUpperCase(),p,op.summary]);
const el=document.getElementById('list');for(const [t,ops] of Object.entries(tags)){
const h=document.createElement('h2');h.textContent=t;el.appendChild(h);const ul=document.createElement('ul');
for(const [m,p,s] of ops){const li=document.createElement('li');const c=document.createElement('code');
c.textContent=m+' '+p;li.appendChild(c);li.appendChild(document.createTextNode(' '+s));ul.appendChild(li);}
el.appendChild(ul);}});</script></body></html>"""


def _docs_policy() -> str:
    """The page's Content-Security-Policy: the page policy, allowing its one inline script by its hash."""
    script = _DOCS.partition("<script>")[2].partition("</script>")[0]
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    return PAGE_POLICY.replace("script-src 'self'", f"script-src 'self' 'sha256-{digest}'")


def server_limits(state: ServerState) -> dict[str, Any]:
    """The values :data:`~sdrest.server.spec.MAXIMUM_SETTING` and :data:`~sdrest.server.spec.ENUM_SETTING`
    name, from the running server: its settings and the names its native library knows."""
    cfg = state.config
    return {"max_steps": cfg.max_steps, "max_batch": cfg.max_batch,
            # a side is at least 64 pixels, so the other is at most max_pixels / 64 (and a multiple of 8)
            "max_side": max(64, min(16384, cfg.max_pixels // 64 // 8 * 8)),
            "samplers": list(state.parser.samplers), "schedulers": list(state.parser.schedulers),
            "quantization_types": list(state.parser.weight_types)}


def with_limits(node: Any, limits: dict[str, Any]) -> Any:
    """A copy of ``node`` (a document, or part of one) with every setting-bound maximum and enum filled in."""
    if isinstance(node, list):
        return [with_limits(item, limits) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: with_limits(value, limits) for key, value in node.items()}
    if MAXIMUM_SETTING in node:
        out["maximum"] = min(limits[node[MAXIMUM_SETTING]], node.get("maximum", math.inf))
    if ENUM_SETTING in node:
        out["enum"] = list(limits[node[ENUM_SETTING]])
    return out


def routes(api_routes: Sequence[ApiRoute]) -> list[ApiRoute]:
    """``/api/openapi.json`` (covering itself and the docs page too) and ``/api/docs``."""
    document: dict[str, Any] = {}
    policy = _docs_policy()
    served: list[dict[str, Any]] = []  # the document with this server's limits, made on the first request

    async def openapi_json(request: Request) -> JSONResponse:
        if not served:
            served.append(with_limits(document, server_limits(state_of(request))))
        return JSONResponse(served[0])

    async def docs(request: Request) -> HTMLResponse:
        return HTMLResponse(_DOCS, headers={"Content-Security-Policy": policy})

    own = [ApiRoute("/api/openapi.json", openapi_json, methods=["GET"], summary="This document", tag="docs",
                    access=PUBLIC),
           ApiRoute("/api/docs", docs, methods=["GET"], summary="API docs page", tag="docs",
                    content_type="text/html", response={"type": "string"}, access=PUBLIC)]
    document.update(build_document([*api_routes, *own]))
    return own
