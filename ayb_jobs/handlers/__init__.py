"""The job-type registry: job type name -> async handler.

Built-in types are registered at start; teams add their own through `jobs.handlers`
("package.module:register" callables that call `registry.add(...)`), imported from the installed
packages or from the handler search path (`jobs.handlers_path`, the config file's directory and the
working directory; see `use_search_path`).
"""

from __future__ import annotations

import importlib
import re
import sys
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

from ayb_jobs.errors import StartupError, UnknownJobType
from ayb_jobs.models import MAX_PRIORITY, MIN_PRIORITY, QUEUE_NAME

# \Z, not $: $ also matches before a final newline (a type 'x\n' would never find its handler).
TYPE_NAME = re.compile(r"\A[A-Za-z0-9_.:-]{1,100}\Z")
MAX_ATTEMPTS_LIMIT = 100
MAX_TIMEOUT_S = 86400


class JobContext:
    """What a handler knows about the attempt it runs; `pool` is the daemon's asyncpg pool.

    `log` is bound to the job's fields when a handler first uses it: most handlers never log, and
    binding a structlog logger for each of thousands of jobs a second is measurable."""

    __slots__ = ("_log", "_log_fields", "attempt", "job_id", "job_type", "max_attempts", "pool", "worker_id")

    def __init__(self, job_id: UUID, job_type: str, attempt: int, max_attempts: int, worker_id: str,
                 pool: Any, log: Any, *, log_fields: Callable[[], dict[str, Any]] | None = None) -> None:
        self.job_id, self.job_type, self.attempt, self.max_attempts = job_id, job_type, attempt, max_attempts
        self.worker_id, self.pool = worker_id, pool
        self._log, self._log_fields = log, log_fields

    @property
    def log(self) -> Any:
        if self._log_fields is not None:
            self._log, self._log_fields = self._log.bind(**self._log_fields()), None
        return self._log

    def __repr__(self) -> str:
        return (f"JobContext(job_id={self.job_id!s}, job_type={self.job_type!r}, attempt={self.attempt}, "
                f"max_attempts={self.max_attempts}, worker_id={self.worker_id!r})")


Handler = Callable[[dict[str, Any], JobContext], Awaitable[dict[str, Any] | None]]


Backoff = Callable[[int], float]


@dataclass(frozen=True, slots=True)
class JobType:
    """A registered type and its policy; None means "no policy" (the column or daemon default)."""

    name: str
    handler: Handler
    builtin: bool
    description: str
    queue: str | None = None
    priority: int | None = None
    max_attempts: int | None = None
    timeout_s: float | None = None
    backoff: Backoff | None = None


def check_policy(name: str, *, queue: str | None, priority: int | None, max_attempts: int | None,
                 timeout_s: float | None, backoff: Backoff | None) -> None:
    """Raise ValueError naming the argument when a policy value is out of its range."""
    where = f"job type '{name}'"
    if queue is not None and (not isinstance(queue, str) or not QUEUE_NAME.match(queue)):
        raise ValueError(f"{where}: invalid queue {queue!r}: use 1-100 of [A-Za-z0-9_.:-]")
    if priority is not None and (type(priority) is not int or not MIN_PRIORITY <= priority <= MAX_PRIORITY):
        raise ValueError(f"{where}: priority must be a whole number from {MIN_PRIORITY} to {MAX_PRIORITY}, "
                         f"got {priority!r}")
    if max_attempts is not None and (type(max_attempts) is not int
                                     or not 1 <= max_attempts <= MAX_ATTEMPTS_LIMIT):
        raise ValueError(f"{where}: max_attempts must be a whole number from 1 to {MAX_ATTEMPTS_LIMIT}, "
                         f"got {max_attempts!r}")
    if timeout_s is not None and (isinstance(timeout_s, bool) or not isinstance(timeout_s, int | float)
                                  or not 0 < timeout_s <= MAX_TIMEOUT_S):
        raise ValueError(f"{where}: timeout_s must be a number of seconds above 0 and at most "
                         f"{MAX_TIMEOUT_S}, got {timeout_s!r}")
    if backoff is not None and not callable(backoff):
        raise ValueError(f"{where}: backoff must be a callable(attempt) -> seconds")


