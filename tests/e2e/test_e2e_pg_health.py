"""Postgres health guardrails in the real daemon: the [health] settings from the environment, the
`pg_health_warning` line naming the session that holds the xmin horizon back, and the recovery."""

from __future__ import annotations

import asyncpg
import httpx

TOKEN = "e2e-pg-health-token-0123456789"


async def test_a_forgotten_transaction_is_logged_with_its_pid_and_then_recovered(db_url,
                                                                                 start_daemon) -> None:
    """1. a daemon starts with health.xmin_horizon_warn_s = 1 and the shortest interval (5 s);
    2. a session takes an xid and stays idle in its transaction;
    3. the daemon logs `pg_health_warning` naming that pid, and /api/admin/health says warning;
    4. the session commits: the daemon logs `pg_health_recovered` and the route says ok."""
    d = start_daemon(AYB_HEALTH_XMIN_HORIZON_WARN_S="1", AYB_HEALTH_CHECK_INTERVAL_S="5",
                     AYB_ADMIN_ENABLED="true", AYB_ADMIN_LISTEN="127.0.0.1:0", AYB_ADMIN_TOKEN=TOKEN)
    url = (await d.event("daemon_started"))["admin_url"]
    holder = await asyncpg.connect(db_url, server_settings={"application_name": "e2e-holder"})
    try:
        pid = holder.get_server_pid()
        tx = holder.transaction()
        await tx.start()
        await holder.fetchval("select txid_current()")
        warning = await d.event("pg_health_warning", lambda r: r.get("check") == "xmin_horizon", timeout=30)
        assert warning["level"] == "warning" and f"pid {pid}" in warning["message"]
        assert "e2e-holder" in warning["message"] and warning["holder"]["pid"] == pid
        async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            body = (await http.get("/api/admin/health")).json()
            assert body["status"] == "warning" and f"pid {pid}" in body["checks"][0]["message"]
            await tx.commit()
            await d.event("pg_health_recovered", lambda r: r.get("check") == "xmin_horizon", timeout=30)
            assert (await http.get("/api/admin/health")).json()["status"] == "ok"
    finally:
        await holder.close()
