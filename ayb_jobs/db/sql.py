"""Loads queries.sql: `-- name: x` blocks become entries of `SQL`."""

from __future__ import annotations

import re
from importlib import resources

_NAME = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


def load(text: str) -> dict[str, str]:
    parts = _NAME.split(text)
    statements: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in statements:
            raise ValueError(f"queries.sql defines '{name}' twice")
        statements[name] = body.strip()
    return statements


def without(statement: str, clause: str) -> str:
    """The statement with one clause taken out (the clause must be there, once)."""
    if statement.count(clause) != 1:
        raise ValueError(f"expected the clause {clause!r} once")
    return statement.replace(clause, "")


SQL: dict[str, str] = load(resources.files("ayb_jobs.db").joinpath("queries.sql").read_text("utf-8"))
# enqueue_jobs for a batch in which no job has an idempotency or unique key: nothing can conflict
# then (the ids are fresh), so neither the speculative insertion that ON CONFLICT costs (about
# 3.5 us a row, a sixth of a 1,000-job batch's time in Postgres) nor the order of the rows (a sort)
# matters. Derived, so the two cannot drift apart.
SQL["enqueue_unkeyed_jobs"] = without(without(SQL["enqueue_jobs"], "\n    ON CONFLICT DO NOTHING"),
                                      "\n    ORDER BY ord")
