"""The optional `embedded` extra: Postgres server binaries from the `pgserver` wheel work as the
embedded server for machines without a system Postgres (only its files are used, never its Python).

Installs pgserver (from PyPI, ~11 MB) into a throw-away folder and runs the embedded server from it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pgserver_site() -> Path:
    site = Path(tempfile.mkdtemp(prefix="ayb-pgserver-", dir="/tmp"))
    site.chmod(0o755)  # the test Postgres account must reach the binaries and their libraries
    try:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target",
                        str(site), "pgserver>=0.1"], check=True, capture_output=True, timeout=300)
        yield site
    finally:
        shutil.rmtree(site, ignore_errors=True)


def test_pgserver_binaries_run_the_embedded_server(pgserver_site: Path, run_as: str) -> None:
    base = Path(tempfile.mkdtemp(prefix="ayb-extra-", dir="/tmp"))
    base.chmod(0o755)
    script = textwrap.dedent(f"""
        import asyncio, asyncpg
        from ayb_jobs.embedded import EmbeddedPostgres, _pgserver_bindir

        async def main():
            bin_dir = _pgserver_bindir()
            assert bin_dir is not None and str(bin_dir).startswith({str(pgserver_site)!r}), bin_dir
            pg = EmbeddedPostgres({str(base / "pg")!r}, bin_dir=str(bin_dir), run_as_user={run_as!r})
            dsn = await pg.start()
            try:
                conn = await asyncpg.connect(dsn)
                print(await conn.fetchval("SHOW server_version"))
                await conn.close()
            finally:
                await pg.stop()

        asyncio.run(main())
    """)
    try:
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                              env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(pgserver_site)})
        assert done.returncode == 0, done.stderr[-2000:]
        assert done.stdout.strip()[:2].isdigit()
    finally:
        shutil.rmtree(base, ignore_errors=True)
