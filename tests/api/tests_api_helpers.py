"""Assertions shared by the API tests."""

from __future__ import annotations

import os

import httpx

TOKEN = "test-admin-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def assert_envelope(response: httpx.Response, status: int, message_part: str) -> dict:
    """The response is the `{code, message}` envelope with this status, its message containing the part."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == status and isinstance(body["message"], str) and body["message"], body
    assert message_part in body["message"], body
    return body


ADMIN_URL = os.environ.get("AYB_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
