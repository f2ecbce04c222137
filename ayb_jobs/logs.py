"""Structured logging: one format for our events and for stdlib loggers (uvicorn, asyncpg).

Logs go to **stderr**, so that the CLI's machine output (`--json`) on stdout stays clean; under systemd
and Docker stderr is collected like stdout. JSON lines when `log.format` is "json", or "auto" and stderr
is not a TTY; a console renderer otherwise. Every line has `event`, `level`, `timestamp` (UTC ISO 8601
with Z) and `logger`. Passwords in DSNs, `password=` pairs, `Bearer` tokens, secret-named fields and
registered secrets (`add_secret`) are replaced by *** in every string value before rendering.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable
from typing import Any, TextIO

import structlog

from ayb_jobs.config import LogSettings, redact_dsn

_HANDLER_MARK = "_ayb_jobs_handler"
_ROUTED_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "asyncpg")
# Fields that only ever hold values we generate (ids, type names, timestamps): skipped on the hot
# path. Free text (`event` of stdlib records, `error`, `result`...) is always scanned.
_NO_SECRETS = frozenset({"job_id", "job_type", "worker_id", "attempt", "duration_ms", "logger", "level",
                         "timestamp"})
_SECRET_FIELDS = frozenset({"password", "token", "admin_token", "authorization", "secret"})
_BEARER = re.compile(r"(Bearer\s+)\S+", re.IGNORECASE)
# What every redaction pattern needs to find: "user:pw@" in URLs, "password=/pwd=" pairs, "Bearer x".
_SUSPECT = re.compile(r"@|pass|pwd|bearer", re.IGNORECASE)
_secrets: set[str] = set()


def add_secret(value: str | None) -> None:
    """Scrub this exact string (e.g. a generated admin token) from every later log line."""
    if value and len(value) >= 4:  # too short a string would blank out ordinary words
        _secrets.add(value)


def redact_text(text: str) -> str:
    """`text` with DSN passwords, bearer tokens and registered secrets replaced by ***."""
    # One cheap search first: almost no log string can hold a secret, and this runs on every value
    # of every line (it was the daemon's biggest per-job cost).
    if _SUSPECT.search(text):
        text = _BEARER.sub(r"\1***", redact_dsn(text))
    for secret in _secrets:
        text = text.replace(secret, "***")
    return text


def _redact(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: "***" if _is_secret_field(k, v) else _redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_redact(v) for v in value)
    return value


def _is_secret_field(key: Any, value: Any) -> bool:
    return isinstance(key, str) and key.lower() in _SECRET_FIELDS and bool(value)


def redact_secrets(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """structlog processor: the last line of defence before rendering (in place: it runs per line)."""
    for key, value in event_dict.items():
        if key in _NO_SECRETS:
            continue
        if _is_secret_field(key, value):
            event_dict[key] = "***"
        elif type(value) is str:
            event_dict[key] = redact_text(value)
        elif isinstance(value, dict | list | tuple):
            event_dict[key] = _redact(value)
    return event_dict


_SHARED: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_logger_name,
    structlog.stdlib.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _renderer(log_settings: LogSettings, stream: TextIO) -> Any:
    if log_settings.format == "json" or (log_settings.format == "auto" and not _isatty(stream)):
        return structlog.processors.JSONRenderer()
    return structlog.dev.ConsoleRenderer(colors=_isatty(stream))


def configure_logging(
    log_settings: LogSettings | None = None, stream: TextIO | None = None, *, secrets: Iterable[str] = ()
) -> None:
    """Route structlog and stdlib logging to `stream` (default stderr). Calling again replaces the setup."""
    log_settings = log_settings or LogSettings()
    stream = stream or sys.stderr
    for secret in secrets:
        add_secret(secret)
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_SHARED,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            # Tracebacks become a string first, so the redaction below also covers them.
            structlog.processors.format_exc_info,
            redact_secrets,
            _renderer(log_settings, stream),
        ],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    setattr(handler, _HANDLER_MARK, True)
    root = logging.getLogger()
    _remove_our_handlers(root)
    root.addHandler(handler)
    root.setLevel(log_settings.level.upper())
    for name in _ROUTED_LOGGERS:
        # uvicorn's own dictConfig (if it ran) gives these private handlers and propagate=False.
        lib_logger = logging.getLogger(name)
        lib_logger.handlers.clear()
        lib_logger.propagate = True
        lib_logger.setLevel(logging.NOTSET)
    # Our own events skip stdlib logging: a filtering logger drops disabled levels at the call, and
    # a line goes straight to the stream. (Through stdlib, formatting one line per job was half of
    # the daemon's CPU time under load.) Both paths share the processors, so lines look the same.
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            _add_logger_name,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            redact_secrets,
            _renderer(log_settings, stream),
        ],
        logger_factory=_NamedLoggerFactory(stream),
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(log_settings.level.upper())),
        # Not cached: a logger fetched at import time must follow a later configure_logging().
        cache_logger_on_first_use=False,
    )


class _NamedWriteLogger(structlog.WriteLogger):
    """A WriteLogger that knows the name it was fetched with (the `logger` field)."""

    def __init__(self, file: TextIO, name: str) -> None:
        super().__init__(file)
        self.name = name


class _NamedLoggerFactory:
    """One writer per logger name, so an uncached logger does not build a new one per event."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._loggers: dict[str, _NamedWriteLogger] = {}

    def __call__(self, *args: Any) -> _NamedWriteLogger:
        name = str(args[0]) if args and args[0] else "ayb_jobs"
        found = self._loggers.get(name)
        if found is None:
            found = self._loggers[name] = _NamedWriteLogger(self._stream, name)
        return found


def _add_logger_name(logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    event_dict.setdefault("logger", getattr(logger, "name", "ayb_jobs"))
    return event_dict


def _remove_our_handlers(root: logging.Logger) -> None:
    for handler in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(handler)


def reset_logging() -> None:
    """Undo `configure_logging` (for tests)."""
    _remove_our_handlers(logging.getLogger())
    _secrets.clear()
    structlog.reset_defaults()


def get_logger(name: str | None = None, **initial_values: Any) -> Any:
    """A structlog logger; `log.info("job_completed", job_id=...)`. Name it after the module."""
    return structlog.get_logger(name, **initial_values)
