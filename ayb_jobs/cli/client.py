"""A small synchronous HTTP client of the admin API, for the CLI's `jobs …` and `schedules …` commands.

Where to connect: `--url`, else `http://<admin.listen>` from the settings.

Which token, first found wins: `--admin-token`, $AYB_ADMIN_TOKEN, `admin.token` from the settings, the
file named by `admin.token_file` when it is set explicitly (config file, $AYB_ADMIN_TOKEN_FILE, --set).
Otherwise, for a daemon on this machine (loopback URL), the token files of the documented setups:
`./data/admin-token` (scripts/run.sh, from the checkout), `<data>/admin-token` (the daemon's default:
$STATE_DIRECTORY, else $XDG_DATA_HOME/ayb-jobs, else ~/.local/share/ayb-jobs) and
`/var/lib/ayb-jobs/admin-token` (the systemd unit's StateDirectory). When the daemon rejects one of
those, the next is tried (a 401 is answered before the request is looked at, so a retry is safe).
A local token file is never sent to a daemon on another machine.
Settings are only loaded when a flag does not already answer the question.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from ayb_jobs.config import Settings, data_dir, load_settings
from ayb_jobs.errors import AybJobsError

TIMEOUT_S = 15.0
_WILDCARDS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}
RUN_SH_TOKEN_FILE = Path("data") / "admin-token"
SYSTEMD_TOKEN_FILE = Path("/var/lib/ayb-jobs/admin-token")


class ServerError(AybJobsError):
    """The daemon answered with an error; the message is the server's."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class DaemonUnreachable(AybJobsError):
    """No daemon answered at the URL."""


@dataclass(frozen=True, slots=True)
class Token:
    value: str
    source: str  # where it was found, for messages: "--admin-token", "token file data/admin-token"…


@dataclass(slots=True)
class TokenSearch:
    """The tokens to try, in order, and what the search saw (for a message that says what to do)."""

    tokens: list[Token] = field(default_factory=list)
    looked_in: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)


class AdminClient:
    def __init__(self, base_url: str, token: str | TokenSearch, *, timeout: float = TIMEOUT_S) -> None:
        self.base_url = base_url.rstrip("/")
        if isinstance(token, str):
            token = TokenSearch([Token(token, "the given token")] if token else [])
        self.search = token
        self._http = httpx.Client(base_url=self.base_url + "/api/admin", timeout=timeout)

    def __enter__(self) -> AdminClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self._http.close()

    def call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
    ) -> Any:
        """The decoded JSON answer (None for 204); ServerError or DaemonUnreachable otherwise."""
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        rejected: list[Token] = []
        for token in self.search.tokens or [None]:
            response = self._send(method, path, clean, body, token)
            if response.status_code != 401 or token is None:
                break
            rejected.append(token)
        if response.status_code == 204:
            return None
        data = _decode(response)
        if response.status_code == 401:
            raise ServerError(401, self._auth_message(rejected))
        if response.status_code >= 400:
            raise ServerError(response.status_code, _error_message(response, data))
        if rejected:  # a later candidate worked: keep it first for this client's next calls
            self.search.tokens = [t for t in self.search.tokens if t not in rejected] + rejected
        return data

    def _send(
        self, method: str, path: str, params: dict[str, Any], body: Any, token: Token | None
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token.value}"} if token else {}
        try:
            return self._http.request(method, path, params=params, json=body, headers=headers)
        except httpx.ReadTimeout:
            raise DaemonUnreachable(
                f"the daemon at {self.base_url} accepted the connection but did not answer within "
                f"{self._http.timeout.read:g} s; see its log"
            ) from None
        except httpx.TransportError as exc:
            reason = str(exc) or type(exc).__name__
            raise DaemonUnreachable(
                f"no ayb-jobs daemon answers at {self.base_url}: {reason}; "
                "start it with `ayb-jobs run` or pass --url"
            ) from None

    def _auth_message(self, rejected: list[Token]) -> str:
        how = "pass --admin-token TOKEN or set AYB_ADMIN_TOKEN"
        if rejected:
            sources = " and ".join(t.source for t in rejected)
            message = (
                f"token rejected by the daemon at {self.base_url} (the token from {sources} is not this "
                f"daemon's): {how} with the token of this daemon"
            )
        else:
            message = (
                f"admin authentication required by the daemon at {self.base_url} and no admin token was "
                "found"
            )
            if self.search.looked_in:
                message += f" (looked for {', '.join(self.search.looked_in)})"
            message += f": {how}, or set AYB_ADMIN_TOKEN_FILE to the daemon's token file"
        if self.search.unreadable:  # quite likely the right one: say how to read it
            message += (
                f"; {', '.join(self.search.unreadable)} exists but this user cannot read it: run the "
                "command as the daemon's user (e.g. sudo -u ayb ayb-jobs …) or as root"
            )
        return message


def _decode(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _error_message(response: httpx.Response, data: Any) -> str:
    message = data.get("message") if isinstance(data, dict) else None
    if not message:
        message = f"the daemon answered {response.status_code}: {response.text[:200]}"
    return str(message)


# --- where and who ----------------------------------------------------------------------------------


def base_url(url: str | None, settings: Settings | None) -> str:
    if not url:
        assert settings is not None
        admin = settings.admin
        host = _WILDCARDS.get(admin.host, admin.host)
        url = f"{f'[{host}]' if ':' in host else host}:{admin.port}"
    if "://" not in url:
        url = f"http://{url}"
    return url.rstrip("/")


def find_tokens(
    flag: str | None, settings_loader: Callable[[], Settings], url: str, environ: dict[str, str] | None = None
) -> TokenSearch:
    """The tokens to try against the daemon at `url`, in order (see the module docstring)."""
    env = dict(os.environ) if environ is None else environ
    if flag:
        return TokenSearch([Token(flag, "--admin-token")])
    if env.get("AYB_ADMIN_TOKEN"):
        return TokenSearch([Token(env["AYB_ADMIN_TOKEN"], "AYB_ADMIN_TOKEN")])
    settings = settings_loader()
    if settings.admin.token:
        return TokenSearch([Token(settings.admin.token, "admin.token")])
    if settings.sources.get("admin.token_file", "default") != "default":
        return _read_token_files([Path(settings.admin.resolved_token_file)])
    if not _is_local(url):
        return TokenSearch()
    documented = [Path.cwd() / RUN_SH_TOKEN_FILE, data_dir(env) / "admin-token", SYSTEMD_TOKEN_FILE]
    return _read_token_files(documented)


def _is_local(url: str) -> bool:
    # Not api.auth.is_loopback: importing the API (FastAPI) would slow every CLI command by ~0.7 s.
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _read_token_files(paths: list[Path]) -> TokenSearch:
    search = TokenSearch()
    for path in dict.fromkeys(paths):
        search.looked_in.append(str(path))
        try:
            value = path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            continue
        except PermissionError:
            search.unreadable.append(str(path))
            continue
        except (OSError, UnicodeDecodeError):
            continue
        if value and value not in {t.value for t in search.tokens}:
            search.tokens.append(Token(value, f"token file {path}"))
    return search


def connect(url: str | None, token: str | None, config_path: str | None) -> AdminClient:
    """An AdminClient for the given flags, loading the settings only if a flag is missing."""
    loaded: list[Settings] = []

    def settings() -> Settings:
        if not loaded:
            loaded.append(load_settings(config_path))
        return loaded[0]

    target = base_url(url, settings() if not url else None)
    return AdminClient(target, find_tokens(token, settings, target))
