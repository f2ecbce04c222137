"""The job-type registry: built-ins, custom handler modules, and the start-up errors they can cause."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from ayb_jobs.errors import StartupError, UnknownJobType
from ayb_jobs.handlers import Registry, default_registry

BUILTINS = {"stale_session_cleanup", "webhook_delivery_prune", "expired_oauth_cleanup",
            "expired_auth_cleanup", "job_prune"}


async def noop(payload, ctx):
    return None


@pytest.fixture
def handler_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Write a module `name` with `body` onto sys.path; returns a factory."""
    monkeypatch.syspath_prepend(str(tmp_path))

    def write(name: str, body: str) -> str:
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(body))
        sys.modules.pop(name, None)
        return name

    return write


def test_builtins_are_registered_and_marked_builtin() -> None:
    registry = default_registry()
    assert set(registry.names()) == BUILTINS
    assert all(t.builtin and t.description for t in registry.types())


def test_custom_module_adds_its_types_as_not_builtin(handler_module) -> None:
    handler_module("team_jobs", """
        async def send(payload, ctx):
            return {"sent": 1}
        def register(registry):
            registry.add("send_receipt", send, description="Email a receipt")
    """)
    registry = default_registry(["team_jobs:register"])
    assert registry.require("send_receipt").builtin is False
    assert registry.require("send_receipt").description == "Email a receipt"


@pytest.mark.parametrize(
    ("body", "spec", "fragment"),
    [
        ("raise ImportError('no module named boto')", "broken_a:register", "cannot import 'broken_a'"),
        ("register = 42", "broken_b:register", "is not a callable"),
        ("def register(r):\n    r.add('job_prune', lambda p, c: None)", "broken_c:register", "built-in"),
        ("def register(r):\n    raise RuntimeError('no db')", "broken_d:register", "RuntimeError: no db"),
    ],
)
def test_a_broken_handler_module_is_a_start_up_error_with_exit_2(handler_module, body, spec, fragment):
    module = handler_module(spec.split(":")[0], body)
    with pytest.raises(StartupError) as info:
        default_registry([spec])
    assert info.value.exit_code == 2
    assert fragment in info.value.message and module in info.value.message


def test_adding_a_type_twice_or_with_a_bad_name_is_refused() -> None:
    registry = Registry()
    registry.add("x", noop)
    with pytest.raises(ValueError, match="already registered"):
        registry.add("x", noop)
    with pytest.raises(ValueError, match="invalid job type name"):
        registry.add("has space", noop)


def test_require_names_the_registered_types() -> None:
    with pytest.raises(UnknownJobType) as info:
        default_registry().require("nope")
    assert "unknown job type 'nope'; registered: expired_auth_cleanup" in info.value.message


@pytest.mark.parametrize(("kwargs", "named"), [
    ({"queue": "has space"}, "invalid queue"),
    ({"queue": ""}, "invalid queue"),
    ({"priority": 101}, "priority must be"),
    ({"priority": True}, "priority must be"),
    ({"max_attempts": 0}, "max_attempts must be"),
    ({"timeout_s": 0}, "timeout_s must be"),
    ({"timeout_s": "5"}, "timeout_s must be"),
    ({"backoff": 5}, "backoff must be a callable"),
])
def test_a_bad_type_policy_is_refused_naming_the_type_and_the_argument(kwargs, named) -> None:
    with pytest.raises(ValueError, match=named) as err:
        Registry().add("my.type", noop, **kwargs)
    assert "job type 'my.type'" in str(err.value)


def test_a_type_policy_is_kept_with_the_type(tmp_path) -> None:
    registry = Registry()
    registry.add("report", noop, queue="maintenance", priority=-3, max_attempts=1, timeout_s=2,
                 backoff=lambda attempt: 1.0)
    t = registry.require("report")
    assert (t.queue, t.priority, t.max_attempts, t.timeout_s) == ("maintenance", -3, 1, 2.0)
    assert t.backoff(1) == 1.0
    plain = default_registry().require("job_prune")
    assert (plain.queue, plain.priority, plain.max_attempts, plain.timeout_s, plain.backoff) == (None,) * 5


def test_a_handler_module_with_a_bad_policy_stops_the_start_with_exit_2(handler_module) -> None:
    name = handler_module("bad_policy_mod", """
        async def h(payload, ctx):
            return None

        def register(registry):
            registry.add("x", h, priority=500)
    """)
    with pytest.raises(StartupError) as err:
        default_registry([f"{name}:register"])
    assert err.value.exit_code == 2 and "priority must be" in err.value.message
