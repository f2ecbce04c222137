"""The job-type registry: job type name -> async handler.

Built-in types are registered at start; teams add their own through `jobs.handlers`
("package.module:register" callables that call `registry.add(...)`).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from ayb_jobs.errors import StartupError, UnknownJobType

TYPE_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")


@dataclass(frozen=True, slots=True)
class JobContext:
    """What a handler knows about the attempt it runs; `pool` is the daemon's asyncpg pool."""

    job_id: UUID
    job_type: str
    attempt: int
    max_attempts: int
    worker_id: str
    pool: Any
    log: Any


Handler = Callable[[dict[str, Any], JobContext], Awaitable[dict[str, Any] | None]]


@dataclass(frozen=True, slots=True)
class JobType:
    name: str
    handler: Handler
    builtin: bool
    description: str


class Registry:
    def __init__(self) -> None:
        self._types: dict[str, JobType] = {}
        self._loading_builtins = False

    def add(self, name: str, handler: Handler, *, description: str = "") -> None:
        if not TYPE_NAME.match(name):
            raise ValueError(f"invalid job type name {name!r}: use 1-100 of [A-Za-z0-9_.:-]")
        if name in self._types:
            kind = "a built-in type" if self._types[name].builtin else "already registered"
            raise ValueError(f"job type '{name}' is {kind}; choose another name")
        if not callable(handler):
            raise ValueError(f"handler for job type '{name}' is not callable")
        self._types[name] = JobType(name, handler, self._loading_builtins, description)

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
        module_name, _, attr = spec.partition(":")
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:
            raise StartupError(
                f"jobs.handlers: cannot import '{module_name}' ({spec}): {type(exc).__name__}: {exc}",
                exit_code=2,
            ) from exc
        register = getattr(module, attr, None)
        if not callable(register):
            raise StartupError(f"jobs.handlers: '{spec}' is not a callable in {module_name}", exit_code=2)
        try:
            register(self)
        except Exception as exc:  # a broken register() is a configuration problem: say which, exit 2
            raise StartupError(f"jobs.handlers: '{spec}' failed: {type(exc).__name__}: {exc}",
                               exit_code=2) from exc


def default_registry(handler_specs: list[str] | tuple[str, ...] = ()) -> Registry:
    """Built-in types, then each configured module's types."""
    from ayb_jobs.handlers.builtin import register_builtins

    registry = Registry()
    registry.add_builtins(register_builtins)
    for spec in handler_specs:
        registry.load(spec)
    return registry
