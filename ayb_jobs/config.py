"""Settings: defaults < TOML file < `AYB_*` environment < CLI overrides (docs/configuration.md).

The layers are read here rather than by pydantic-settings' own sources because every value must be
traceable to where it came from: `config check` prints each key's source, and an invalid value is
reported on one line naming the key, the value and the file path or environment variable. The merged
layers are then validated by the `Settings` model. Env names follow pydantic-settings' conventions
(`AYB_` prefix, `_` nested delimiter split once: AYB_JOBS_WORKER_CONCURRENCY → jobs.worker_concurrency).
"""

from __future__ import annotations

import contextlib
import difflib
import ipaddress
import json
import os
import re
import tomllib
import typing
import urllib.parse
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
    if value:
        check_dsn(value)
    return value


_SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
_PERCENT_HINT = "percent-encode it (e.g. / as %2F, @ as %40, # as %23, ? as %3F)"


def check_dsn(dsn: str) -> None:
    """Raise ValueError (saying what is wrong, never quoting the password) unless `dsn` is a URL the
    driver can connect with: postgres[ql]://[user[:password]@][host[:port][,host[:port]...]][/db][?opts].

    The checks follow asyncpg's own DSN parser, which otherwise fails at connect time with a traceback
    that can include the password (for example when a password holds an unencoded '/').
    """
    scheme, sep, _rest = dsn.partition("://")
    if not sep:
        if "=" in dsn:
            raise ValueError("must be a postgresql:// URL; libpq key=value strings are not supported")
        raise ValueError("must be a postgres:// or postgresql:// URL (or empty)")
    if scheme not in ("postgres", "postgresql"):
        shown = scheme if re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]{0,20}", scheme) else "?"
        raise ValueError(f"unknown scheme '{shown}': must be postgres:// or postgresql://")
    if any(ch.isspace() for ch in dsn):
        raise ValueError("contains whitespace; percent-encode spaces as %20")
    try:
        parsed = urllib.parse.urlsplit(dsn)
    except ValueError:
        raise ValueError("has a malformed [IPv6] host: write it as [::1]:5432, brackets closed") from None
    auth, at, hostspec = parsed.netloc.rpartition("@")
    if not at and "@" in parsed.path + parsed.query + parsed.fragment:
        raise ValueError(f"the password (or user name) contains '/', '?' or '#': {_PERCENT_HINT}")
    if "@" in auth:
        raise ValueError(f"the password (or user name) contains '@': {_PERCENT_HINT}")
    if parsed.fragment:
        raise ValueError(f"has a '#' fragment; if it is part of the password, {_PERCENT_HINT}")
    if hostspec:
        _check_hostlist(hostspec, unquote=True)
    _check_dsn_query(parsed.query)


def _check_hostlist(hostlist: str, *, unquote: bool) -> None:
    for spec in hostlist.split(","):
        if not spec:
            raise ValueError("has an empty host in its host list")
        if spec.startswith("/"):  # a unix socket directory
            continue
        if spec.startswith("["):
            match = re.fullmatch(r"\[([^\]]+)\](?::(.*))?", spec)
            if not match or not _is_ipv6(match.group(1)):
                raise ValueError("has a malformed IPv6 host: write it as [::1]:5432")
            addr, port = match.group(1), match.group(2)
        else:
            addr, _, port = spec.partition(":")
            if ":" in port:
                raise ValueError("has an IPv6 address without brackets: write it as [::1]:5432")
        if not addr:
            raise ValueError("has a port but no host name before it")
        if port:  # "host:" means the default port, as for the driver
            _check_port(urllib.parse.unquote(port) if unquote else port)


def _is_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(urllib.parse.unquote(text))
    except ValueError:
        return False
    return True


def _check_port(port: str) -> None:
    # The port is not quoted back: with a mistyped '@' it may be part of the password.
    if not port.isdigit() or not port.isascii():
        raise ValueError(
            "has a port that is not a number (a password goes before the host, as in "
            "user:password@host:5432, with / @ # ? in it written %2F %40 %23 %3F)"
        )
    if not 1 <= int(port) <= 65535:
        raise ValueError(f"has port {int(port)}, out of range 1-65535")


