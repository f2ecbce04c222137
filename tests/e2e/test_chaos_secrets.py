"""Secrets (docs/reliability.md): the database password and the admin token never leave the daemon.

A private cluster with password (SCRAM) authentication; the daemon gets a DSN with the password and a
configured admin token, and is put through start, unauthenticated and wrongly authenticated
requests, bad input, failing jobs, a database outage and restart, /metrics scrapes and SIGTERM. No log
line (JSON or raw, tracebacks included), HTTP response or `config check` output may contain either
secret, in plain or percent-encoded form. A start with a wrong password, and DSNs malformed around
the password, fail with one line and the password redacted.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from chaos_scenarios import HANDLERS, execute, until
from e2e_harness import SUPPORT_TABLES
from pgcluster import PgCluster, free_port

# A "/" and an "@" in the password: the DSN must percent-encode them, and redaction must still hold.
PASSWORD = f"Ch40s/pw@{secrets.token_hex(6)}"
TOKEN = f"tok-{secrets.token_hex(16)}"
SECRETS = [PASSWORD, quote(PASSWORD, safe=""), TOKEN]
HBA = """\
local all all trust
host all postgres 127.0.0.1/32 trust
host all all 127.0.0.1/32 scram-sha-256
"""


@pytest.fixture
async def cluster() -> AsyncIterator[PgCluster]:
    """A cluster where `app` must give its password; the database `appdb` is app's."""
    c = await asyncio.to_thread(PgCluster.create)
    try:
        (c.data_dir / "pg_hba.conf").write_text(HBA)
        await c.start()
        escaped = PASSWORD.replace("'", "''")
        await execute(c.dsn(), f"CREATE ROLE app LOGIN PASSWORD '{escaped}'")
        await execute(c.dsn(), "CREATE DATABASE appdb OWNER app")
        await execute(app_dsn(c), SUPPORT_TABLES)
        yield c
    finally:
        await c.destroy()


def app_dsn(cluster: PgCluster, password: str = PASSWORD) -> str:
    return f"postgresql://app:{quote(password, safe='')}@127.0.0.1:{cluster.port}/appdb"


def leaks(text: str) -> list[str]:
    return [s for s in SECRETS if s in text]


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ayb_jobs", *args], env=env, capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)


def daemon_log(daemon: Any) -> str:
    return "\n".join(json.dumps(r, default=str) for r in daemon.records)


