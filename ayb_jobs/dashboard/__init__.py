"""The admin dashboard: a static single-page app over the admin API, served at /admin/.

The page holds no server-side state: the browser calls /api/admin with the token the operator
typed in. Assets are read once from the package (so they work from a wheel) and served with an
ETag and `Cache-Control: no-cache`, so a browser always revalidates and never runs a stale app.js
after an upgrade.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib.resources import files

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

__all__ = ["mount_dashboard"]

_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".json": "application/json",
}

# The app loads nothing from anywhere but this origin; the CSP makes that a browser-enforced rule.
_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


@dataclass(frozen=True, slots=True)
class _Asset:
    body: bytes
    content_type: str
    etag: str


def _load_assets() -> dict[str, _Asset]:
    """Every servable file in static/, by file name (a fixed map, so no path can escape it)."""
    assets: dict[str, _Asset] = {}
    for entry in (files(__name__) / "static").iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1] if "." in entry.name else ""
        if not entry.is_file() or suffix not in _CONTENT_TYPES:
            continue
        body = entry.read_bytes()
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        assets[entry.name] = _Asset(body, _CONTENT_TYPES[suffix], etag)
    return assets


def _respond(asset: _Asset, request: Request) -> Response:
    headers = {**_SECURITY_HEADERS, "ETag": asset.etag}
    if asset.etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(asset.body, media_type=asset.content_type, headers=headers)


def _not_found(name: str) -> JSONResponse:
    return JSONResponse({"code": 404, "message": f"no dashboard asset named '{name}'"}, status_code=404)


def mount_dashboard(app: FastAPI) -> None:
    """Serve the dashboard at /admin and /admin/, and its assets under /admin/static/."""
    assets = _load_assets()
    index = assets["index.html"]

    async def dashboard_index(request: Request) -> Response:
        return _respond(index, request)

    async def dashboard_asset(name: str, request: Request) -> Response:
        asset = assets.get(name)
        return _respond(asset, request) if asset is not None else _not_found(name)

    for path in ("/admin", "/admin/"):
        app.add_api_route(path, dashboard_index, methods=["GET", "HEAD"], include_in_schema=False)
    app.add_api_route("/admin/static/{name}", dashboard_asset, methods=["GET", "HEAD"],
                      include_in_schema=False)