def _check_dsn_query(query: str) -> None:
    if not query:
        return
    try:
        params = urllib.parse.parse_qs(query, strict_parsing=True, keep_blank_values=True)
    except ValueError:
        raise ValueError("has a malformed ?query: use ?name=value&name=value") from None
    last = {name: values[-1] for name, values in params.items()}
    if "port" in last:
        for port in last["port"].split(","):
            _check_port(port)
    if last.get("host"):
        _check_hostlist(last["host"], unquote=False)
    if "sslmode" in last and last["sslmode"] not in _SSL_MODES:
        raise ValueError(f"has an unknown sslmode; use one of {', '.join(_SSL_MODES)}")


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


_QUEUE_RE = re.compile(r"[A-Za-z0-9_.:-]{1,100}")


def _queues(value: Any) -> list[str]:
    """The queues a daemon works: ["*"] for every queue, else names (that may not exist yet)."""
    if not isinstance(value, list) or not value:
        raise ValueError('must be a non-empty list of queue names, or ["*"] for every queue')
    for item in value:
        if item == "*":
            continue
        if not isinstance(item, str) or not _QUEUE_RE.fullmatch(item):
            shown = json.dumps(item)
            raise ValueError(f'entry {shown} is not "*" or a queue name (1-100 of [A-Za-z0-9_.:-])')
    if "*" in value and len(value) > 1:
        raise ValueError('"*" already means every queue; list either "*" or queue names')
    if len(set(value)) != len(value):
        raise ValueError("lists the same queue twice")
    return value


def _directories(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise ValueError("must be a list of directory names")
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
    worker_concurrency: _int_range(1, 1024) = 4
    poll_interval_ms: _int_range(100, 60000) = 1000
    lease_duration_s: _int_range(30, 3600) = 300
    max_retries_default: _int_range(1, 100) = 3
    scheduler_enabled: Bool = True
    scheduler_tick_s: _int_range(5, 3600) = 15
    job_timeout_s: _int_range(1, 86400) = 600
    shutdown_timeout_s: _int_range(0, 3600) = 30
    recovery_interval_s: _int_range(5, 3600) = 30
    handlers: Annotated[list[str], BeforeValidator(_handlers)] = Field(default_factory=list)
    handlers_path: Annotated[list[str], BeforeValidator(_directories)] = Field(default_factory=list)
    queues: Annotated[list[str], BeforeValidator(_queues)] = Field(default_factory=lambda: ["*"])

    @property
    def claim_queues(self) -> list[str] | None:
        """The queues to claim from; None means every queue."""
        return None if self.queues == ["*"] else list(self.queues)


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
    _config_file: Path | None = PrivateAttr(default=None)

    @property
    def config_file(self) -> Path | None:
        """The TOML file the settings were read from, if any (absolute)."""
        return self._config_file

    def handler_search_path(self) -> list[Path]:
        """Where `jobs.handlers` modules are looked for besides the installed packages: the
        `jobs.handlers_path` directories, then the config file's directory, then the working directory."""
        dirs = [Path(d) for d in self.jobs.handlers_path]
        if self._config_file is not None:
            dirs.append(self._config_file.parent)
        with contextlib.suppress(OSError):  # a working directory that was deleted is skipped
            dirs.append(Path.cwd())
        unique: list[Path] = []
        for d in dirs:
            if d not in unique:
                unique.append(d)
        return unique

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
    """Every dotted key, in the order of docs/configuration.md and config.example.toml."""
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


# Up to the LAST '@' of the word: a password with an unencoded '/' or '@' is still hidden whole.
_URL_PASSWORD = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@]*:)\S*(@)")
_KV_PASSWORD = re.compile(r"((?:password|passwd|pwd)\s*=\s*)('[^']*'|[^\s&;]+)", re.IGNORECASE)
# A DSN without '@' whose "port" is not a number: that "port" may well be a password (user:pw/x).
_NON_PORT = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@\[,]*:)(?!\d*(?:[/,?]|$))[^\s/,?]*")


def redact_dsn(dsn: str) -> str:
    """Replace passwords in URLs (`user:pw@`) and `password=` pairs inside `dsn` (or any text) by ***."""
    return _KV_PASSWORD.sub(r"\1***", _URL_PASSWORD.sub(r"\1***\2", dsn))


