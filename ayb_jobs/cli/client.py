"""A small synchronous HTTP client of the admin API, for the CLI's `jobs …` and `schedules …` commands.

Where to connect: `--url`, else `http://<admin.listen>` from the settings. Which token: `--admin-token`,
else $AYB_ADMIN_TOKEN, else `admin.token` from the settings, else the daemon's generated token file.
Settings are only loaded when a flag does not already answer the question.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx

from ayb_jobs.config import Settings, load_settings
from ayb_jobs.errors import AybJobsError

TIMEOUT_S = 15.0
_WILDCARDS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


class ServerError(AybJobsError):
    """The daemon answered with an error; the message is the server's."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class DaemonUnreachable(AybJobsError):
    """No daemon answered at the URL."""


class AdminClient:
    def __init__(self, base_url: str, token: str, *, timeout: float = TIMEOUT_S) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.base_url + "/api/admin",
            timeout=timeout,
            headers={"Authorization": f"Bearer {token}"} if token else {},
        )

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
        try:
            response = self._http.request(method, path, params=clean, json=body)
        except httpx.TransportError as exc:
            reason = str(exc) or type(exc).__name__
            raise DaemonUnreachable(
                f"no ayb-jobs daemon answers at {self.base_url}: {reason}; "
                "start it with `ayb-jobs run` or pass --url"
            ) from None
        if response.status_code == 204:
            return None
        data = _decode(response)
        if response.status_code >= 400:
            raise ServerError(response.status_code, _error_message(response, data))
        return data


def _decode(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _error_message(response: httpx.Response, data: Any) -> str:
    message = data.get("message") if isinstance(data, dict) else None
    if not message:
        message = f"the daemon answered {response.status_code}: {response.text[:200]}"
    if response.status_code == 401:
        message += " (pass --admin-token, set AYB_ADMIN_TOKEN, or run as the daemon's user)"
    return message


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


def resolve_token(flag: str | None, settings_loader: Any) -> str:
    """The token to send; "" if none is found (the daemon then answers 401 with a hint)."""
    if flag:
        return flag
    if os.environ.get("AYB_ADMIN_TOKEN"):
        return os.environ["AYB_ADMIN_TOKEN"]
    settings: Settings = settings_loader()
    if settings.admin.token:
        return settings.admin.token
    try:
        return Path(settings.admin.resolved_token_file).read_text(encoding="utf-8").strip()
    except OSError:
        return ""


def connect(url: str | None, token: str | None, config_path: str | None) -> AdminClient:
    """An AdminClient for the given flags, loading the settings only if a flag is missing."""
    loaded: list[Settings] = []

    def settings() -> Settings:
        if not loaded:
            loaded.append(load_settings(config_path))
        return loaded[0]

    return AdminClient(base_url(url, settings() if not url else None), resolve_token(token, settings))
