"""The client's checks of a job before any statement: the short way for a plain job must refuse
exactly what the full checks refuse."""

from __future__ import annotations

from datetime import datetime

import pytest

from ayb_jobs.client import check_new_job
from ayb_jobs.errors import InvalidInput
from ayb_jobs.models import NewJob


@pytest.mark.parametrize(("job", "field"), [
    (NewJob("bad type"), "type"),
    (NewJob("x\n"), "type"),                  # $ would have let a final newline through
    (NewJob(""), "type"),
    (NewJob("x" * 101), "type"),
    (NewJob(["not", "a", "str"]), "type"),    # unhashable: must not break the seen-types set
    (NewJob("ok", payload=[1]), "payload"),
    (NewJob("ok", queue="q\n"), "queue"),
    (NewJob("ok", max_attempts=0), "max_attempts"),
    (NewJob("ok", run_at=datetime(2026, 1, 1)), "run_at"),
    (NewJob("ok", priority=True), "priority"),
    (NewJob("ok", unique_key=""), "unique_key"),
])
def test_a_bad_job_is_refused_naming_its_field(job: NewJob, field: str) -> None:
    with pytest.raises(InvalidInput) as err:
        check_new_job(job)
    assert err.value.field == field


def test_a_type_seen_valid_is_still_checked_with_its_options() -> None:
    check_new_job(NewJob("seen.type"))
    with pytest.raises(InvalidInput, match="max_attempts"):
        check_new_job(NewJob("seen.type", max_attempts=1000))


def test_a_payload_subclass_of_dict_is_accepted() -> None:
    class Payload(dict):
        pass

    check_new_job(NewJob("ok", payload=Payload(a=1)))
