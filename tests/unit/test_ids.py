"""Client-made job ids have the layout of the database's _ayb_uuid_v7()."""

from __future__ import annotations

import time
from uuid import UUID

from ayb_jobs.ids import new_job_ids


def test_ids_are_version_7_uuids_of_this_millisecond_with_74_random_bits() -> None:
    before = time.time_ns() // 1_000_000
    ids = new_job_ids(1000)
    after = time.time_ns() // 1_000_000
    assert len(ids) == 1000 and len(set(ids)) == 1000
    for i in ids:
        assert isinstance(i, UUID) and i.version == 7 and i.variant == "specified in RFC 4122"
        assert before <= int.from_bytes(i.bytes[:6], "big") <= after
    # The random bits vary: each of the 74 is set in some id and clear in another.
    random_mask = (1 << 74) - 1
    values = [(i.int >> 64 & 0xFFF) << 62 | i.int & ((1 << 62) - 1) for i in ids]
    ored = 0
    anded = random_mask
    for v in values:
        ored |= v
        anded &= v
    assert ored == random_mask and anded == 0


def test_no_ids_for_an_empty_batch() -> None:
    assert new_job_ids(0) == []


def test_ids_compare_equal_to_plain_uuids() -> None:
    [i] = new_job_ids(1)
    assert UUID(str(i)) == i and hash(UUID(str(i))) == hash(i)
