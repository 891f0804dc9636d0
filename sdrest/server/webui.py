"""The web UI: static files (HTML, CSS, ES modules) served at ``/ui/``, with ``/`` redirecting there.

The files live in the package (``sdrest/webui/``) unless the ``ui_dir`` setting names another folder. They are
plain Starlette routes, outside the OpenAPI document, and public: the pages hold no data, and every call they make
goes through the API's own checks. The middleware (Host guard, security headers with the page CSP, auth) applies
to them as to every route.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import Route

from sdrest.server.errors import ApiError

#: the folder of the UI's files inside the package
PACKAGED_UI = Path(__file__).resolve().parent.parent / "webui"
#: the file types the UI is made of; any other file is not served
MEDIA_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
               ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".png": "image/png",
               ".ico": "image/x-icon", ".webmanifest": "application/manifest+json", ".json": "application/json"}
#: the files change with the package: a browser revalidates each time (cheap: ETag and Last-Modified)
CACHE = {"Cache-Control": "no-cache"}


def ui_file(root: Path, relative: str) -> Path | None:
    """The file ``relative`` names inside ``root``, or None: empty, hidden or ``..`` segments, a type the UI does
    not use, or a path that resolves (through links too) outside ``root``. A folder means its ``index.html``."""
    parts = relative.split("/")
    if any(part.startswith(".") or "\\" in part or "\x00" in part for part in parts if part):
        return None
    if relative == "" or relative.endswith("/"):
        parts.append("index.html")
    clean = [part for part in parts if part]
    if not clean:
        return None
    base = root.resolve()
    path = base.joinpath(*clean).resolve()
    if not path.is_relative_to(base) or not path.is_file() or path.suffix not in MEDIA_TYPES:
        return None
    return path


def routes(ui_dir: Path | None) -> list[Route]:
    """``/`` and ``/ui`` (redirects to ``/ui/``) and ``/ui/{path}`` (the files of ``ui_dir``, else the packaged
    UI)."""
    root = ui_dir or PACKAGED_UI

    async def home(request: Request) -> Response:
        return RedirectResponse("/ui/", status_code=307)

    async def serve(request: Request) -> Response:
        relative = request.path_params.get("path", "")
        path = ui_file(root, relative)
        if path is None:
            raise ApiError(404, f"no UI file {relative!r}", field="path")
        return FileResponse(path, media_type=MEDIA_TYPES[path.suffix], headers=CACHE)

    return [Route("/", home, methods=["GET", "HEAD"]), Route("/ui", home, methods=["GET", "HEAD"]),
            Route("/ui/{path:path}", serve, methods=["GET", "HEAD"])]
