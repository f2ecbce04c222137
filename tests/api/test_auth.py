"""Token helpers the daemon uses at start: ensure_token and is_loopback."""

from __future__ import annotations

import stat

import pytest

from ayb_jobs.api.auth import ensure_token, is_loopback, token_matches


def test_configured_token_wins_and_writes_nothing(tmp_path) -> None:
    path = tmp_path / "admin-token"
    assert ensure_token("configured-token-123456", path) == "configured-token-123456"
    assert not path.exists()


def test_generates_once_with_private_modes_then_reuses(tmp_path) -> None:
    path = tmp_path / "state" / "ayb" / "admin-token"
    token = ensure_token("", path)
    assert len(token) >= 40
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert ensure_token("", path) == token


def test_reads_an_existing_file(tmp_path) -> None:
    path = tmp_path / "admin-token"
    path.write_text("  from-file-token-abcdef \n")
    assert ensure_token("", path) == "from-file-token-abcdef"


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", True),
        ("127.5.5.5", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.10", False),
        ("example.com", False),
        ("", False),
    ],
)
def test_is_loopback(host, expected) -> None:
    assert is_loopback(host) is expected


def test_token_matches_only_the_exact_bearer_token() -> None:
    assert token_matches("Bearer abc", "abc") and token_matches("bearer abc", "abc")
    for header in (None, "", "abc", "Bearer", "Bearer abcd", "Basic abc", "Bearer ab"):
        assert not token_matches(header, "abc"), header
    assert not token_matches("Bearer ", "")
