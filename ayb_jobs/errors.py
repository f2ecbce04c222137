"""The project's error types. Each message says what is wrong and how to fix it.

Driver errors (asyncpg) are translated into these at one boundary, `db/queries.py`; fronts map
them to HTTP status codes (api) or exit codes (cli).
"""

from __future__ import annotations


class AybJobsError(Exception):
    """Base class of every error ayb-jobs raises on purpose."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or type(self).__name__).strip())

    @property
    def message(self) -> str:
        return str(self.args[0])


class ConfigError(AybJobsError):
    """Invalid configuration (exit code 2). The message names the key, the value and its source."""


class InvalidInput(AybJobsError):
    """A request or argument is malformed; the message names the field and the reason."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class InvalidCron(InvalidInput):
    """A cron expression that the strict 5-field dialect rejects."""

    def __init__(self, message: str) -> None:
        super().__init__(message, field="cronExpr")


class InvalidTimezone(InvalidInput):
    """A timezone that is not an IANA name known to zoneinfo."""

    def __init__(self, message: str) -> None:
        super().__init__(message, field="timezone")


class UnknownJobType(InvalidInput):
    """A job type with no registered handler."""

    def __init__(self, job_type: str, registered: list[str]) -> None:
        names = ", ".join(sorted(registered)) or "(none)"
        super().__init__(f"unknown job type '{job_type}'; registered: {names}", field="type")
        self.job_type = job_type
        self.registered = sorted(registered)


class InvalidPayload(AybJobsError):
    """A handler rejected its payload; retrying cannot help, so the job fails without retry."""


MAX_SNOOZE_S = 86_400


class Snooze(Exception):
    """Raised by a handler: "not yet, run me again in `seconds`".

    The job is queued again at the database's now() + seconds; the attempt is not counted (the
    job's `snoozes` goes up instead). 0 < seconds <= 86400.
    """

    def __init__(self, seconds: float) -> None:
        number = isinstance(seconds, int | float) and not isinstance(seconds, bool)
        if not number or not 0 < seconds <= MAX_SNOOZE_S:
            raise ValueError(f"Snooze takes 0 < seconds <= {MAX_SNOOZE_S}, got {seconds!r}")
        super().__init__(f"snoozed for {seconds:g}s")
        self.seconds = float(seconds)


class NotFound(AybJobsError):
    """The job or schedule does not exist."""


class Conflict(AybJobsError):
    """The operation conflicts with the current state (wrong state, duplicate name or key)."""


class DuplicateJob(Conflict):
    """A job with this idempotency key already exists."""

    def __init__(self, idempotency_key: str, existing_job_id: str | None) -> None:
        super().__init__(
            f"a job with idempotency key '{idempotency_key}' already exists (id {existing_job_id}); "
            "use another key or look up the existing job"
        )
        self.idempotency_key = idempotency_key
        self.existing_job_id = existing_job_id


class DatabaseUnavailable(AybJobsError):
    """The database did not answer; check `database.url` and that Postgres is running."""


class SchemaBehind(AybJobsError):
    """The database schema is older than this version of ayb-jobs; run `ayb-jobs migrate`."""


class StartupError(AybJobsError):
    """The daemon could not start (exit code 1 unless `exit_code` says otherwise)."""

    def __init__(self, message: str, *, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code
