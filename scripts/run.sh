#!/usr/bin/env bash
# Set up the virtualenv and start the daemon with config.example.toml on embedded Postgres, with
# the job queue enabled. Data (the Postgres cluster, the generated admin token) lives in
# ${AYB_DEV_DATA:-./data}. Extra arguments go to `ayb-jobs run`. Stop with Ctrl-C.
# With AYB_DATABASE_URL set, that database is used instead of the embedded one.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh

data=$(realpath -m "${AYB_DEV_DATA:-./data}")
mkdir -p "$data"
export XDG_DATA_HOME="$data/xdg"   # <data> = $XDG_DATA_HOME/ayb-jobs
export AYB_JOBS_ENABLED=${AYB_JOBS_ENABLED:-true}
export AYB_DATABASE_EMBEDDED_DATA_DIR=${AYB_DATABASE_EMBEDDED_DATA_DIR:-$data/postgres}
export AYB_ADMIN_TOKEN_FILE=${AYB_ADMIN_TOKEN_FILE:-$data/admin-token}

if [ "$(id -u)" -eq 0 ] && [ -z "${AYB_DATABASE_URL:-}" ]; then
    # Postgres refuses to run as root: the daemon runs the embedded one as database.embedded_user.
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

# A bad setting in the environment is reported here, in one line, before anything starts.
settings=$(.venv/bin/ayb-jobs config check --config config.example.toml --json) || exit 2
listen=$(.venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)["admin.listen"]["value"])' \
    <<<"$settings")
# The CLI, run from this directory, finds the token in ./data/admin-token and talks to
# 127.0.0.1:8090 by default: the hint names only what differs from that.
cli="ayb-jobs"
[ "$(realpath -m "$AYB_ADMIN_TOKEN_FILE")" = "$(realpath -m data/admin-token)" ] || cli="AYB_ADMIN_TOKEN_FILE=$AYB_ADMIN_TOKEN_FILE $cli"
url=""
[ "$listen" = "127.0.0.1:8090" ] || url=" --url http://$listen"
echo "ayb-jobs: admin API and dashboard at http://$listen/admin/ (admin token in $AYB_ADMIN_TOKEN_FILE)"
echo "ayb-jobs: to use the CLI, in another terminal in $PWD: source .venv/bin/activate; then e.g. $cli jobs stats$url"
exec .venv/bin/ayb-jobs run --config config.example.toml "$@"
