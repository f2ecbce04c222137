"""Statements derived from queries.sql stay what they say they are."""

from __future__ import annotations

import pytest

from ayb_jobs.db.sql import SQL, without


def test_the_unkeyed_enqueue_is_the_enqueue_without_its_conflict_clause_and_row_order() -> None:
    assert "ON CONFLICT DO NOTHING\n" in SQL["enqueue_jobs"]
    assert "    ORDER BY ord\n" in SQL["enqueue_jobs"]
    assert "    ON CONFLICT" not in SQL["enqueue_unkeyed_jobs"]
    assert "ORDER BY" not in SQL["enqueue_unkeyed_jobs"]
    assert SQL["enqueue_unkeyed_jobs"] == (SQL["enqueue_jobs"].replace("\n    ON CONFLICT DO NOTHING", "")
                                           .replace("\n    ORDER BY ord", ""))


def test_without_refuses_a_clause_that_is_not_there_exactly_once() -> None:
    with pytest.raises(ValueError, match="once"):
        without("SELECT 1", "ON CONFLICT DO NOTHING")
    with pytest.raises(ValueError, match="once"):
        without("a x a x", "x")
