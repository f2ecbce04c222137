"""`ayb-jobs audit list` and `ayb-jobs workers list` against a real HTTP server and database (the
server and helpers of test_cli_admin.py)."""

from __future__ import annotations

import hashlib

import asyncpg
from test_cli_admin import TOKEN, as_json, cli, cli_env, live_db, server  # noqa: F401 (fixtures)


def test_audit_list_shows_the_enqueue_with_the_token_fingerprint_newest_first(cli) -> None:  # noqa: F811
    first = as_json(cli("jobs", "enqueue", "job_prune", "--json"))
    second = as_json(cli("jobs", "enqueue", "job_prune", "--json"))
    cli("jobs", "cancel", first["id"])

    listed = as_json(cli("audit", "list", "--action", "job.enqueue", "--limit", "2", "--json"))
    assert [e["target"] for e in listed["items"]] == [second["id"], first["id"]]
    assert {e["actor"] for e in listed["items"]} == {hashlib.sha256(TOKEN.encode()).hexdigest()[:12]}
    text = cli("audit", "list", "--limit", "1").stdout
    assert "job.cancel" in text and first["id"] in text and TOKEN not in text
    assert text.splitlines()[0].split() == ["AT", "ACTION", "TARGET", "ACTOR", "FROM", "DETAIL"]


def test_a_bad_action_is_refused_before_any_request(cli, server) -> None:  # noqa: F811
    before = server.requests
    result = cli("audit", "list", "--action", "job.explode", ok=False)
    assert result.returncode == 2 and "--action must be one of job.enqueue" in result.stderr
    assert server.requests == before


async def test_workers_list_marks_a_gone_worker(cli, live_db) -> None:  # noqa: F811
    conn = await asyncpg.connect(live_db)
    try:
        await conn.execute(
            "INSERT INTO _ayb_job_workers (worker_id, host, pid, version, started_at, last_seen_at, "
            "concurrency, in_flight) VALUES ('cli-alive', 'h1', 11, '1', now(), now(), 4, 1), "
            "('cli-gone', 'h2', 22, '1', now() - interval '1 hour', now() - interval '5 minutes', 2, 0) "
            "ON CONFLICT DO NOTHING")
    finally:
        await conn.close()
    data = as_json(cli("workers", "list", "--json"))
    alive = {w["workerId"]: w["alive"] for w in data["items"]}
    assert alive["cli-alive"] is True and alive["cli-gone"] is False
    rows = {line.split()[0]: line for line in cli("workers", "list").stdout.splitlines()[1:]}
    assert "GONE" in rows["cli-gone"] and "1/4" in rows["cli-alive"]