class Responses:
    """Every HTTP answer the test saw, to be searched for secrets at the end."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.seen: list[str] = []

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        r = await self.client.request(method, path, **kwargs)
        self.seen.append(f"{method} {path} -> {r.status_code} {dict(r.headers)} {r.text}")
        return r


async def exercise_http(http: Responses, cluster: PgCluster,
                        outage_logged: Callable[[], Any] = lambda: True) -> None:
    good = {"Authorization": f"Bearer {TOKEN}"}
    assert (await http.request("GET", "/api/admin/jobs")).status_code == 401
    assert (await http.request("GET", "/api/admin/jobs", headers={"Authorization": "Bearer wrong-token-x"})
            ).status_code == 401
    assert (await http.request("GET", "/api/admin/jobs", headers={"Authorization": TOKEN})).status_code == 401
    assert (await http.request("GET", "/api/admin/jobs", headers=good)).status_code == 200
    assert (await http.request("GET", "/api/admin/jobs/not-a-uuid", headers=good)).status_code == 400
    assert (await http.request("POST", "/api/admin/jobs", headers=good, content=b"{nope")).status_code == 400
    assert (await http.request("POST", "/api/admin/jobs", headers=good,
                               json={"type": "boom", "maxAttempts": 1})).status_code == 201
    assert (await http.request("POST", "/api/admin/jobs", headers=good, json={"type": "record"})
            ).status_code == 201
    assert (await http.request("GET", "/metrics")).status_code == 200

    # The database goes away: readiness says so (without the DSN), the API answers errors, the
    # pool and loops log their failures; then it comes back.
    await cluster.stop()
    await until(lambda: _status_is(http, "/readyz", 503), 20, "readyz 503 while the database is down")
    await http.request("GET", "/metrics")
    await http.request("GET", "/api/admin/jobs", headers=good)
    await http.request("POST", "/api/admin/jobs", headers=good, json={"type": "record"})
    # The failures are logged (that log is what the test searches for secrets) before it comes back.
    await until(_async(outage_logged), 20, "the outage in the daemon's log")
    await cluster.start()
    await until(lambda: _status_is(http, "/readyz", 200), 30, "readyz 200 after the restart")
    assert (await http.request("POST", "/api/admin/jobs", headers=good, json={"type": "record"})
            ).status_code == 201
    assert (await http.request("GET", "/metrics")).status_code == 200


def _async(check: Callable[[], Any]) -> Callable[[], Any]:
    async def wrapped() -> Any:
        return check()
    return wrapped


async def _status_is(http: Responses, path: str, status: int) -> bool:
    return (await http.request("GET", path)).status_code == status


async def test_password_and_token_never_leave_the_daemon(cluster: PgCluster,
                                                         start_daemon: Callable[..., Any]) -> None:
    port = free_port()
    overrides = {"AYB_ADMIN_ENABLED": "true", "AYB_ADMIN_LISTEN": f"127.0.0.1:{port}",
                 "AYB_ADMIN_TOKEN": TOKEN, "AYB_JOBS_HANDLERS": HANDLERS, "AYB_LOG_LEVEL": "debug"}
    daemon = start_daemon(name="secrets", url=app_dsn(cluster), **overrides)

    check = await asyncio.to_thread(cli, daemon.env, "config", "check")
    assert check.returncode == 0, check.stderr
    assert "database.url" in check.stdout and leaks(check.stdout + check.stderr) == [], check.stdout

    await daemon.event("daemon_started", timeout=30)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        http = Responses(client)
        await exercise_http(http, cluster, lambda: daemon.events("db_error")
                            or daemon.events("metrics_stats_unavailable"))
    daemon.signal(signal.SIGTERM)
    await daemon.expect_exit(0, timeout=45)

    log_text = daemon_log(daemon)
    assert leaks(log_text) == [], [line for line in log_text.splitlines() if leaks(line)][:5]
    answers = "\n".join(http.seen)
    assert leaks(answers) == [], [a for a in http.seen if leaks(a)][:5]


async def test_wrong_password_fails_the_start_in_one_line_without_the_password(
        cluster: PgCluster, start_daemon: Callable[..., Any]) -> None:
    wrong = f"Wr0ng/pw@{secrets.token_hex(6)}"
    daemon = start_daemon(name="wrong-password", url=app_dsn(cluster, wrong))
    code = await daemon.exit(timeout=30)
    assert code == 1, daemon.tail()
    text = daemon_log(daemon)
    assert wrong not in text and quote(wrong, safe="") not in text, text
    assert daemon.events("_raw") == [], f"non-JSON output (a traceback?):\n{daemon.tail()}"
    assert daemon.events("daemon_start_failed"), daemon.tail()


@pytest.mark.parametrize("dsn", [
    "postgresql://app:{pw}/x@127.0.0.1:1/db",  # an unencoded "/" in the password
    "postgresql://app:{pw}@127.0.0.1:notaport/db",
    "postgresql://app:{pw}@[::1:5432/db",
])
def test_malformed_dsn_is_refused_in_one_line_without_the_password(dsn: str, tmp_path: Any) -> None:
    pw = f"Leak{secrets.token_hex(6)}"
    env = {"AYB_DATABASE_URL": dsn.format(pw=pw), "AYB_JOBS_ENABLED": "true", "AYB_ADMIN_ENABLED": "false",
           "AYB_LOG_FORMAT": "json", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    for args in (("config", "check"), ("run",)):
        result = cli(env, *args)
        out = result.stdout + result.stderr
        assert pw not in out, f"`ayb-jobs {' '.join(args)}` printed the password:\n{out}"
        assert "Traceback" not in out, f"`ayb-jobs {' '.join(args)}` printed a traceback:\n{out}"
        assert result.returncode == 2, f"`ayb-jobs {' '.join(args)}` exited {result.returncode}:\n{out}"
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
