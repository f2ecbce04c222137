"""systemd notify protocol without a library (docs/deployment.md, systemd): datagrams to `$NOTIFY_SOCKET`.

Every method is a no-op when the daemon is not run by systemd (no NOTIFY_SOCKET). Failures to send
are logged once and otherwise ignored: supervision must never take the daemon down.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from typing import Any

import structlog


class SystemdNotifier:
    """Sends READY/STOPPING/STATUS/WATCHDOG to the service manager."""

    def __init__(self, environ: Mapping[str, str] | None = None, log: Any = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        # An address starting with "@" names a socket in the abstract namespace.
        self._address = "\0" + address[1:] if address.startswith("@") else address
        self._watchdog_usec = env.get("WATCHDOG_USEC", "")
        self._watchdog_pid = env.get("WATCHDOG_PID", "")
        self._log = log if log is not None else structlog.get_logger("ayb_jobs.sdnotify")
        self._sock: socket.socket | None = None
        self._failed_once = False

    @property
    def enabled(self) -> bool:
        return bool(self._address)

    def notify(self, **fields: object) -> bool:
        """Send one datagram of KEY=value lines (keys are upper-cased); True if it was sent."""
        if not self._address or not fields:
            return False
        lines = [f"{key.upper()}={_one_line(value)}" for key, value in fields.items()]
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.setblocking(False)  # a stuck manager must not stall the event loop
            self._sock.sendto("\n".join(lines).encode(), self._address)
        except OSError as exc:
            self._report_failure(exc)
            return False
        return True

    def ready(self) -> bool:
        return self.notify(READY=1)

    def stopping(self) -> bool:
        return self.notify(STOPPING=1)

    def status(self, text: str) -> bool:
        return self.notify(STATUS=text)

    def watchdog(self) -> bool:
        return self.notify(WATCHDOG=1)

    def watchdog_interval_s(self) -> float | None:
        """How often to send WATCHDOG=1 (half the timeout), or None when no watchdog is meant for us."""
        if not self._address or (self._watchdog_pid and self._watchdog_pid != str(os.getpid())):
            return None
        try:
            usec = int(self._watchdog_usec)
        except ValueError:
            return None
        return usec / 2 / 1_000_000 if usec > 0 else None

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _report_failure(self, exc: OSError) -> None:
        if not self._failed_once:
            self._failed_once = True
            self._log.warning("sd_notify_failed", error=str(exc), socket=self._address.replace("\0", "@"))


def _one_line(value: object) -> str:
    # One field per line in the protocol, so a value must not contain a newline.
    return str(value).replace("\n", " ")
