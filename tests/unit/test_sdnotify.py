"""SystemdNotifier speaks the notify protocol to a datagram socket we bind ourselves."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ayb_jobs.runtime.sdnotify import SystemdNotifier


@pytest.fixture
def manager(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    """A fake service manager: a bound SOCK_DGRAM socket named by NOTIFY_SOCKET."""
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(5)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    yield sock
    sock.close()


def received(sock: socket.socket) -> str:
    return sock.recv(4096).decode()


def test_lifecycle_messages_arrive(manager: socket.socket) -> None:
    notifier = SystemdNotifier()
    assert notifier.enabled
    assert notifier.ready()
    assert received(manager) == "READY=1"
    assert notifier.status("3 running, 120 queued")
    assert received(manager) == "STATUS=3 running, 120 queued"
    assert notifier.watchdog()
    assert received(manager) == "WATCHDOG=1"
    assert notifier.stopping()
    assert received(manager) == "STOPPING=1"
    notifier.close()


def test_notify_sends_several_fields_in_one_datagram(manager: socket.socket) -> None:
    notifier = SystemdNotifier()
    notifier.notify(READY=1, status="line one\nline two")
    assert received(manager).splitlines() == ["READY=1", "STATUS=line one line two"]


def test_abstract_address(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"ayb-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(5)
    monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
    try:
        assert SystemdNotifier().ready()
        assert received(sock) == "READY=1"
    finally:
        sock.close()


def test_no_socket_means_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    notifier = SystemdNotifier()
    assert not notifier.enabled
    assert notifier.ready() is False
    assert notifier.watchdog_interval_s() is None


def test_send_failure_is_swallowed_and_logged_once(tmp_path: Path) -> None:
    events: list[str] = []

    class Log:
        def warning(self, event: str, **fields: object) -> None:
            events.append(event)

    notifier = SystemdNotifier({"NOTIFY_SOCKET": str(tmp_path / "nobody-listens")}, log=Log())
    assert notifier.ready() is False
    assert notifier.stopping() is False
    assert events == ["sd_notify_failed"]


@pytest.mark.usefixtures("manager")
def test_watchdog_interval_is_half_the_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    assert SystemdNotifier().watchdog_interval_s() == 15.0
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert SystemdNotifier().watchdog_interval_s() == 15.0


@pytest.mark.usefixtures("manager")
def test_watchdog_meant_for_another_pid_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))
    assert SystemdNotifier().watchdog_interval_s() is None


@pytest.mark.usefixtures("manager")
@pytest.mark.parametrize("value", ["", "0", "abc"])
def test_no_or_bad_watchdog_usec(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", value)
    assert SystemdNotifier().watchdog_interval_s() is None
