"""ayb-jobs: a Postgres-backed job queue and cron scheduler daemon."""

__version__ = "0.1.0"
