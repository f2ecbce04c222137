"""Admin token: the bearer check on /api/admin, and helpers the daemon uses at start."""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
from pathlib import Path

from fastapi.security import HTTPBearer
from starlette.types import ASGIApp, Receive, Scope, Send

from ayb_jobs.api.errors import send_envelope

ADMIN_PREFIX = "/api/admin"
UNAUTHORIZED = "admin authentication required"
DUPLICATE_AUTHORIZATION = "more than one Authorization header; send exactly one: Bearer <admin token>"
# Documents the scheme in OpenAPI only; the middleware below enforces it before anything else runs.
bearer_scheme = HTTPBearer(auto_error=False, description="The daemon's admin token (admin.token).")


def ensure_token(configured: str, token_file: Path) -> str:
    """The admin token: `configured` if set, else the one in `token_file`, else a new one written there.

    A generated token is written with mode 0600 (its folder created 0700), so only the daemon's user
    and the CLI run by that user can read it.
    """
    if configured:
        return configured
    token_file = Path(token_file)
    try:
        existing = token_file.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        existing = ""
    if existing:
        return existing
    token = secrets.token_urlsafe(32)
    token_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # Created 0600 from the start, so the token is never readable by others, even briefly.
    fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(token + "\n")
    os.chmod(token_file, 0o600)
    return token


def is_loopback(host: str) -> bool:
    """True when `host` only accepts connections from this machine."""
    host = host.strip().strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def token_matches(header: str | None, token: str) -> bool:
    if not header or not token:
        return False
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


class AdminAuthMiddleware:
    """401 on /api/admin without the right bearer token, before routing, body parsing or size checks."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _is_admin_path(scope.get("path", "")):
            given = [v for k, v in scope.get("headers") or () if k == b"authorization"]
            if len(given) > 1:
                # Proxies and servers disagree on which of several wins: refuse to guess.
                await send_envelope(send, 400, DUPLICATE_AUTHORIZATION)
                return
            header = given[0].decode("latin-1") if given else None
            if not token_matches(header, self.token):
                await send_envelope(send, 401, UNAUTHORIZED, headers=[(b"www-authenticate", b"Bearer")])
                return
        await self.app(scope, receive, send)


def _is_admin_path(path: str) -> bool:
    return path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/")
