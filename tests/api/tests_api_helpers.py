"""Assertions shared by the API tests."""

from __future__ import annotations

import httpx


def assert_envelope(response: httpx.Response, status: int, message_part: str) -> dict:
    """The response is the `{code, message}` envelope with this status, its message containing the part."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == status and isinstance(body["message"], str) and body["message"], body
    assert message_part in body["message"], body
    return body
