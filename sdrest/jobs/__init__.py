"""Jobs: the SQLite store, the queue interface, the events, and the worker threads that own native contexts."""

from sdrest.jobs.events import EventBus
from sdrest.jobs.queue import JobQueue, LocalQueue, QueueFull
from sdrest.jobs.service import JobService
from sdrest.jobs.store import (
           CANCELLED,
           FAILED,
           FINISHED,
           QUEUED,
           RUNNING,
           STATUSES,
           SUCCEEDED,
           Job,
           JobStore,
)

__all__ = [
           "CANCELLED",
           "FAILED",
           "FINISHED",
           "QUEUED",
           "RUNNING",
           "STATUSES",
           "SUCCEEDED",
           "EventBus",
           "Job",
           "JobQueue",
           "JobService",
           "JobStore",
           "LocalQueue",
           "QueueFull",
]
