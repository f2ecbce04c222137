#!/usr/bin/env bash
# Set up a development environment from a clean checkout: a virtualenv in .venv with ayb-jobs
# installed (editable) with its dev extra. Idempotent, and safe to run several times at once
# (scripts/run.sh and scripts/test.sh both call it): a second run waits for the first, then finds
# nothing left to do. Set AYB_SETUP_FORCE=1 to reinstall anyway.
set -euo pipefail
cd "$(dirname "$0")/.."

# One setup at a time per checkout: a lock on the checkout's directory itself, so there is no lock
# file to leave behind. The lock is released when this script exits, however it exits.
if command -v flock >/dev/null 2>&1; then
    exec 9<.
    flock 9
fi

PYTHON=${PYTHON:-python3}
stamp=.venv/.ayb-setup-done
# The installed set only changes with pyproject.toml (the install is editable: code changes are live).
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ -z "${AYB_SETUP_FORCE:-}" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] \
    && [ -x .venv/bin/ayb-jobs ]; then
    exit 0
fi
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -m pip --version >/dev/null 2>&1; then
    # Missing, or left half-made by an interrupted run: (re)create it.
    "$PYTHON" -m venv --clear .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip >/dev/null
.venv/bin/python -m pip install --quiet -e '.[dev]'
echo "$want" > "$stamp"
