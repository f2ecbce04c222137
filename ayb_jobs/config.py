"""Settings: defaults < TOML file < `AYB_*` environment < CLI overrides (SPEC §7).

The layers are read here rather than by pydantic-settings' own sources because every value must be
traceable to where it came from: `config check` prints each key's source, and an invalid value is
reported on one line naming the key, the value and the file path or environment variable. The merged
layers are then validated by the `Settings` model. Env names follow pydantic-settings' conventions
(`AYB_` prefix, `_` nested delimiter split once: AYB_JOBS_WORKER_CONCURRENCY → jobs.worker_concurrency).
"""

from __future__ import annotations

import difflib
import json
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from annotated_types import Ge, Le
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from ayb_jobs.errors import ConfigError

ENV_PREFIX = "AYB_"
CONFIG_ENV = "AYB_CONFIG"
SECRET_KEYS = frozenset({"admin.token"})
DSN_KEYS = frozenset({"database.url", "database.listen_url"})


# --- value parsers: strict where pydantic's lax mode would guess ----------------------------------


def _strict_bool(value: Any) -> bool:
    # [fix] "yes", "on", "2" must be errors, not silently false/true.
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "1", "false", "0"):
        return value.strip().lower() in ("true", "1")
    raise ValueError("must be true or false (or 1/0)")


def _strict_int(value: Any) -> int:
    # Lax pydantic would turn `true` into 1 and `8.0` into 8; a config value of the wrong type is a mistake.
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        return int(value)
    raise ValueError("must be an integer")


def _choice(*allowed: str):
    def check(value: Any) -> str:
        if isinstance(value, str) and value.strip().lower() in allowed:
            return value.strip().lower()
        raise ValueError(f"must be one of {', '.join(allowed)}")

    return check


