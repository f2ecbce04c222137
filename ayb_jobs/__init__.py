"""ayb-jobs: a Postgres-backed job queue and cron scheduler daemon."""

__version__ = "0.1.0"

from ayb_jobs.client import Client
from ayb_jobs.errors import DuplicateJob, Snooze
from ayb_jobs.models import Job, JobState, NewJob

__all__ = ["Client", "DuplicateJob", "Job", "JobState", "NewJob", "Snooze", "__version__"]
