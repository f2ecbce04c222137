"""The admin CLI (`python -m ayb_jobs jobs …`, `schedules …`) against a real HTTP server and database.

The server is uvicorn serving `create_app` in a background thread with its own event loop and pool;
it counts requests, so a test can show that bad input is rejected before anything is sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
import structlog
import uvicorn

from ayb_jobs.api.app import create_app
from ayb_jobs.handlers import default_registry
from ayb_jobs.metrics import Metrics
from ayb_jobs.service import JobService

TOKEN = "cli-test-admin-token-0123456789"
ADMIN_URL = os.environ.get("AYB_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
START_TIMEOUT_S = 15


class _QuietServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:  # signals belong to pytest, not to this server
        yield


class LiveServer:
    """uvicorn + create_app in a thread; `requests` counts the HTTP requests it received."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.requests = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._server: _QuietServer | None = None
        self._thread = threading.Thread(target=self._run, name="cli-test-server", daemon=True)

    def start(self) -> None:
        self._thread.start()
        if not self._started.wait(START_TIMEOUT_S) or self._error:
            raise RuntimeError(f"test server did not start: {self._error!r}")

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        self._thread.join(START_TIMEOUT_S)

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported to start() instead of dying silently in the thread
            self._error = exc
            self._started.set()

    async def _serve(self) -> None:
        pool = await asyncpg.create_pool(self.dsn, min_size=1, max_size=4)
        try:
            app = create_app(
                JobService(pool, default_registry()),
                token=TOKEN,
                jobs_enabled=True,
                metrics=Metrics(),
                readiness=_ready,
            )
            config = uvicorn.Config(self._counting(app), log_config=None, lifespan="off", access_log=False)
            self._server = _QuietServer(config)
            serve = asyncio.create_task(self._server.serve(sockets=[self.sock]))
            # uvicorn exposes only a `started` flag, no event; start() bounds the wait with a deadline.
            while not self._server.started and not serve.done():  # noqa: ASYNC110
                await asyncio.sleep(0.01)
            self._started.set()
            await serve
        finally:
            await pool.close()

    def _counting(self, app):
        async def counted(scope, receive, send):
            if scope["type"] == "http":
                self.requests += 1
            await app(scope, receive, send)

        return counted


async def _ready() -> str | None:
    return None


def _url_for(dbname: str) -> str:
    return urlunsplit(urlsplit(ADMIN_URL)._replace(path="/" + dbname))


@pytest.fixture(scope="module")
async def live_db(template_db: str) -> AsyncIterator[str]:
    """One migrated database for this module; tests create their own rows and names."""
    name = f"ayb_cli_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(ADMIN_URL)
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
        yield _url_for(name)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def _drop_event(_logger, _method, _event):
    raise structlog.DropEvent


@pytest.fixture(scope="module")
def server(live_db: str) -> Iterator[LiveServer]:
    # The server's own logs are not under test here, and rendering an unexpected error's traceback on
    # a busy machine can take longer than the CLI's request timeout.
    saved = structlog.get_config()
    structlog.configure(processors=[_drop_event])
    srv = LiveServer(live_db)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()
        structlog.configure(**saved)