class Registry:
    def __init__(self) -> None:
        self._types: dict[str, JobType] = {}
        self._loading_builtins = False

    def add(self, name: str, handler: Handler, *, description: str = "", queue: str | None = None,
            priority: int | None = None, max_attempts: int | None = None, timeout_s: float | None = None,
            backoff: Backoff | None = None) -> None:
        """Register `name`; the keyword policies fill what an enqueue leaves out (queue, priority,
        max_attempts) and govern its runs (timeout_s, backoff(attempt) -> seconds)."""
        if not isinstance(name, str) or not TYPE_NAME.match(name):
            raise ValueError(f"invalid job type name {name!r}: use 1-100 of [A-Za-z0-9_.:-]")
        if name in self._types:
            kind = "a built-in type" if self._types[name].builtin else "already registered"
            raise ValueError(f"job type '{name}' is {kind}; choose another name")
        if not callable(handler):
            raise ValueError(f"handler for job type '{name}' is not callable")
        check_policy(name, queue=queue, priority=priority, max_attempts=max_attempts, timeout_s=timeout_s,
                     backoff=backoff)
        self._types[name] = JobType(name, handler, self._loading_builtins, description, queue, priority,
                                    max_attempts, None if timeout_s is None else float(timeout_s), backoff)

    def add_builtins(self, register: Callable[[Registry], None]) -> None:
        self._loading_builtins = True
        try:
            register(self)
        finally:
            self._loading_builtins = False

    def get(self, name: str) -> JobType | None:
        return self._types.get(name)

    def require(self, name: str) -> JobType:
        found = self._types.get(name)
        if found is None:
            raise UnknownJobType(name, self.names())
        return found

    def names(self) -> list[str]:
        return sorted(self._types)

    def types(self) -> list[JobType]:
        return [self._types[n] for n in self.names()]

    def load(self, spec: str) -> None:
        """Import "package.module:register" and let it add its types (startup errors exit 2)."""
        register = import_register(spec)
        try:
            register(self)
        except Exception as exc:  # a broken register() is a configuration problem: say which, exit 2
            raise StartupError(f"jobs.handlers: '{spec}' failed: {type(exc).__name__}: {exc}",
                               exit_code=2) from exc


# Directories added by `use_search_path`, named in the error for a module that cannot be found.
_search_path: list[str] = []


def use_search_path(dirs: Iterable[str | Path]) -> None:
    """Let `jobs.handlers` modules be imported from `dirs` (see Settings.handler_search_path).

    They go at the END of sys.path, so a handler directory can never shadow the standard library or
    an installed package (the working directory may hold anything, e.g. a stray `json.py`).
    """
    for entry in dirs:
        text = str(entry)
        if text not in sys.path:
            sys.path.append(text)
        if text not in _search_path:
            _search_path.append(text)


def import_register(spec: str) -> Callable[[Registry], None]:
    """Import the module of "package.module:register" and return its register callable, or raise a
    StartupError (exit 2) saying what to do. Used at start, before anything else starts, and by load()."""
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise StartupError(_not_found_message(spec, module_name, exc.name or ""), exit_code=2) from exc
    except Exception as exc:
        raise StartupError(
            f"jobs.handlers: cannot import '{module_name}' ({spec}): {type(exc).__name__}: {exc}",
            exit_code=2,
        ) from exc
    register = getattr(module, attr.split(".")[0], None)
    for part in attr.split(".")[1:]:
        register = getattr(register, part, None)
    if not callable(register):
        raise StartupError(f"jobs.handlers: '{spec}' is not a callable in {module_name}", exit_code=2)
    return register


def _not_found_message(spec: str, module_name: str, missing: str) -> str:
    parts = module_name.split(".")
    if missing not in {".".join(parts[:i]) for i in range(1, len(parts) + 1)}:
        # The handler module was found; something it imports is not installed.
        return (
            f"jobs.handlers: cannot import '{module_name}' ({spec}): No module named '{missing}' (imported "
            f"by it); install '{missing}' into the environment ayb-jobs runs from ({sys.prefix})"
        )
    searched = ", ".join(_search_path) or "(none)"
    return (
        f"jobs.handlers: no module named '{missing}' ({spec}); searched the installed packages and "
        f"{searched}. Put {parts[0]}/ (or {parts[0]}.py) beside the config file, add its parent "
        "directory to jobs.handlers_path (AYB_JOBS_HANDLERS_PATH), or install it into the same "
        "environment as ayb-jobs (pip install -e DIR)"
    )


def default_registry(handler_specs: list[str] | tuple[str, ...] = ()) -> Registry:
    """Built-in types, then each configured module's types."""
    from ayb_jobs.handlers.builtin import register_builtins

    registry = Registry()
    registry.add_builtins(register_builtins)
    for spec in handler_specs:
        registry.load(spec)
    return registry
