"""Response shapes of the job list's summary rows and of the timeline (documentation only, like
schemas.py: the routes build the JSON themselves)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from ayb_jobs.api.schemas import IsoTime, JobOut, Uuid
from ayb_jobs.models import JobState


class JobSummaryOut(BaseModel):
    """A list row of `view=summary`: what a table shows. The detail route has the rest."""

    id: Uuid
    type: str
    state: JobState
    runAt: IsoTime
    attempts: int
    maxAttempts: int
    createdAt: IsoTime
    updatedAt: IsoTime
    leaseUntil: IsoTime | None = None
    workerId: str | None = None
    lastError: str | None = Field(None, description="The last error's first 300 characters.")
    lastRunAt: IsoTime | None = None
    idempotencyKey: str | None = None
    scheduleId: Uuid | None = None
    completedAt: IsoTime | None = None
    canceledAt: IsoTime | None = None
    queue: str
    priority: int


class JobPage(BaseModel):
    items: list[JobOut] | list[JobSummaryOut] = Field(
        description="Full jobs, or summary rows with `view=summary`.")
    count: int = Field(description="Items in this page.")
    total: int = Field(description="Jobs matching the filters.")


class TimelineMinute(BaseModel):
    at: IsoTime = Field(description="Start of the minute (UTC).")
    completed: int
    failed: int = Field(description="Jobs that ended failed (attempts used up) in this minute.")


class TypeBreakdown(BaseModel):
    type: str
    completed: int = Field(description="Completed within the window.")
    failed: int = Field(description="Failed within the window.")
    queued: int = Field(description="Queued now (due or scheduled).")
    running: int = Field(description="Running now.")


class JobTimelineOut(BaseModel):
    minutes: list[TimelineMinute] = Field(
        description="One entry per minute, oldest first; the last is the current minute.")
    types: list[TypeBreakdown] = Field(description="Per job type, by name.")
