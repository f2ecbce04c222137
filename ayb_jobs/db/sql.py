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


SQL: dict[str, str] = load(resources.files("ayb_jobs.db").joinpath("queries.sql").read_text("utf-8"))
