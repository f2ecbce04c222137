"""Admin token: the bearer check on /api/admin, and helpers the daemon uses at start."""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from fastapi.security import HTTPBearer
from starlette.types import ASGIApp, Receive, Scope, Send

from ayb_jobs.api.errors import send_envelope
from ayb_jobs.errors import StartupError

ADMIN_PREFIX = "/api/admin"
UNAUTHORIZED = "admin authentication required"
DUPLICATE_AUTHORIZATION = "more than one Authorization header; send exactly one: Bearer <admin token>"
# Documents the scheme in OpenAPI only; the middleware below enforces it before anything else runs.
bearer_scheme = HTTPBearer(auto_error=False, description="The daemon's admin token (admin.token).")


TOKEN_FILE_MODE = 0o600


@dataclass(frozen=True, slots=True)
class AdminToken:
    """The admin token and where it came from, so the daemon can log what actually happened."""

    value: str
    origin: str  # "configured" (admin.token), "file" (an existing token file) or "generated"
    file: Path | None = None
    fixed_mode: int | None = None  # the token file's former mode, when it was tightened to 0600

    @property
    def generated(self) -> bool:
        return self.origin == "generated"


def ensure_token(configured: str, token_file: Path) -> str:
    """The admin token's value (see `load_or_create_token`)."""
    return load_or_create_token(configured, token_file).value


def load_or_create_token(configured: str, token_file: Path) -> AdminToken:
    """`configured` if set, else the token in `token_file`, else a new one written there.

    A generated token is written with mode 0600 (its folder created 0700), so only the daemon's user
    and the CLI run by that user can read it. An existing file that others can read is tightened to
    0600 (`fixed_mode` says so), or refused if this user cannot change it. Problems with the file are
    StartupErrors (exit 2) in one line.
    """
    if configured:
        return AdminToken(configured, "configured")
    token_file = Path(token_file)
    existing, fixed_mode = _read_token_file(token_file)
    if existing:
        return AdminToken(existing, "file", token_file, fixed_mode)
    token = secrets.token_urlsafe(32)
    try:
        token_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Created 0600 from the start, so the token is never readable by others, even briefly.
        fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, TOKEN_FILE_MODE)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(token + "\n")
        os.chmod(token_file, TOKEN_FILE_MODE)
    except OSError as exc:
        raise _token_file_error(token_file, f"cannot be written ({exc.strerror})") from None
    return AdminToken(token, "generated", token_file)


def _read_token_file(token_file: Path) -> tuple[str, int | None]:
    """(token or "", the former mode if it had to be tightened)."""
    try:
        fd = os.open(token_file, os.O_RDONLY)
    except FileNotFoundError:
        return "", None
    except OSError as exc:
        raise _token_file_error(token_file, f"cannot be read ({exc.strerror})") from None
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fh.fileno())
        if stat.S_ISDIR(info.st_mode):
            raise _token_file_error(token_file, "is a directory; name a file, e.g. "
                                                f"{token_file / 'admin-token'}")
        raw = fh.read()
    fixed_mode = None
    if stat.S_IMODE(info.st_mode) & 0o077:
        fixed_mode = stat.S_IMODE(info.st_mode)
        try:
            os.chmod(token_file, TOKEN_FILE_MODE)
        except OSError:
            raise _token_file_error(
                token_file, f"can be read by other users (mode {fixed_mode:04o}) and this user cannot "
                f"change that; run `chmod 600 {token_file}` as its owner"
            ) from None
    try:
        return raw.decode("utf-8").strip(), fixed_mode
    except UnicodeDecodeError:
        raise _token_file_error(token_file, "is not a text file; delete it to have a new token "
                                            "generated") from None


def check_token_file(token_file: Path) -> None:
    """Raise the StartupError `load_or_create_token` would raise for `token_file`, without writing
    anything: run before anything starts, so a bad path is one line instead of a failure after the
    job system is already running."""
    token_file = Path(token_file)
    if token_file.is_dir():
        raise _token_file_error(token_file, f"is a directory; name a file, e.g. {token_file / 'admin-token'}")
    if os.path.lexists(token_file):
        if not os.access(token_file, os.R_OK):
            raise _token_file_error(token_file, "cannot be read by this user; run the daemon as its owner")
        info = token_file.stat()
        if stat.S_IMODE(info.st_mode) & 0o077 and info.st_uid != os.geteuid() and os.geteuid() != 0:
            raise _token_file_error(
                token_file, f"can be read by other users (mode {stat.S_IMODE(info.st_mode):04o}) and this "
                f"user cannot change that; run `chmod 600 {token_file}` as its owner"
            )
        return
    ancestor = token_file.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise _token_file_error(token_file, f"cannot be created: {ancestor} is not a directory")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise _token_file_error(token_file, f"cannot be created: {ancestor} is not writable by this user")


def _token_file_error(token_file: Path, problem: str) -> StartupError:
    return StartupError(
        f"admin.token_file {token_file} {problem} (set admin.token_file / AYB_ADMIN_TOKEN_FILE to "
        "another path, or set admin.token)",
        exit_code=2,
    )


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
