"""A handler's return value as the JSON stored in `_ayb_jobs.result`, bounded in size.

Anything `json.dumps` accepts is stored as it is when its JSON is at most MAX_RESULT_BYTES (UTF-8);
a larger one is replaced by `{"truncated": true, "bytes": N}` (N = the full size), so one handler
returning a huge value cannot bloat the table or the API. What JSON cannot represent (an object
json cannot encode, NaN, lone surrogates) or jsonb cannot hold (the NUL character) is replaced by
`{"unserializable": true, "type": "<Python type>"}`: the job still completes. `None` (a handler
that returns nothing) stores no result.
"""

from __future__ import annotations

import json
from typing import Any

MAX_RESULT_BYTES = 64 * 1024


def encode_result(value: Any) -> str | None:
    """The JSON text to store for a handler's return value, or None for no result."""
    if value is None:
        return None
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        size = len(text.encode("utf-8"))
    except (TypeError, ValueError, UnicodeEncodeError, RecursionError):
        return _unserializable(value)
    if "\\u0000" in text and _holds_nul(value):
        return _unserializable(value)
    if size > MAX_RESULT_BYTES:
        return json.dumps({"truncated": True, "bytes": size})
    return text


def _unserializable(value: Any) -> str:
    return json.dumps({"unserializable": True, "type": type(value).__name__})


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_holds_nul(v) for v in value)
    return False
