"""The stored form of a handler's return value: JSON up to 64 KiB, a marker beyond or when unstorable."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from ayb_jobs.results import MAX_RESULT_BYTES, encode_result


def test_a_small_value_is_stored_as_its_json() -> None:
    assert json.loads(encode_result({"sent": 3, "to": ["a@x", "ö"]})) == {"sent": 3, "to": ["a@x", "ö"]}
    assert encode_result([1, 2]) == "[1,2]" and encode_result(False) == "false" and encode_result(0) == "0"


def test_returning_nothing_stores_no_result() -> None:
    assert encode_result(None) is None


def test_exactly_64_kib_is_kept_and_one_byte_more_is_the_truncation_marker() -> None:
    fits = "x" * (MAX_RESULT_BYTES - 2)  # the quotes make it exactly 64 KiB
    assert encode_result(fits) == json.dumps(fits)
    assert json.loads(encode_result(fits + "x")) == {"truncated": True, "bytes": MAX_RESULT_BYTES + 1}


def test_size_is_counted_in_utf8_bytes_not_characters() -> None:
    value = "é" * (MAX_RESULT_BYTES // 2)  # 2 bytes each: over the bound though under it in characters
    assert json.loads(encode_result(value))["truncated"] is True


def test_what_json_or_jsonb_cannot_hold_is_a_marker_naming_the_type() -> None:
    assert json.loads(encode_result(datetime.now(UTC))) == {"unserializable": True, "type": "datetime"}
    assert json.loads(encode_result({"x": float("nan")})) == {"unserializable": True, "type": "dict"}
    assert json.loads(encode_result({"x": "a\x00b"})) == {"unserializable": True, "type": "dict"}
    assert json.loads(encode_result("\ud800")) == {"unserializable": True, "type": "str"}
    assert json.loads(encode_result({"path": "C:\\u0000"})) == {"path": "C:\\u0000"}  # a backslash, not NUL
