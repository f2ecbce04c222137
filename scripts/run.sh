#!/usr/bin/env bash
# Set up the virtualenv and start the daemon with config.example.toml on embedded Postgres, with
# the job queue enabled. Data (the Postgres cluster, the generated admin token) lives in
# ${AYB_DEV_DATA:-./data}. Extra arguments go to `ayb-jobs run`. Stop with Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh

data=$(realpath -m "${AYB_DEV_DATA:-./data}")
mkdir -p "$data"
export XDG_DATA_HOME="$data/xdg"   # <data> = $XDG_DATA_HOME/ayb-jobs
export AYB_JOBS_ENABLED=${AYB_JOBS_ENABLED:-true}
export AYB_DATABASE_EMBEDDED_DATA_DIR=${AYB_DATABASE_EMBEDDED_DATA_DIR:-$data/postgres}
export AYB_ADMIN_TOKEN_FILE=${AYB_ADMIN_TOKEN_FILE:-$data/admin-token}

if [ "$(id -u)" -eq 0 ]; then
    # Postgres refuses to run as root: the daemon runs it as database.embedded_user (default ayb).
    user=${AYB_DATABASE_EMBEDDED_USER:-ayb}
    if ! id "$user" >/dev/null 2>&1; then
        echo "scripts/run.sh: creating system account '$user' to run embedded Postgres (running as root)"
        useradd --system --home-dir /nonexistent --shell /usr/sbin/nologin "$user"
    fi
    chmod 0755 "$data"
    # The account must be able to reach the data dir: say so instead of changing parents silently.
    if ! su -s /bin/sh "$user" -c "test -x '$data'" 2>/dev/null; then
        echo "scripts/run.sh: account '$user' cannot reach $data; set AYB_DEV_DATA to a path under /tmp" >&2
        exit 2
    fi
fi

listen=$(.venv/bin/ayb-jobs config check --config config.example.toml --json \
    | .venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)["admin.listen"]["value"])')
echo "ayb-jobs: admin API and dashboard at http://$listen/admin/ ; token in $AYB_ADMIN_TOKEN_FILE"
echo "ayb-jobs: try: .venv/bin/ayb-jobs jobs stats --config config.example.toml --admin-token \"\$(cat $AYB_ADMIN_TOKEN_FILE)\""
exec .venv/bin/ayb-jobs run --config config.example.toml "$@"
