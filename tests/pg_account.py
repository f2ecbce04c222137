"""The unprivileged account that test Postgres servers run as when the tests run as root."""

from __future__ import annotations

import os
import pwd
import subprocess

PG_TEST_ACCOUNT = "aybtest"


def ensure_pg_test_account(name: str = PG_TEST_ACCOUNT) -> str:
    """Postgres refuses to run as root, so as root the tests use this account, creating it if
    needed. Tests may create accounts; the product never does (it says how)."""
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(name)
        except KeyError:
            created = subprocess.run(["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
                                      "--shell", "/usr/sbin/nologin", name], capture_output=True)
            # Parallel test workers may race to create it: the account existing is what counts.
            if created.returncode != 0:
                pwd.getpwnam(name)
    return name
