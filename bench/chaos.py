"""The reliability scenarios of tests/e2e/test_chaos_*.py at a larger scale, for N minutes (not run in CI).

    .venv/bin/python bench/chaos.py [--minutes 10] [--jobs 20000] [--kills 30] [--seed S]

Rounds alternate until the time is up (each kind runs at least once), each on a fresh private
Postgres cluster (tests/e2e/pgcluster.py):
1. crash: --daemons daemons (default 3), a random one killed with SIGKILL while it runs jobs and
   restarted, --kills times, while --jobs jobs flow (max_attempts 10, lease 30 s, recovery 5 s);
2. db-terminate: --terminations rounds of pg_terminate_backend on half the daemon's connections;
3. db-fast, db-immediate: --restarts server restarts (`-m fast`, `-m immediate`);
   the database rounds use jobs with max_attempts = 1 whose handlers query throughout.
Each round prints one line of figures; the end prints the totals and exits 1 if any round found a
problem (a job lost, failed, over its attempts, or run again with no fault to explain it).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests" / "e2e"), str(ROOT / "tests")]

from chaos_scenarios import Figures, crash_consistency, database_faults, private_cluster  # noqa: E402
from e2e_harness import DaemonProcess  # noqa: E402

TOTALS = ("jobs", "completed", "failed", "lost", "runs", "duplicates", "cut_mid_handler",
          "cut_before_outcome", "kills", "restarts", "terminations")


def say(message: str) -> None:
    print(message, flush=True)


async def one_round(kind: str, args: argparse.Namespace, seed: int) -> Figures:
    started: list[DaemonProcess] = []
    try:
        async with private_cluster() as cluster:
            if kind == "crash":
                return await crash_consistency(cluster.dsn(), started, jobs=args.jobs, kills=args.kills,
                                               daemons=args.daemons, seed=seed)
            rounds = args.terminations if kind == "terminate" else args.restarts
            return await database_faults(cluster, started, mode=kind, rounds=rounds, seed=seed)
    finally:
        for d in started:
            d.kill()


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--jobs", type=int, default=20000, help="jobs per crash round")
    parser.add_argument("--kills", type=int, default=30, help="kill -9s per crash round")
    parser.add_argument("--daemons", type=int, default=3)
    parser.add_argument("--terminations", type=int, default=40, help="pg_terminate_backend rounds")
    parser.add_argument("--restarts", type=int, default=6, help="server restarts per restart round")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    deadline = time.monotonic() + args.minutes * 60
    results: list[Figures] = []
    kinds = ["crash", "terminate", "fast", "immediate"]
    while time.monotonic() < deadline or len(results) < len(kinds):  # every kind at least once
        kind = kinds[len(results) % len(kinds)]
        figures = await one_round(kind, args, rng.randrange(1 << 30))
        results.append(figures)
        say(figures.line())
        for problem in figures.problems[:10]:
            say(f"  PROBLEM {problem[:500]}")
    totals = {k: sum(getattr(f, k) for f in results) for k in TOTALS}
    problems = sum(len(f.problems) for f in results)
    say(f"TOTAL rounds={len(results)} " + " ".join(f"{k}={v}" for k, v in totals.items())
        + f" max_lease_overdue_s={max(f.max_lease_overdue_s for f in results):.1f} problems={problems}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
