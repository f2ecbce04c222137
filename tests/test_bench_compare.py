"""bench/compare.py keeps working: a --quick run of ayb-jobs on tiny sizes, as a real subprocess.

It asserts that the harness runs, checks exactly-once and prints its table; never a speed (those
belong to the benchmark itself, on a quiet machine).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--single-jobs", "20", "--batch-jobs", "1000", "--process-jobs", "200", "--backlog-jobs", "600",
        "--latency-jobs", "20", "--finished-jobs", "500"]


def test_a_quick_run_of_ayb_jobs_prints_every_workload_and_writes_markdown(tmp_path: Path) -> None:
    markdown = tmp_path / "table.md"
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "compare.py"), "--quick", "--only", "a,b,c,d,e", *TINY,
         "--timeout", "60", "--markdown", str(markdown)],
        capture_output=True, text=True, timeout=100, cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for label in ("(a) enqueue, 1 job per call", "(b) enqueue, 1,000 jobs per call",
                  "(c) process 200 queued", "(c) process with 600 queued (first 200)",
                  "(d) enqueue->start at 100/s, p99", "(e) process 200 with 500 finished jobs"):
        assert label in done.stdout, done.stdout
    assert "failed" not in done.stdout
    table = markdown.read_text()
    assert table.count("\n| (") == 9 and "| workload | unit | ayb-jobs |" in table


def test_an_unknown_workload_is_a_usage_error() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "compare.py"), "--only", "a,z"],
                          capture_output=True, text=True, timeout=30, cwd=ROOT)
    assert done.returncode == 2
    assert "unknown workload(s) z" in done.stderr
