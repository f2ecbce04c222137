# ayb-jobs: Postgres-backed job queue and cron scheduler daemon.
#
#   docker build -t ayb-jobs .
#   docker run --rm -e AYB_DATABASE_URL=postgresql://user:pass@db:5432/app -e AYB_JOBS_ENABLED=true ayb-jobs
#
# Configuration is through AYB_* environment variables (docs/configuration.md; `ayb-jobs config check`
# prints them):
#   AYB_DATABASE_URL   the Postgres DSN. Set it: this image ships no PostgreSQL server, so the embedded
#                      (zero-config) mode would stop at start-up asking for the server binaries.
#   AYB_JOBS_ENABLED   true to run workers (default false).
#   AYB_ADMIN_LISTEN   the image default below keeps the admin API/dashboard on the container's own
#                      loopback, which is enough for the HEALTHCHECK. To publish it (-p 8090:8090) set
#                      AYB_ADMIN_LISTEN=0.0.0.0:8090, and then AYB_ADMIN_TOKEN (at least 16 characters)
#                      is required: pass it at run time (-e or an env file), never bake it in here.
# Shutdown drains running jobs for up to jobs.shutdown_timeout_s (30 s by default), longer than Docker's
# 10 s default, so stop with `docker stop -t 45` (compose: stop_grace_period: 45s).

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# A fixed, unprivileged account; its state dir (<data>: admin token file) is a volume.
RUN groupadd --system --gid 10001 ayb \
 && useradd --system --uid 10001 --gid ayb --home-dir /var/lib/ayb-jobs --shell /usr/sbin/nologin ayb \
 && install -d -o ayb -g ayb -m 0750 /var/lib/ayb-jobs

WORKDIR /src
COPY pyproject.toml README.md ./
COPY ayb_jobs ./ayb_jobs
# The schema lives at the top level and is installed as the package ayb_jobs.migrations.
COPY migrations ./migrations
RUN pip install . && rm -rf /src

WORKDIR /var/lib/ayb-jobs
# <data> is $STATE_DIRECTORY when set (docs/configuration.md); reuse that instead of a home directory.
ENV STATE_DIRECTORY=/var/lib/ayb-jobs \
    AYB_ADMIN_LISTEN=127.0.0.1:8090 \
    AYB_LOG_FORMAT=json
VOLUME ["/var/lib/ayb-jobs"]
EXPOSE 8090

USER ayb:ayb

# The daemon drains on SIGTERM (docs/job-lifecycle.md); exec-form ENTRYPOINT makes it PID 1 so it gets it.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 CMD ["ayb-jobs", "health"]
ENTRYPOINT ["ayb-jobs"]
CMD ["run"]
