"""The [health] config section: defaults, ranges, strict numbers, and each value's source."""

from __future__ import annotations

import pytest

from ayb_jobs.config import load_settings, settings_report
from ayb_jobs.errors import ConfigError


def test_defaults() -> None:
    h = load_settings(environ={"HOME": "/h"}).health
    assert (h.xmin_horizon_warn_s, h.dead_tuples_warn, h.notify_queue_warn_ratio, h.check_interval_s) == (
        3600, 1_000_000, 0.5, 30)


@pytest.mark.parametrize(("var", "value", "reason"), [
    ("AYB_HEALTH_XMIN_HORIZON_WARN_S", "0", "must be between 1 and 604800"),
    ("AYB_HEALTH_XMIN_HORIZON_WARN_S", "604801", "must be between 1 and 604800"),
    ("AYB_HEALTH_DEAD_TUPLES_WARN", "0", "must be at least 1"),
    ("AYB_HEALTH_DEAD_TUPLES_WARN", "many", "must be an integer"),
    ("AYB_HEALTH_NOTIFY_QUEUE_WARN_RATIO", "1.01", "must be between 0 and 1"),
    ("AYB_HEALTH_NOTIFY_QUEUE_WARN_RATIO", "true", "must be a number"),
    ("AYB_HEALTH_CHECK_INTERVAL_S", "4", "must be between 5 and 3600"),
])
def test_out_of_range_values_name_key_value_and_source(var: str, value: str, reason: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={"HOME": "/h", var: value})
    key = "health." + var.removeprefix("AYB_HEALTH_").lower()
    assert caught.value.message == f'invalid setting {key} = "{value}" (env {var}): {reason}'


def test_file_and_env_values_are_reported_with_their_source(tmp_path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[health]\nxmin_horizon_warn_s = 60\nnotify_queue_warn_ratio = 0\n")
    s = load_settings(str(path), environ={"HOME": "/h", "AYB_HEALTH_DEAD_TUPLES_WARN": "5000000"})
    rows = {k: (v, src) for k, v, src in settings_report(s) if k.startswith("health.")}
    assert rows == {"health.xmin_horizon_warn_s": (60, "file"),
                    "health.dead_tuples_warn": (5_000_000, "env"),
                    "health.notify_queue_warn_ratio": (0.0, "file"),
                    "health.check_interval_s": (30, "default")}


def test_a_misspelt_health_key_is_an_error_with_a_hint(tmp_path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[health]\nxmin_horizon_warn = 60\n")
    with pytest.raises(ConfigError, match=r"did you mean health\.xmin_horizon_warn_s"):
        load_settings(str(path), environ={"HOME": "/h"})
