"""Logging: JSON lines with event/level/timestamp; stdlib loggers alike; no secrets."""

from __future__ import annotations

import io
import json
import logging
import re

import pytest

from ayb_jobs.config import LogSettings
from ayb_jobs.logs import add_secret, configure_logging, get_logger, reset_logging

ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")


@pytest.fixture
def stream():
    buf = io.StringIO()
    configure_logging(LogSettings(format="json", level="info"), buf)
    yield buf
    reset_logging()


def lines(buf: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in buf.getvalue().splitlines()]


def test_events_are_json_lines_with_event_level_and_utc_timestamp(stream):
    get_logger("ayb_jobs.test").info("job_completed", job_id="j1", duration_ms=12)
    [line] = lines(stream)
    assert line["event"] == "job_completed" and line["level"] == "info"
    assert line["job_id"] == "j1" and line["duration_ms"] == 12
    assert ISO_UTC.fullmatch(line["timestamp"])


def test_level_filters_events(stream):
    log = get_logger("ayb_jobs.test")
    log.debug("job_claimed")
    log.warning("db_error")
    assert [line["event"] for line in lines(stream)] == ["db_error"]


@pytest.mark.parametrize("name", ["uvicorn.error", "asyncpg.pool", "some.library"])
def test_stdlib_records_come_out_as_the_same_json(stream, name):
    logging.getLogger(name).warning("connection %s lost", "c1")
    [line] = lines(stream)
    assert line["event"] == "connection c1 lost" and line["level"] == "warning"
    assert line["logger"] == name and ISO_UTC.fullmatch(line["timestamp"])


def test_dsn_passwords_tokens_and_registered_secrets_are_redacted(stream):
    add_secret("generated-admin-token-0123456789")
    log = get_logger("ayb_jobs.test")
    log.error("db_error", error="cannot connect to postgres://app:hunter2@db/app", token="abcdefghijklmnopq")
    logging.getLogger("asyncpg.pool").warning("retrying postgresql://app:hunter2@db/app")
    log.info("token_written", detail="Authorization: Bearer generated-admin-token-0123456789")
    try:
        raise RuntimeError("dsn postgres://app:hunter2@db/app failed")
    except RuntimeError:
        log.exception("db_error")
    text = stream.getvalue()
    assert "hunter2" not in text and "abcdefghijklmnopq" not in text
    assert "generated-admin-token" not in text
    assert "postgres://app:***@db/app" in text and "postgresql://app:***@db/app" in text
    assert len(lines(stream)) == 4


def test_configuring_twice_does_not_duplicate_lines(stream):
    configure_logging(LogSettings(format="json"), stream)
    get_logger().info("daemon_started")
    logging.getLogger("uvicorn").info("started")
    assert [line["event"] for line in lines(stream)] == ["daemon_started", "started"]


def test_auto_format_is_json_when_not_a_tty_and_console_when_asked():
    buf = io.StringIO()
    configure_logging(LogSettings(format="auto"), buf)
    get_logger().info("daemon_started")
    assert json.loads(buf.getvalue())["event"] == "daemon_started"
    console = io.StringIO()
    configure_logging(LogSettings(format="console"), console)
    get_logger().info("daemon_started", port=8090)
    assert "daemon_started" in console.getvalue() and not console.getvalue().startswith("{")
    reset_logging()
