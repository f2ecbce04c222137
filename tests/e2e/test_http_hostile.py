"""Hostile HTTP clients against the real daemon: idle and half-sent connections beyond the process's
descriptor limit must not stall probes or jobs; hostile requests get clear 4xx and write nothing."""

from __future__ import annotations

import asyncio
import json
import resource
import signal
import subprocess
import sys
import threading
import time

import httpx
from e2e_harness import DaemonProcess, base_env, poll_until

from ayb_jobs import Client
from ayb_jobs.models import NewJob
from ayb_jobs.runtime.http import LINGER_S, REQUEST_READ_TIMEOUT_S

TOKEN = "e2e-hostile-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
FD_LIMIT = 512  # the daemon's soft and hard limit: it cannot raise it
IDLE = 700
HALF_SENT = 100
JOBS = 500


class LimitedDaemon(DaemonProcess):
    """A daemon started with a low RLIMIT_NOFILE, as a unit without LimitNOFILE would have."""

    def start(self) -> LimitedDaemon:
        def limit() -> None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (FD_LIMIT, FD_LIMIT))

        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ayb_jobs", "run"], env=self.env, preexec_fn=limit,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        self._reader = threading.Thread(target=self._read, name=f"{self.name}-stderr", daemon=True)
        self._reader.start()
        return self


def admin_env(db_url: str, **extra: str) -> dict[str, str]:
    return base_env(db_url, AYB_ADMIN_ENABLED="true", AYB_ADMIN_LISTEN="127.0.0.1:0", AYB_ADMIN_TOKEN=TOKEN,
                    AYB_LOG_LEVEL="info", AYB_JOBS_WORKER_CONCURRENCY="8", **extra)


async def _open(port: int, n: int, first_bytes: bytes = b"") -> list[tuple[asyncio.StreamReader,
                                                                         asyncio.StreamWriter]]:
    conns = []
    for _ in range(n):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        if first_bytes:
            writer.write(first_bytes)
        conns.append((reader, writer))
    return conns


async def _closed_by_server(reader: asyncio.StreamReader, timeout: float) -> bool:
    try:
        while await asyncio.wait_for(reader.read(65536), timeout):
            pass
    except (TimeoutError, ConnectionError):
        return False
    return True