def redact_value(key: str, value: Any) -> Any:
    """A setting's value fit to print or log."""
    if key in SECRET_KEYS and value:
        return "***"
    if key in DSN_KEYS and isinstance(value, str):
        redacted = redact_dsn(value)
        return redacted if "@" in redacted else _NON_PORT.sub(r"\1***", redacted)
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
    except UnicodeDecodeError as exc:  # TOML files are UTF-8 by definition
        raise ConfigError(
            f"config file {path} is not valid UTF-8 (byte 0x{exc.object[exc.start]:02x} at offset "
            f"{exc.start}); save it as UTF-8"
        ) from None
    for section, table in data.items():
        if not isinstance(table, dict):
            if section in SECTIONS:
                raise ConfigError(f"'{section}' in {origin} must be a [{section}] table, not a value")
            _check_known(section, "", origin, f"'{section}'")
        for name, value in table.items():
            _check_known(section, name, origin, f"{section}.{name}")
            _check_toml_type(section, name, value, origin)
            layers.put(section, name, value, "file", origin)


_TOML_TYPE_NAMES = {bool: "a boolean", int: "an integer", float: "a float", str: "a string",
                    list: "an array", dict: "a table"}


def _toml_type_name(value: Any) -> str:
    return next((name for kind, name in _TOML_TYPE_NAMES.items() if isinstance(value, kind)), "a date/time")


def _check_toml_type(section: str, name: str, value: Any, origin: str) -> None:
    """TOML has types, so a value of the wrong one is a mistake (`worker_concurrency = "8"`); only
    environment variables and --set, which are text, are parsed."""
    annotation = SECTIONS[section].model_fields[name].annotation
    expected = typing.get_origin(annotation) or annotation
    if type(value) is expected:  # `is`: True is an int to isinstance, not to TOML
        return
    if expected is float and type(value) is int:  # `ratio = 0` is a number too
        return
    key = f"{section}.{name}"
    wanted = _TOML_TYPE_NAMES[expected]
    hint = ""
    if isinstance(value, str) and re.fullmatch(r"[+-]?\d+|true|false", value.strip()):
        hint = f" (write {value.strip()} without quotes)"
    raise ConfigError(
        f"invalid setting {key} = {_show(key, value)} ({origin}): must be {wanted}, "
        f"not {_toml_type_name(value)}{hint}"
    )


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
        value = _parse_list_text(name, raw, origin)
        layers.put(section, name, value, "env", origin)


# The list settings read as JSON when given as text, with what a valid value looks like.
_JSON_LISTS = {
    "handlers": 'of "module:callable" strings, e.g. ["myapp.jobs:send_email"]',
    "queues": 'of queue names, e.g. ["email", "default"], or ["*"] for every queue',
}


def _parse_list_text(name: str, raw: str, origin: str) -> Any:
    """The list settings given as text (environment, --set); other values are parsed by the models."""
    if name in _JSON_LISTS:
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            raise ConfigError(
                f"invalid setting jobs.{name} = {json.dumps(raw)} ({origin}): must be a JSON list "
                f"{_JSON_LISTS[name]}"
            ) from None
    if name == "handlers_path":
        return _path_list(raw)
    return raw


def _path_list(raw: str) -> Any:
    """AYB_JOBS_HANDLERS_PATH: a JSON list, or directories separated by ':' as in PYTHONPATH."""
    if raw.lstrip().startswith("["):
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            return raw  # reported by the validator
    return [part for part in raw.split(os.pathsep) if part]


def _resolve_handler_dirs(settings: Settings, layers: _Layers, config_file: Path | None) -> None:
    """Make `jobs.handlers_path` absolute (relative to the config file when set there, else to the
    working directory) and check that each entry is a directory."""
    key = "jobs.handlers_path"
    from_file = layers.kind.get(key) == "file" and config_file is not None
    base = config_file.parent if from_file and config_file is not None else Path.cwd()
    resolved = []
    for entry in settings.jobs.handlers_path:
        path = (base / Path(entry).expanduser()).resolve()
        if not path.is_dir():
            raise ConfigError(
                f"invalid setting {key} = {_show(key, settings.jobs.handlers_path)} "
                f"({layers.origin[key]}): {path} is not a directory"
            )
        resolved.append(str(path))
    settings.jobs.handlers_path = resolved


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
            if isinstance(inner, str):
                inner = _parse_list_text(name, inner, "command line")
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
    config_file = Path(path).resolve() if path else None
    _resolve_handler_dirs(settings, layers, config_file)
    settings._sources = dict(layers.kind)
    settings._config_file = config_file
    return settings