def _env(tmp: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AYB_")}
    env.update(HOME=tmp, XDG_DATA_HOME=os.path.join(tmp, "data"), PYTHONUNBUFFERED="1")
    return env


@pytest.fixture(scope="module")
def cli_env(tmp_path_factory) -> dict[str, str]:
    return _env(str(tmp_path_factory.mktemp("cli-home")))


def run_cli(
    env: dict[str, str], *args: str, url: str | None = None, token: str | None = TOKEN
) -> subprocess.CompletedProcess[str]:
    extra = (["--url", url] if url else []) + (["--admin-token", token] if token else [])
    return subprocess.run(
        [sys.executable, "-m", "ayb_jobs", *args, *extra],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


@pytest.fixture
def cli(server: LiveServer, cli_env: dict[str, str]):
    def call(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        result = run_cli(cli_env, *args, url=server.url)
        if ok:
            assert result.returncode == 0, result.stderr
        return result

    return call


def as_json(result: subprocess.CompletedProcess[str]) -> dict:
    return json.loads(result.stdout)


# --- jobs -------------------------------------------------------------------------------------------


def test_enqueue_get_list_cancel_retry(cli) -> None:
    key = f"k-{uuid.uuid4().hex}"
    job = as_json(
        cli(
            "jobs",
            "enqueue",
            "job_prune",
            "--payload",
            '{"completed_retention_hours": 5}',
            "--run-at",
            "2030-01-01T00:00:00Z",
            "--max-attempts",
            "4",
            "--idempotency-key",
            key,
            "--json",
        )
    )
    assert job["type"] == "job_prune" and job["maxAttempts"] == 4 and job["idempotencyKey"] == key
    assert job["runAt"] == "2030-01-01T00:00:00Z" and job["payload"] == {"completed_retention_hours": 5}

    shown = as_json(cli("jobs", "get", job["id"], "--json"))
    assert shown["id"] == job["id"]

    listed = as_json(
        cli("jobs", "list", "--type", "job_prune", "--state", "queued", "--limit", "500", "--json")
    )
    assert job["id"] in [j["id"] for j in listed["items"]] and listed["total"] >= 1
    table = cli("jobs", "list", "--type", "job_prune").stdout.splitlines()
    assert table[0].split()[:3] == ["ID", "TYPE", "STATE"] and any(job["id"] in line for line in table)

    canceled = cli("jobs", "cancel", job["id"])
    assert canceled.stdout.strip() == f"job {job['id']} (job_prune) canceled"
    retried = as_json(cli("jobs", "retry", job["id"], "--json"))
    assert retried["state"] == "queued" and retried["attempts"] == 0


def test_jobs_explain_prints_each_reason_on_its_own_line(cli) -> None:
    job = as_json(cli("jobs", "enqueue", "job_prune", "--run-at", "2099-01-01T00:00:00Z", "--json"))
    lines = cli("jobs", "explain", job["id"]).stdout.splitlines()
    assert lines[0] == f"job {job['id']}: queued"
    assert lines[1].startswith("  scheduled_in_future: it is due at 2099-01-01T00:00:00Z")
    reasons = as_json(cli("jobs", "explain", job["id"], "--json"))["reasons"]
    assert reasons[0]["code"] == "scheduled_in_future"
    bad = cli("jobs", "explain", "not-an-id", ok=False)
    assert bad.returncode == 2 and "invalid job id" in bad.stderr


def test_stats(cli) -> None:
    cli("jobs", "enqueue", "stale_session_cleanup")
    stats = as_json(cli("jobs", "stats", "--json"))
    assert stats["queued"] >= 1 and "oldestQueuedAgeSec" in stats
    text = cli("jobs", "stats").stdout
    assert text.splitlines()[0].split() == ["STATE", "JOBS"] and "oldest due job waiting" in text


def test_server_errors_exit_1_with_the_servers_message(cli) -> None:
    missing = cli("jobs", "get", str(uuid.uuid4()), ok=False)
    assert missing.returncode == 1 and "not found" in missing.stderr and missing.stderr.count("\n") == 1
    unknown = cli("jobs", "enqueue", "no_such_type", ok=False)
    assert unknown.returncode == 1 and "unknown job type 'no_such_type'; registered:" in unknown.stderr
    key = f"dup-{uuid.uuid4().hex}"
    cli("jobs", "enqueue", "job_prune", "--idempotency-key", key)
    dup = cli("jobs", "enqueue", "job_prune", "--idempotency-key", key, ok=False)
    assert dup.returncode == 1 and "already exists" in dup.stderr
    job = as_json(cli("jobs", "enqueue", "job_prune", "--json"))
    not_failed = cli("jobs", "retry", job["id"], ok=False)
    assert not_failed.returncode == 1 and not_failed.stderr.startswith("ayb-jobs: ")


def test_wrong_token_says_token_rejected(server, cli_env) -> None:
    result = run_cli(cli_env, "jobs", "stats", url=server.url, token="wrong-token-wrong-token")
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    assert "token rejected" in result.stderr and "--admin-token" in result.stderr
    assert "wrong-token" not in result.stderr


def test_missing_token_says_where_it_looked_and_how_to_give_one(server, tmp_path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ayb_jobs", "jobs", "stats", "--url", server.url],
        capture_output=True, text=True, env=_env(str(tmp_path)), cwd=tmp_path, timeout=60,
    )
    assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
    assert "no admin token was found" in result.stderr and "token rejected" not in result.stderr
    assert f"{tmp_path}/data/admin-token" in result.stderr  # where scripts/run.sh writes it
    assert f"{tmp_path}/data/ayb-jobs/admin-token" in result.stderr  # <data> ($XDG_DATA_HOME here)
    assert "/var/lib/ayb-jobs/admin-token" in result.stderr  # the systemd unit's StateDirectory
    assert "--admin-token" in result.stderr and "AYB_ADMIN_TOKEN" in result.stderr


def test_token_of_scripts_run_sh_is_found_in_the_working_directory(server, tmp_path) -> None:
    """scripts/run.sh writes ./data/admin-token; the CLI run from the checkout finds it, and it gets
    past a stale token in the default location (a daemon run earlier) by trying the next file."""
    env = _env(str(tmp_path))
    stale = Path(env["XDG_DATA_HOME"]) / "ayb-jobs" / "admin-token"
    stale.parent.mkdir(parents=True)
    stale.write_text("stale-token-from-an-older-daemon\n")
    (tmp_path / "data").mkdir(exist_ok=True)
    (tmp_path / "data" / "admin-token").write_text(TOKEN + "\n")
    result = subprocess.run(
        [sys.executable, "-m", "ayb_jobs", "jobs", "stats", "--url", server.url, "--json"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "queued" in as_json(result)


def test_local_token_files_are_not_sent_to_another_machine(tmp_path, monkeypatch) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "admin-token").write_text(TOKEN + "\n")
    from ayb_jobs.cli.client import find_tokens
    from ayb_jobs.config import load_settings

    monkeypatch.chdir(tmp_path)
    env = _env(str(tmp_path))
    remote = find_tokens(None, lambda: load_settings(environ=env), "http://10.1.2.3:8090", env)
    local = find_tokens(None, lambda: load_settings(environ=env), "http://127.0.0.1:8090", env)
    assert remote.tokens == [] and [t.value for t in local.tokens] == [TOKEN]


BAD_INPUT = [
    ("jobs", "get", "not-a-uuid"),
    ("jobs", "list", "--limit", "ten"),
    ("jobs", "list", "--state", "sleeping"),
    ("jobs", "enqueue", "job_prune", "--payload", "{not json"),
    ("jobs", "enqueue", "job_prune", "--payload", "[1, 2]"),
    ("jobs", "enqueue", "job_prune", "--max-attempts", "false", "--run-at", "tomorrow"),
    ("schedules", "create", "--name", "x", "--job-type", "job_prune", "--cron", "0 0 31 2 *"),
    ("schedules", "create", "--name", "x", "--job-type", "job_prune", "--cron", "@daily", "--enabled", "yes"),
    (
        "schedules",
        "create",
        "--name",
        "x",
        "--job-type",
        "job_prune",
        "--cron",
        "@daily",
        "--timezone",
        "Mars/X",
    ),
    ("schedules", "update", str(uuid.uuid4())),
    ("schedules", "preview", "@daily", "--count", "51"),
    ("schedules", "trigger", "x"),
]


def test_bad_input_exits_2_before_any_request(server, cli) -> None:
    before = server.requests
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda args: cli(*args, ok=False), BAD_INPUT))
    for args, result in zip(BAD_INPUT, results, strict=True):
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert result.stderr.startswith("ayb-jobs: ") and result.stderr.count("\n") == 1, (
            args,
            result.stderr,
        )
    assert server.requests == before


def test_stopped_daemon_is_one_line_exit_1(cli_env) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    result = run_cli(cli_env, "jobs", "list", url=url)
    assert result.returncode == 1
    assert result.stderr.startswith(f"ayb-jobs: no ayb-jobs daemon answers at {url}: ")
    assert "ayb-jobs run" in result.stderr and result.stderr.count("\n") == 1


def test_url_and_token_from_config_and_token_file(server, tmp_path) -> None:
    """Without --url/--admin-token, the CLI uses admin.listen and the daemon's token file."""
    token_file = tmp_path / "admin-token"
    token_file.write_text(TOKEN + "\n")
    config = tmp_path / "ayb.toml"
    port = server.url.rsplit(":", 1)[1]
    config.write_text(f'[admin]\nlisten = "127.0.0.1:{port}"\ntoken_file = "{token_file}"\n')
    result = run_cli(_env(str(tmp_path)), "jobs", "stats", "--config", str(config), "--json", token=None)
    assert result.returncode == 0, result.stderr
    assert "queued" in as_json(result)


# --- schedules --------------------------------------------------------------------------------------


def test_schedule_lifecycle(cli) -> None:
    name = f"cli_{uuid.uuid4().hex[:8]}"
    created = as_json(
        cli(
            "schedules",
            "create",
            "--name",
            name,
            "--job-type",
            "job_prune",
            "--cron",
            "*/5 * * * *",
            "--timezone",
            "Europe/London",
            "--payload",
            '{"failed_retention_hours": 24}',
            "--max-attempts",
            "2",
            "--json",
        )
    )
    sid = created["id"]
    assert created["name"] == name and created["timezone"] == "Europe/London" and created["maxAttempts"] == 2
    assert "nextRunAt" in created

    assert as_json(cli("schedules", "get", sid, "--json"))["cronExpr"] == "*/5 * * * *"
    listed = cli("schedules", "list")
    assert listed.stdout.splitlines()[0].split()[:2] == ["ID", "NAME"] and name in listed.stdout
    assert sid in [s["id"] for s in as_json(cli("schedules", "list", "--json"))["items"]]

    updated = as_json(cli("schedules", "update", sid, "--cron", "@hourly", "--enabled", "false", "--json"))
    assert updated["cronExpr"] == "0 * * * *" and updated["enabled"] is False and "nextRunAt" not in updated
    assert cli("schedules", "enable", sid).stdout.startswith(f"enabled schedule {name} ({sid}): 0 * * * *")
    assert as_json(cli("schedules", "disable", sid, "--json"))["enabled"] is False

    job = as_json(cli("schedules", "trigger", sid, "--json"))
    assert job["scheduleId"] == sid and job["type"] == "job_prune" and job["maxAttempts"] == 2

    assert cli("schedules", "delete", sid).stdout.strip() == f"deleted schedule {sid}"
    gone = cli("schedules", "delete", sid, ok=False)
    assert gone.returncode == 1 and "not found" in gone.stderr


def test_schedule_policies_and_history(cli, live_db) -> None:
    name = f"pol_{uuid.uuid4().hex[:8]}"
    created = as_json(cli("schedules", "create", "--name", name, "--job-type", "job_prune", "--cron",
                          "@daily", "--overlap", "skip", "--misfire", "all", "--misfire-max", "3", "--json"))
    assert (created["overlap"], created["misfire"], created["misfireMax"]) == ("skip", "all", 3)
    sid = created["id"]
    updated = as_json(cli("schedules", "update", sid, "--misfire", "skip", "--json"))
    assert (updated["overlap"], updated["misfire"]) == ("skip", "skip")
    assert "0 decisions" in cli("schedules", "history", sid).stdout

    async def decide() -> None:  # two decisions, as the scheduler records them
        conn = await asyncpg.connect(live_db)
        await conn.execute(
            "INSERT INTO _ayb_job_schedule_fires (schedule_id, slot_at, outcome) VALUES "
            "($1, '2030-01-01T00:00Z', 'skipped_misfire'), ($1, '2030-01-02T00:00Z', 'skipped_overlap')",
            uuid.UUID(sid))
        await conn.close()

    asyncio.run(decide())
    lines = cli("schedules", "history", sid).stdout.splitlines()
    assert lines[0].split()[:2] == ["SLOT", "OUTCOME"] and lines[-1] == "2 decisions"
    assert lines[1].split()[:2] == ["2030-01-02T00:00:00Z", "skipped_overlap"]
    items = as_json(cli("schedules", "history", sid, "--json"))["items"]
    assert [i["outcome"] for i in items] == ["skipped_overlap", "skipped_misfire"]
    bad = cli("schedules", "update", sid, "--overlap", "never", ok=False)
    assert bad.returncode == 2 and "--overlap must be one of allow, skip" in bad.stderr


def test_duplicate_schedule_name_is_a_server_error(cli) -> None:
    name = f"dup_{uuid.uuid4().hex[:8]}"
    cli("schedules", "create", "--name", name, "--job-type", "job_prune", "--cron", "@daily")
    again = cli(
        "schedules", "create", "--name", name, "--job-type", "job_prune", "--cron", "@daily", ok=False
    )
    assert again.returncode == 1 and "a schedule with this name already exists" in again.stderr


def test_schedule_delete_json_and_preview(cli) -> None:
    name = f"del_{uuid.uuid4().hex[:8]}"
    sid = as_json(
        cli("schedules", "create", "--name", name, "--job-type", "job_prune", "--cron", "@daily", "--json")
    )["id"]
    assert cli("schedules", "trigger", sid).stdout.startswith(f"triggered schedule {sid}: job ")
    assert as_json(cli("schedules", "delete", sid, "--json")) == {"id": sid, "deleted": True}

    times = as_json(
        cli("schedules", "preview", "30 2 * * *", "--timezone", "America/New_York", "--count", "3", "--json")
    )["times"]
    assert len(times) == 3 and all(t.endswith("Z") for t in times)
    text = cli("schedules", "preview", "@daily").stdout.splitlines()
    assert len(text) == 5 and all(t.endswith("T00:00:00Z") for t in text)


# --- help, job types, preview in a timezone ---------------------------------------------------------


def test_schedules_create_help_shows_cron_as_required(cli_env) -> None:
    result = run_cli(cli_env, "schedules", "create", "--help", token=None)
    usage = " ".join(result.stdout.split("\n\n")[0].split())
    assert result.returncode == 0 and "--cron EXPR" in usage and "[--cron EXPR]" not in usage
    missing = run_cli(cli_env, "schedules", "create", "--name", "x", "--job-type", "job_prune", token=None)
    assert missing.returncode == 2 and "--cron" in missing.stderr


def test_jobs_types_lists_the_registered_handlers(cli) -> None:
    data = as_json(cli("jobs", "types", "--json"))
    assert {"type": "job_prune", "builtin": True} .items() <= next(
        t for t in data["items"] if t["type"] == "job_prune"
    ).items()
    text = cli("jobs", "types").stdout.splitlines()
    assert text[0].split() == ["TYPE", "KIND", "DESCRIPTION"]
    assert any(line.startswith("job_prune") and "built-in" in line for line in text)
    assert text[-1] == f"{len(data['items'])} job types"


def test_preview_in_a_timezone_shows_utc_and_local_time_with_offset(cli) -> None:
    # 02:30 New York across the spring-forward day: the offset changes from -05:00 to -04:00.
    lines = cli(
        "schedules", "preview", "30 3 * * *", "--timezone", "America/New_York", "--count", "3",
        "--after", "2026-03-07T12:00:00Z",
    ).stdout.splitlines()
    assert lines[0].split() == ["UTC", "LOCAL", "(America/New_York)"]
    assert lines[1].split() == ["2026-03-08T07:30:00Z", "2026-03-08", "03:30:00-04:00", "EDT"]
    assert lines[2].split() == ["2026-03-09T07:30:00Z", "2026-03-09", "03:30:00-04:00", "EDT"]
    before = cli("schedules", "preview", "30 3 * * *", "--timezone", "America/New_York", "--count", "1",
                 "--after", "2026-03-06T12:00:00Z").stdout.splitlines()
    assert before[1].split() == ["2026-03-07T08:30:00Z", "2026-03-07", "03:30:00-05:00", "EST"]


def test_preview_past_the_calendar_end_prints_the_servers_answer_in_one_line(cli) -> None:
    result = cli("schedules", "preview", "30 2 * * *", "--after", "9999-12-31T23:50:00Z", ok=False)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith("ayb-jobs: ") and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr and "no ayb-jobs daemon answers" not in result.stderr


@pytest.mark.parametrize(
    ("command", "applies", "does_not_apply"),
    [
        (["run"], ["--config", "--set"], ["--url", "--admin-token", "--json"]),
        (["migrate"], ["--config", "--json", "--set"], ["--url", "--admin-token"]),
        (["health"], ["--config", "--url", "--json"], ["--admin-token", "--set"]),
        (["config", "check"], ["--config", "--json", "--set"], ["--url", "--admin-token"]),
    ],
)
def test_local_commands_have_a_description_and_only_the_flags_that_apply(
    cli_env, command, applies, does_not_apply
) -> None:
    result = run_cli(cli_env, *command, "--help", token=None)
    assert result.returncode == 0
    usage, description = result.stdout.split("\n\n")[:2]
    assert len(description.split()) >= 8  # a sentence, not just the usage line
    for flag in applies:
        assert flag in usage
    for flag in does_not_apply:
        assert flag not in result.stdout


# --- unique keys, delete, bulk -----------------------------------------------------------------------


def test_enqueue_with_a_unique_key_twice_says_the_second_is_the_existing_job(cli) -> None:
    key = f"u-{uuid.uuid4().hex}"
    first = as_json(cli("jobs", "enqueue", "job_prune", "--unique-key", key, "--json"))
    again = cli("jobs", "enqueue", "job_prune", "--unique-key", key)
    assert again.stdout.strip() == (f"job {first['id']} (job_prune) holding unique key '{key}' is already "
                                    "queued; nothing enqueued")
    assert as_json(cli("jobs", "enqueue", "job_prune", "--unique-key", key, "--json"))["deduplicated"] is True


def test_jobs_delete_and_bulk_with_dry_run(cli) -> None:
    job = as_json(cli("jobs", "enqueue", "expired_oauth_cleanup", "--json"))
    refused = cli("jobs", "delete", job["id"], ok=False)
    assert refused.returncode == 1 and "is queued: only completed, failed or canceled jobs can be deleted" \
        in refused.stderr
    dry = cli("jobs", "bulk", "cancel", "--ids", job["id"], "--dry-run")
    assert dry.stdout.strip() == "dry run: 1 jobs match, 1 would be canceled; nothing changed"
    assert as_json(cli("jobs", "get", job["id"], "--json"))["state"] == "queued"
    assert as_json(cli("jobs", "bulk", "cancel", "--ids", job["id"], "--json")) == \
        {"matched": 1, "changed": 1, "dryRun": False}
    assert cli("jobs", "delete", job["id"]).stdout.strip() == f"deleted job {job['id']}"
    assert cli("jobs", "get", job["id"], ok=False).returncode == 1


def test_jobs_bulk_bad_input_exits_2_before_any_request(server, cli) -> None:
    before = server.requests
    for args, message in ((("jobs", "bulk", "explode", "--state", "failed"), "ACTION must be one of"),
                          (("jobs", "bulk", "retry"), "give at least one filter"),
                          (("jobs", "bulk", "retry", "--ids", "nope"), "invalid job id 'nope'"),
                          (("jobs", "delete", "nope"), "invalid job id 'nope'")):
        result = cli(*args, ok=False)
        assert result.returncode == 2 and message in result.stderr, (args, result.stderr)
    assert server.requests == before