async def test_idle_and_half_sent_connections_past_the_fd_limit_stall_neither_probes_nor_jobs(
        db, db_url, daemons) -> None:
    d = LimitedDaemon(admin_env(db_url), name="limited")
    daemons.append(d)
    d.start()
    url = (await d.event("daemon_started"))["admin_url"]
    port = int(url.rsplit(":", 1)[1])

    half_sent_at = time.monotonic()
    half_sent = await _open(port, HALF_SENT, b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-slow: ")
    idle = await _open(port, IDLE)  # together past the daemon's 512 descriptors
    try:
        async with httpx.AsyncClient(base_url=url, timeout=5) as http:
            started = time.monotonic()
            assert (await http.get("/healthz")).status_code == 200
            healthz_s = time.monotonic() - started
            # All of it before any request-read deadline could have freed a descriptor: the cap did it.
            assert time.monotonic() - half_sent_at < REQUEST_READ_TIMEOUT_S / 2
            async with Client(dsn=db_url) as client:
                await client.enqueue_many(NewJob("record", {"marker": str(i)}) for i in range(JOBS))
            await poll_until(lambda: db.fetchval("SELECT count(*) = $1 FROM e2e_runs", JOBS), timeout=40,
                             every=0.2, what=f"{JOBS} jobs run while the connections are held")
            assert (await http.get("/readyz")).status_code == 200
        # Every half-sent request is closed by the daemon (408, or dropped for a newer client).
        deadline = REQUEST_READ_TIMEOUT_S + LINGER_S + 10 - (time.monotonic() - half_sent_at)
        closed = await asyncio.gather(*(_closed_by_server(r, max(deadline, 1)) for r, _ in half_sent))
        assert all(closed), f"{closed.count(False)} half-sent connections still open"
    finally:
        for _, writer in half_sent + idle:
            writer.close()
    assert healthz_s < 2, healthz_s
    assert len(d.events("http_accept_failed")) <= 3
    assert not [r for r in d.events("_raw") if "out of system resource" in r.get("line", "")]
    d.signal(signal.SIGTERM)
    await d.expect_exit(0, timeout=20)


# --- hostile input -----------------------------------------------------------------------------------

MIB = 1024 * 1024


def _payload_of_size(total: int) -> bytes:
    """A valid enqueue body of exactly `total` bytes."""
    head, tail = b'{"type":"record","payload":{"pad":"', b'"}}'
    return head + b"x" * (total - len(head) - len(tail)) + tail


HOSTILE_BODIES = [
    ("over 1 MiB", _payload_of_size(MIB + 1), 413),
    ("invalid UTF-8", b'{"type":"record","payload":{"a":"\xff\xfe"}}', 400),
    ("NUL escape", b'{"type":"record","payload":{"a":"x\\u0000y"}}', 400),
    ("NUL in type", b'{"type":"rec\\u0000ord"}', 400),
    ("raw NUL byte", b'{"type":"record"\x00}', 400),
    ("huge float", b'{"type":"record","payload":{"n":1e5000}}', 400),
    ("huge integer maxAttempts", b'{"type":"record","maxAttempts":' + b"9" * 5000 + b"}", 400),
    ("nested 3000 deep", b'{"type":"record","payload":' + b'{"a":' * 3000 + b"1" + b"}" * 3000 + b"}", 400),
    ("runAt year 1", b'{"type":"record","runAt":"0001-01-01T00:00:00Z"}', 400),
    ("runAt year 10000", b'{"type":"record","runAt":"10000-01-01T00:00:00Z"}', 400),
    ("lone surrogate", b'{"type":"record","payload":{"a":"\\ud800"}}', 400),
    ("not an object", b"[1,2,3]", 400),
    ("empty", b"", 400),
]


async def test_hostile_requests_get_clear_4xx_and_write_nothing(db, db_url, daemons) -> None:
    d = DaemonProcess(admin_env(db_url, AYB_JOBS_ENABLED="true"), name="hostile")
    daemons.append(d)
    d.start()
    url = (await d.event("daemon_started"))["admin_url"]
    async with httpx.AsyncClient(base_url=url, timeout=10, headers=AUTH) as http:
        for name, body, status in HOSTILE_BODIES:
            response = await http.post("/api/admin/jobs", content=body,
                                       headers={"content-type": "application/json"})
            assert response.status_code == status, (name, response.text[:300])
            answer = response.json()
            assert answer["code"] == status and answer["message"], name
            assert "Traceback" not in response.text, name
        assert await db.fetchval("SELECT count(*) FROM _ayb_jobs") == 0, "a rejected request wrote a job"

        # Exactly 1 MiB is within the limit and is stored whole.
        at_limit = await http.post("/api/admin/jobs", content=_payload_of_size(MIB),
                                   headers={"content-type": "application/json"})
        assert at_limit.status_code == 201, at_limit.text[:300]

        # A huge integer inside the payload is a number jsonb can hold: stored exactly.
        big = await http.post("/api/admin/jobs", content=b'{"type":"sleep","runAt":"2999-01-01T00:00:00Z",'
                                                         b'"payload":{"n":' + b"9" * 400 + b"}}",
                              headers={"content-type": "application/json"})
        assert big.status_code == 201, big.text[:300]
        stored = await db.fetchval("SELECT payload->>'n' FROM _ayb_jobs WHERE id = $1", big.json()["id"])
        assert stored == "9" * 400

        # Header and method abuse.
        assert (await http.get("/api/admin/jobs/stats", headers=[("authorization", AUTH["Authorization"]),
                                                                  ("authorization", "Bearer x" * 3)])
                ).status_code == 400
        big_header = await http.get("/healthz", headers={"x-big": "h" * 200_000})
        assert big_header.status_code == 431 and big_header.json()["code"] == 431
        head = await http.head("/api/admin/jobs/stats")
        assert head.status_code == 200 and head.content == b""
        preview = await http.get("/api/admin/cron/preview", params={
            "expr": "* * * * *", "after": "0001-01-01T00:00:00Z", "timezone": "America/New_York"})
        assert preview.status_code == 400 and "1-9999" in preview.json()["message"]
        root = await http.get("/", follow_redirects=False)
        assert root.status_code == 302 and root.headers["location"] == "/admin/"

    # Raw protocol garbage: an envelope, not a reset or uvicorn's plain text.
    reader, writer = await asyncio.open_connection("127.0.0.1", int(url.rsplit(":", 1)[1]))
    writer.write(b"GET / HTTP/1.1\r\nhost: x\r\nbad\x00header: 1\r\n\r\n")
    raw = await asyncio.wait_for(reader.read(), LINGER_S + 5)
    writer.close()
    assert raw.startswith(b"HTTP/1.1 400 ") and json.loads(raw.partition(b"\r\n\r\n")[2])["code"] == 400

    assert await db.fetchval("SELECT count(*) FROM _ayb_jobs") == 2
    assert not d.events("api_unexpected_error")
    d.signal(signal.SIGTERM)
    await d.expect_exit(0, timeout=20)
