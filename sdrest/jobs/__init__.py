"""Jobs: the queue (the only channel between the API and the workers), its embedded SQLite implementation,
and the supervised worker processes that own the native contexts."""

from sdrest.jobs.queue import Control, ControlTimeout, JobQueue, LocalQueue, QueueFull, WorkerInfo, WorkerQueue
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
)

__all__ = [
           "CANCELLED",
           "FAILED",
           "FINISHED",
           "QUEUED",
           "RUNNING",
           "STATUSES",
           "SUCCEEDED",
           "Control",
           "ControlTimeout",
           "Job",
           "JobQueue",
           "JobService",
           "LocalQueue",
           "QueueFull",
           "WorkerInfo",
           "WorkerQueue",
]