def _dsn(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a string")
    if value and not re.match(r"postgres(ql)?://", value):
        raise ValueError("must be a postgres:// or postgresql:// URL (or empty)")
    return value


def _token(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a string")
    if value and len(value) < 16:
        raise ValueError(f"must be at least 16 characters when set (got {len(value)})")
    return value


def _listen(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a string host:port")
    parse_listen(value)
    return value


_HANDLER_RE = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")


def _handlers(value: Any) -> list[str]:
    if not isinstance(value, list):
        raise ValueError('must be a list of "module:callable" strings')
    for item in value:
        if not isinstance(item, str) or not _HANDLER_RE.fullmatch(item):
            raise ValueError(f'entry {json.dumps(item)} is not of the form "module:callable"')
    if len(set(value)) != len(value):
        raise ValueError("lists the same handler twice")
    return value


def _non_empty(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("must be a non-empty string")
    return value


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a string")
    return value


Bool = Annotated[bool, BeforeValidator(_strict_bool)]
Str = Annotated[str, BeforeValidator(_string)]


def _int_range(lo: int, hi: int) -> Any:
    return Annotated[int, BeforeValidator(_strict_int), Field(ge=lo, le=hi)]


def parse_listen(value: str) -> tuple[str, int]:
    """Split "host:port" (IPv6 as "[::1]:8090") into (host, port); raise ValueError if malformed."""
    match = re.fullmatch(r"\[([0-9A-Fa-f:.%\w]+)\]:(\d{1,5})|([^:\[\]\s]+):(\d{1,5})", value.strip())
    if not match:
        raise ValueError('must be host:port, e.g. "127.0.0.1:8090" or "[::1]:8090"')
    host = match.group(1) or match.group(3)
    port = int(match.group(2) or match.group(4))
    if port > 65535:
        raise ValueError(f"port {port} is out of range 0-65535")
    return host, port


# --- the models ---------------------------------------------------------------------------------------

_SECTION_CONFIG = ConfigDict(extra="forbid")


class DatabaseSettings(BaseModel):
    model_config = _SECTION_CONFIG

    url: Annotated[str, BeforeValidator(_dsn)] = ""
    listen_url: Annotated[str, BeforeValidator(_dsn)] = ""
    pool_max_size: _int_range(2, 100) = 10
    statement_cache_size: _int_range(0, 10000) = 100
    auto_migrate: Bool = True
    embedded_data_dir: Str = ""
    embedded_bin_dir: Str = ""
    embedded_user: Annotated[str, BeforeValidator(_non_empty)] = "ayb"

    @property
    def resolved_embedded_data_dir(self) -> Path:
        """The embedded cluster's directory; "" means `<data>/postgres`."""
        if self.embedded_data_dir:
            return Path(self.embedded_data_dir).expanduser()
        return data_dir() / "postgres"

    @property
    def effective_listen_url(self) -> str:
        """The DSN for the LISTEN connection: `listen_url`, else `url`."""
        return self.listen_url or self.url


class JobsSettings(BaseModel):
    model_config = _SECTION_CONFIG

    enabled: Bool = False
    worker_concurrency: _int_range(1, 64) = 4
    poll_interval_ms: _int_range(100, 60000) = 1000
    lease_duration_s: _int_range(30, 3600) = 300
    max_retries_default: _int_range(1, 100) = 3
    scheduler_enabled: Bool = True
    scheduler_tick_s: _int_range(5, 3600) = 15
    job_timeout_s: _int_range(1, 86400) = 600
    shutdown_timeout_s: _int_range(0, 3600) = 30
    recovery_interval_s: _int_range(5, 3600) = 30
    handlers: Annotated[list[str], BeforeValidator(_handlers)] = Field(default_factory=list)


class AdminSettings(BaseModel):
    model_config = _SECTION_CONFIG

    enabled: Bool = True
    listen: Annotated[str, BeforeValidator(_listen)] = "127.0.0.1:8090"
    token: Annotated[str, BeforeValidator(_token)] = ""
    token_file: Str = ""

    @property
    def host(self) -> str:
        return parse_listen(self.listen)[0]

    @property
    def port(self) -> int:
        return parse_listen(self.listen)[1]

    @property
    def resolved_token_file(self) -> Path:
        """Where a generated token is written; "" means `<data>/admin-token`."""
        if self.token_file:
            return Path(self.token_file).expanduser()
        return data_dir() / "admin-token"


class LogSettings(BaseModel):
    model_config = _SECTION_CONFIG

    format: Annotated[str, BeforeValidator(_choice("auto", "json", "console"))] = "auto"
    level: Annotated[str, BeforeValidator(_choice("debug", "info", "warning", "error"))] = "info"


def _strict_float(value: Any) -> float:
    # Like _strict_int: `true` is not a number, and "0.5" from the environment is.
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*", value):
        return float(value)
    raise ValueError("must be a number")


def _at_least(lo: int):
    def check(value: Any) -> int:
        number = _strict_int(value)
        if number < lo:
            raise ValueError(f"must be at least {lo}")
        return number

    return check


class HealthSettings(BaseModel):
    """Thresholds of the Postgres health checks (GET /api/admin/health, `pg_health_warning`)."""

    model_config = _SECTION_CONFIG

    xmin_horizon_warn_s: _int_range(1, 604800) = 3600
    dead_tuples_warn: Annotated[int, BeforeValidator(_at_least(1))] = 1_000_000
    notify_queue_warn_ratio: Annotated[float, BeforeValidator(_strict_float), Field(ge=0, le=1)] = 0.5
    check_interval_s: _int_range(5, 3600) = 30


class Settings(BaseSettings):
    """The effective configuration. Build it with `load_settings()`; give components their section.

    `Settings(jobs={"enabled": True})` validates the given values only and reads no environment.
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="_",
        env_nested_max_split=1,
        env_ignore_empty=True,
        extra="forbid",
    )

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, **_other_sources):  # type: ignore[override]
        # Only explicit values: `load_settings` reads file and environment itself (see module docstring),
        # and a test's `Settings(...)` must not pick up the developer's AYB_* variables.
        return (init_settings,)

    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    jobs: JobsSettings = Field(default_factory=JobsSettings)
    admin: AdminSettings = Field(default_factory=AdminSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    health: HealthSettings = Field(default_factory=HealthSettings)

    _sources: dict[str, str] = PrivateAttr(default_factory=dict)

    @property
    def sources(self) -> dict[str, str]:
        """Each dotted key's source: "default", "file", "env" or "cli"."""
        return {key: self._sources.get(key, "default") for key in all_keys()}


SECTIONS: dict[str, type[BaseModel]] = {
    "database": DatabaseSettings,
    "jobs": JobsSettings,
    "admin": AdminSettings,
    "log": LogSettings,
    "health": HealthSettings,
}


def all_keys() -> list[str]:
    """Every dotted key, in the order of SPEC §7."""
    return [f"{section}.{name}" for section, model in SECTIONS.items() for name in model.model_fields]


# --- paths and redaction --------------------------------------------------------------------------------


def data_dir(environ: Mapping[str, str] | None = None) -> Path:
    """`<data>`: $STATE_DIRECTORY (systemd), else $XDG_DATA_HOME/ayb-jobs, else ~/.local/share/ayb-jobs."""
    env = os.environ if environ is None else environ
    state = env.get("STATE_DIRECTORY", "")
    if state:
        return Path(state.split(":")[0])
    xdg = env.get("XDG_DATA_HOME", "")
    if xdg and os.path.isabs(xdg):  # the XDG spec says relative values are to be ignored
        return Path(xdg) / "ayb-jobs"
    home = env.get("HOME") or str(Path.home())
    return Path(home) / ".local" / "share" / "ayb-jobs"


_URL_PASSWORD = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@]*:)[^\s/]*(@)")
_KV_PASSWORD = re.compile(r"((?:password|passwd|pwd)\s*=\s*)('[^']*'|[^\s&;]+)", re.IGNORECASE)


def redact_dsn(dsn: str) -> str:
    """Replace passwords in URLs (`user:pw@`) and `password=` pairs inside `dsn` (or any text) by ***."""
    return _KV_PASSWORD.sub(r"\1***", _URL_PASSWORD.sub(r"\1***\2", dsn))


def redact_value(key: str, value: Any) -> Any:
    """A setting's value fit to print or log."""
    if key in SECRET_KEYS and value:
        return "***"
    if key in DSN_KEYS and isinstance(value, str):
        return redact_dsn(value)
    return value


def settings_report(settings: Settings) -> list[tuple[str, Any, str]]:
    """(key, value, source) for every setting, secrets redacted."""
    sources = settings.sources
    rows = []
    for key in all_keys():
        section, name = key.split(".")
        value = getattr(getattr(settings, section), name)
        rows.append((key, redact_value(key, value), sources[key]))
    return rows


# --- loading --------------------------------------------------------------------------------------------


class _Layers:
    """The merged raw values, and where each came from (kind for reports, origin for errors)."""

    def __init__(self) -> None:
        self.values: dict[str, dict[str, Any]] = {}
        self.kind: dict[str, str] = {}
        self.origin: dict[str, str] = {}

    def put(self, section: str, name: str, value: Any, kind: str, origin: str) -> None:
        self.values.setdefault(section, {})[name] = value
        self.kind[f"{section}.{name}"] = kind
        self.origin[f"{section}.{name}"] = origin


def _show(key: str, value: Any) -> str:
    return json.dumps(redact_value(key, value), default=str)


def _check_known(section: str, name: str, origin: str, what: str) -> None:
    if section not in SECTIONS:
        hint = difflib.get_close_matches(section, SECTIONS, n=1)
        extra = f"; did you mean [{hint[0]}]?" if hint else f"; sections are {', '.join(SECTIONS)}"
        raise ConfigError(f"unknown config section {what} ({origin}){extra}")
    fields = SECTIONS[section].model_fields
    if name not in fields:
        hint = difflib.get_close_matches(name, fields, n=1)
        extra = f"; did you mean {section}.{hint[0]}?" if hint else f"; valid: {', '.join(fields)}"
        raise ConfigError(f"unknown setting {what} ({origin}){extra}")


def _config_path(config_path: str | None, env: Mapping[str, str]) -> tuple[str | None, str]:
    if config_path:
        return config_path, "--config"
    if env.get(CONFIG_ENV):
        return env[CONFIG_ENV], CONFIG_ENV
    return None, ""


def _read_file(layers: _Layers, path: str, given_by: str) -> None:
    origin = f"file {path}"
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} (from {given_by}) does not exist") from None
    except OSError as exc:
        raise ConfigError(f"config file {path} (from {given_by}) cannot be read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {' '.join(str(exc).split())}") from None
    for section, table in data.items():
        if not isinstance(table, dict):
            if section in SECTIONS:
                raise ConfigError(f"'{section}' in {origin} must be a [{section}] table, not a value")
            _check_known(section, "", origin, f"'{section}'")
        for name, value in table.items():
            _check_known(section, name, origin, f"{section}.{name}")
            layers.put(section, name, value, "file", origin)


def _read_env(layers: _Layers, env: Mapping[str, str]) -> None:
    for var, raw in env.items():
        upper = var.upper()
        if not upper.startswith(ENV_PREFIX) or upper == CONFIG_ENV or raw == "":
            continue
        section, _, name = upper[len(ENV_PREFIX) :].lower().partition("_")
        if section not in SECTIONS:
            continue  # other AYB_* variables belong to other AYB components
        origin = f"env {var}"
        _check_known(section, name, origin, f"{section}.{name or '?'}")
        value: Any = raw
        if name == "handlers":
            try:
                value = json.loads(raw)
            except json.JSONDecodeError:
                raise ConfigError(
                    f"invalid setting jobs.handlers = {json.dumps(raw)} ({origin}): must be a JSON list "
                    'of "module:callable" strings, e.g. ["myapp.jobs:send_email"]'
                ) from None
        layers.put(section, name, value, "env", origin)


def _read_overrides(layers: _Layers, overrides: Mapping[str, Any]) -> None:
    for top, value in overrides.items():
        if isinstance(value, Mapping):
            pairs = [(top, name, inner) for name, inner in value.items()]
        else:
            pairs = [(*top.partition(".")[::2], value)]
        for section, name, inner in pairs:
            if inner is None:
                continue  # a flag that was not given
            _check_known(section, name, "command line", f"{section}.{name}")
            layers.put(section, name, inner, "cli", "command line")


def _error_line(exc: ValidationError, layers: _Layers) -> str:
    parts = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"][:2])
        section, _, name = key.partition(".")
        value = layers.values.get(section, {}).get(name, err.get("input"))
        reason = err["msg"].removeprefix("Value error, ")
        if err["type"] in ("greater_than_equal", "less_than_equal"):
            lo, hi = _bounds(section, name)
            reason = f"must be between {lo} and {hi}"
        origin = layers.origin.get(key, "default")
        parts.append(f"invalid setting {key} = {_show(key, value)} ({origin}): {reason}")
    return "; ".join(parts)


def _bounds(section: str, name: str) -> tuple[Any, Any]:
    meta = SECTIONS[section].model_fields[name].metadata
    lo = next((m.ge for m in meta if isinstance(m, Ge)), None)
    hi = next((m.le for m in meta if isinstance(m, Le)), None)
    return lo, hi


def load_settings(
    config_path: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Build the effective settings; raise ConfigError (one line: key, value, source) if invalid.

    `config_path` (else $AYB_CONFIG) names a TOML file, which must exist when given. `overrides` are CLI
    values as {"jobs": {"enabled": True}} (or {"jobs.enabled": True}); None values are skipped.
    """
    env = os.environ if environ is None else environ
    layers = _Layers()
    path, given_by = _config_path(config_path, env)
    if path:
        _read_file(layers, path, given_by)
    _read_env(layers, env)
    _read_overrides(layers, overrides or {})
    try:
        settings = Settings.model_validate(layers.values)
    except ValidationError as exc:
        raise ConfigError(_error_line(exc, layers)) from None
    # Resolve `<data>` now, with the environment we were given, so reports show the real paths.
    if not settings.database.embedded_data_dir:
        settings.database.embedded_data_dir = str(data_dir(env) / "postgres")
    if not settings.admin.token_file:
        settings.admin.token_file = str(data_dir(env) / "admin-token")
    settings._sources = dict(layers.kind)
    return settings
