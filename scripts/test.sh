#!/usr/bin/env bash
# Set up everything the test suite needs and run it: the virtualenv, Debian's chromium (dashboard
# tests) and systemd (unit-file check) when missing, a running PostgreSQL. Extra arguments go to
# pytest, e.g. `scripts/test.sh tests/db -x`.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh

need_apt=()
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v systemd-analyze >/dev/null 2>&1 || need_apt+=(systemd)
command -v faketime >/dev/null 2>&1 || need_apt+=(faketime)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
# promtool (the metrics format check) comes with Debian's prometheus; its recommends are not needed.
need_lean=()
command -v promtool >/dev/null 2>&1 || need_lean+=(prometheus)
if [ ${#need_apt[@]} -gt 0 ] || [ ${#need_lean[@]} -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ]; then
        apt-get update -qq
        if [ ${#need_apt[@]} -gt 0 ]; then
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
        fi
        if [ ${#need_lean[@]} -gt 0 ]; then
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_lean[@]}" >/dev/null
        fi
    else
        echo "scripts/test.sh: please install: ${need_apt[*]} ${need_lean[*]} (sudo apt-get install ${need_apt[*]} ${need_lean[*]})" >&2
        exit 1
    fi
fi

# The suite needs a PostgreSQL server: AYB_TEST_DATABASE_URL, else the local one on 127.0.0.1:5432.
if [ -z "${AYB_TEST_DATABASE_URL:-}" ] && ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
    if command -v pg_ctlcluster >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
        version=$(ls /etc/postgresql | sort -V | tail -n 1)
        pg_ctlcluster --skip-systemctl-redirect "$version" main start
        for _ in $(seq 1 50); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.2; done
    fi
    pg_isready -h 127.0.0.1 -p 5432 || {
        echo "scripts/test.sh: no PostgreSQL on 127.0.0.1:5432; start one or set AYB_TEST_DATABASE_URL" >&2
        exit 1
    }
fi

# Four test processes by default, each with its own template database, each taking whole files
# (module fixtures such as a shared daemon start once per file). Most of the suite's time is spent
# waiting on daemons, subprocesses and Postgres, so on 2 cores four processes finish in 6.3-7.3
# minutes where two took 7.6-8 (with two, the CPUs were about half busy). AYB_TEST_WORKERS=0 runs
# the tests in this process, e.g. for a debugger. A later -n in the arguments wins.
exec .venv/bin/python -m pytest -n "${AYB_TEST_WORKERS:-4}" --dist loadfile "$@"
