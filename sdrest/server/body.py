"""JSON request bodies: declared as ``application/json``, parsed off the event loop when large, bounded in depth,
and free of NUL characters, before any handler looks at them."""

from __future__ import annotations

import json
from typing import Any

import anyio
from starlette.requests import Request

from sdrest.server.errors import ApiError, invalid

#: deepest nesting of arrays and objects accepted (a generation request needs 3)
MAX_JSON_DEPTH = 32
#: bodies larger than this are parsed in a worker thread, so a big one never stalls other requests
THREAD_PARSE_BYTES = 64 * 1024
JSON_MEDIA_TYPE = "application/json"


def require_json_content_type(request: Request) -> None:
    """415 unless the request says its body is ``application/json``.

    A web page on any site can make a browser send a ``text/plain`` (or untyped) POST to a server on
    localhost without asking it first; it cannot send ``application/json`` that way.
    """
    declared = request.headers.get("content-type")
    media_type = (declared or "").split(";", 1)[0].strip().lower()
    if media_type != JSON_MEDIA_TYPE:
        shown = f"{declared[:60]!r}" if declared else "none"
        raise ApiError(415, f"the body must be {JSON_MEDIA_TYPE} (Content-Type was {shown})",
                       code="unsupported_media_type")


def _path(parent: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{parent}[{key}]"
    return f"{parent}.{key}" if parent else key


def _shown(where: str) -> str:
    """A field path fit for an error (an attacker's key may be a megabyte long)."""
    return (where if len(where) <= 200 else where[:200] + "...") or "body"


def text_problem(text: str) -> str | None:
    """Why ``text`` cannot go on to the native library, or None: a NUL would cut it short there, and a lone
    surrogate (``"\\ud800"`` in JSON) has no UTF-8 form at all."""
    if "\x00" in text:
        return "contains a NUL character"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "contains a lone surrogate (not valid Unicode)"
    return None


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def check_tree(value: Any, max_depth: int = MAX_JSON_DEPTH) -> None:
    """Walk a parsed JSON value without recursion: 400 past ``max_depth`` levels, 422 naming the field of any
    string (or object key) :func:`text_problem` finds fault with."""
    stack: list[tuple[Any, str, int]] = [(value, "", 0)]
    while stack:
        item, where, depth = stack.pop()
        if isinstance(item, str):
            problem = text_problem(item)
            if problem:
                raise invalid(_shown(where), problem)
            continue
        if isinstance(item, (dict, list)):
            if depth >= max_depth:
                raise ApiError(400, f"the body nests deeper than {max_depth} levels", code="too_deep")
            if isinstance(item, dict):
                for key, child in item.items():
                    problem = text_problem(key)
                    if problem:
                        raise invalid(_shown(where), f"a key {problem}")
                    stack.append((child, _path(where, key), depth + 1))
            else:
                stack.extend((child, _path(where, i), depth + 1) for i, child in enumerate(item))


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """``raw`` as a checked JSON object: 400 when malformed (``NaN`` and ``Infinity`` too), too deep or not an
    object; 422 for a string :func:`text_problem` finds fault with."""
    try:
        body = json.loads(raw, parse_constant=_no_constant)
    except RecursionError:
        raise ApiError(400, f"the body nests deeper than {MAX_JSON_DEPTH} levels", code="too_deep") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"the body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object")
    check_tree(body)
    return body


async def read_json(request: Request) -> dict[str, Any]:
    """The body as a JSON object (``{}`` when there is none); 415 unless it is declared ``application/json``."""
    raw = await request.body()
    if not raw:
        return {}
    require_json_content_type(request)
    if len(raw) > THREAD_PARSE_BYTES:
        return await anyio.to_thread.run_sync(parse_json_object, raw)
    return parse_json_object(raw)
