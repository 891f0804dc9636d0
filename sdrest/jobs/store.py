"""The job store: one SQLite file (WAL), one row per job.

Every state change is one committed transaction, so a ``kill -9`` at any moment
leaves each job in a state it really was in. The store is shared by the event
loop and the worker threads; one connection guarded by a lock keeps it simple
and fast (each statement takes microseconds).
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sdrest.database import Database

QUEUED = "queued"
RUNNING = "running"
SUCCEEDED = "succeeded"
FAILED = "failed"
CANCELLED = "cancelled"
STATUSES = (QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED)
FINISHED = (SUCCEEDED, FAILED, CANCELLED)
#: how waiting jobs are served: round-robin over their owners, or by arrival
QUEUE_ORDERS = ("fair", "fifo")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    owner TEXT,
    kind TEXT NOT NULL,
    params TEXT NOT NULL,
    status TEXT NOT NULL,
    progress REAL NOT NULL DEFAULT 0,
    step INTEGER NOT NULL DEFAULT 0,
    steps INTEGER NOT NULL DEFAULT 0,
    phase TEXT,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    error TEXT,
    outputs TEXT NOT NULL DEFAULT '[]',
    result TEXT NOT NULL DEFAULT '{}',
    attempts INTEGER NOT NULL DEFAULT 0,
    worker TEXT
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status, seq);
CREATE INDEX IF NOT EXISTS jobs_finished ON jobs(finished_at);
CREATE INDEX IF NOT EXISTS jobs_owner_started ON jobs(owner, started_at);
-- model hashes live in the models registry's cache now (sdrest.models.Registry.hashes)
DROP TABLE IF EXISTS file_hashes;
"""

#: The gallery's schema: full-text search over prompts (FTS5, kept in step with ``jobs`` by triggers; its rowid is
#: the job's ``seq``) and the star. ``starred`` is added to an older ``jobs`` table by :meth:`JobStore._migrate_gallery`.
_GALLERY_SCHEMA = """
CREATE VIRTUAL TABLE IF NOT EXISTS jobs_fts USING fts5(prompt, negative_prompt,
    tokenize = 'unicode61 remove_diacritics 2');
CREATE TRIGGER IF NOT EXISTS jobs_fts_insert AFTER INSERT ON jobs BEGIN
    INSERT INTO jobs_fts(rowid, prompt, negative_prompt)
    VALUES (new.seq, json_extract(new.params, '$.prompt'), json_extract(new.params, '$.negative_prompt'));
END;
CREATE TRIGGER IF NOT EXISTS jobs_fts_delete AFTER DELETE ON jobs BEGIN
    DELETE FROM jobs_fts WHERE rowid = old.seq;
END;
CREATE TRIGGER IF NOT EXISTS jobs_fts_update AFTER UPDATE OF params ON jobs BEGIN
    DELETE FROM jobs_fts WHERE rowid = old.seq;
    INSERT INTO jobs_fts(rowid, prompt, negative_prompt)
    VALUES (new.seq, json_extract(new.params, '$.prompt'), json_extract(new.params, '$.negative_prompt'));
END;
CREATE INDEX IF NOT EXISTS jobs_owner ON jobs(owner, seq);
"""


@dataclass
class Job:
    """One job as stored. ``outputs`` are file names in the job's output folder."""

    id: str
    kind: str
    params: dict[str, Any]
    status: str
    owner: str | None = None
    progress: float = 0.0
    step: int = 0
    steps: int = 0
    phase: str | None = None
    created_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    error: str | None = None
    outputs: list[str] = field(default_factory=list)
    result: dict[str, Any] = field(default_factory=dict)
    attempts: int = 0
    seq: int = 0
    position: int | None = None
    worker: str | None = None
    """The worker that runs (or ran) it."""

    @property
    def finished(self) -> bool:
        """True in a final state."""
        return self.status in FINISHED

    def to_dict(self) -> dict[str, Any]:
        """The job as the API shows it."""
        return {
            "id": self.id,
            "job_id": self.id,
            "owner": self.owner,
            "kind": self.kind,
            "status": self.status,
            "progress": self.progress,
            "step": self.step,
            "steps": self.steps,
            "phase": self.phase,
            "queue_position": self.position,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "error": self.error,
            "outputs": list(self.outputs),
            "result": dict(self.result),
            "attempts": self.attempts,
            "worker": self.worker,
            "parameters": public(self.params),
        }


def public(value: Any) -> Any:
    """``value`` without its internal keys (those starting with ``_``: server paths), at any depth."""
    if isinstance(value, dict):
        return {k: public(v) for k, v in value.items() if not (isinstance(k, str) and k.startswith("_"))}
    if isinstance(value, list):
        return [public(v) for v in value]
    return value


def new_job_id() -> str:
    """An unguessable id (128 random bits, URL-safe)."""
    return secrets.token_urlsafe(16)


#: the most words of a search's text that count (the rest are ignored)
MAX_SEARCH_TERMS = 32


def fts_query(text: str) -> str | None:
    """``text`` as a safe FTS5 query: every word quoted (FTS5's own syntax never reaches the engine) and matched
    as a prefix, all of them required; None when it has no words."""
    terms = text.split()[:MAX_SEARCH_TERMS]
    if not terms:
        return None
    return " ".join('"' + term.replace('"', '""') + '"*' for term in terms)


@dataclass(frozen=True)
class JobSearch:
    """A gallery search: each field given narrows it (None: not a filter). ``text`` is matched against the prompt
    and the negative prompt; ``owner`` None means everyone's jobs; ``since``/``until`` bound the creation time
    (epoch seconds, ``until`` exclusive)."""

    text: str | None = None
    owner: str | None = None
    model: str | None = None
    width: int | None = None
    height: int | None = None
    since: float | None = None
    until: float | None = None
    starred: bool = False
    statuses: tuple[str, ...] = (SUCCEEDED,)
    kinds: tuple[str, ...] | None = None


@dataclass
class SearchPage:
    """One page of a search, newest first: the jobs, which of them are starred, how many match in all, and the
    cursor of the next page (None on the last)."""

    jobs: list[Job]
    starred: set[str]
    total: int
    next_cursor: int | None


class JobStore(Database):
    """Jobs in SQLite. All methods are thread-safe."""

    def __init__(self, path: Path, *, order: str = "fair") -> None:
        if order not in QUEUE_ORDERS:
            raise ValueError(f"order: expected one of {', '.join(QUEUE_ORDERS)}")
        self.order = order
        super().__init__(path, _SCHEMA)
        self._migrate_gallery()

    # -- reading ------------------------------------------------------------------

    def _row_to_job(self, row: sqlite3.Row) -> Job:
        return Job(
            id=row["id"], kind=row["kind"], params=json.loads(row["params"]), status=row["status"],
            owner=row["owner"], progress=row["progress"], step=row["step"], steps=row["steps"],
            phase=row["phase"], created_at=row["created_at"], started_at=row["started_at"],
            finished_at=row["finished_at"], error=row["error"], outputs=json.loads(row["outputs"]),
            result=json.loads(row["result"]), attempts=row["attempts"], seq=row["seq"], worker=row["worker"],
        )

    def get(self, job_id: str) -> Job | None:
        """The job, with its queue position when queued; None when unknown."""
        with self._lock:
            row = self._db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                return None
            job = self._row_to_job(row)
            if job.status == QUEUED:
                job.position = self._queue_order().index(job.id) + 1
            elif job.status == RUNNING:
                job.position = 0
            return job

    def list_jobs(self, *, statuses: Sequence[str] | None = None, owner: str | None = None,
             limit: int = 100, offset: int = 0, newest_first: bool = False) -> list[Job]:
        """Jobs filtered by status and owner, in queue order (or newest first)."""
        where, args = [], []  # type: list[str], list[Any]
        if statuses:
            where.append(f"status IN ({','.join('?' * len(statuses))})")
            args.extend(statuses)
        if owner is not None:
            where.append("owner = ?")
            args.append(owner)
        sql = "SELECT * FROM jobs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        with self._lock:
            if list(statuses or ()) == [QUEUED] and not newest_first:  # the queue, in the order it is served
                rows = {r["id"]: r for r in self._db.execute(sql, args)}
                everyone = self._queue_order()
                order = [job_id for job_id in everyone if job_id in rows][offset:offset + limit]
                positions = {job_id: n for n, job_id in enumerate(everyone, 1)}
                jobs = [self._row_to_job(rows[job_id]) for job_id in order]
                for job in jobs:
                    job.position = positions[job.id]
                return jobs
            sql += f" ORDER BY seq {'DESC' if newest_first else 'ASC'} LIMIT ? OFFSET ?"
            return [self._row_to_job(r) for r in self._db.execute(sql, (*args, limit, offset))]

    def counts(self) -> dict[str, int]:
        """Jobs per status (every status present, zero when none)."""
        with self._lock:
            rows = self._db.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status").fetchall()
        out = dict.fromkeys(STATUSES, 0)
        out.update({status: n for status, n in rows})
        return out

    def queued_count(self) -> int:
        """How many jobs wait."""
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM jobs WHERE status = ?", (QUEUED,)).fetchone()[0])

    def durations(self, kind: str | None = None, limit: int = 50) -> list[tuple[dict[str, Any], float]]:
        """(params, seconds) of the latest succeeded jobs, for estimates."""
        sql = "SELECT params, started_at, finished_at FROM jobs WHERE status = ? AND started_at IS NOT NULL"
        args: list[Any] = [SUCCEEDED]
        if kind:
            sql += " AND kind = ?"
            args.append(kind)
        sql += " ORDER BY seq DESC LIMIT ?"
        with self._lock:
            rows = self._db.execute(sql, (*args, limit)).fetchall()
        return [(json.loads(p), f - s) for p, s, f in rows]

    # -- writing ------------------------------------------------------------------

    def create(self, kind: str, params: dict[str, Any], *, owner: str | None = None,
               limit: int | None = None, job_id: str | None = None) -> Job | None:
        """Insert a queued job; None when ``limit`` jobs already wait (the check and insert are atomic)."""
        job_id = job_id or new_job_id()
        now = time.time()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                if limit is not None:
                    (waiting,) = self._db.execute("SELECT COUNT(*) FROM jobs WHERE status = ?", (QUEUED,)).fetchone()
                    if waiting >= limit:
                        self._db.execute("ROLLBACK")
                        return None
                self._db.execute(
                    "INSERT INTO jobs (id, owner, kind, params, status, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (job_id, owner, kind, json.dumps(params), QUEUED, now))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return self.get(job_id)

    def claim_next(self, worker: str, kinds: Iterable[str] | None = None) -> Job | None:
        """Atomically move the oldest queued job to running and return it; None when none waits."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                order = self._queue_order(kinds)
                job_id = order[0] if order else None
                if job_id is None or not self._claim(job_id, worker):
                    self._db.execute("ROLLBACK")
                    return None
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return self.get(job_id)

    def claim(self, job_id: str, worker: str) -> Job | None:
        """Move queued ``job_id`` to running for ``worker`` (a placement's choice); None if it no longer waits."""
        with self._lock:
            if not self._claim(job_id, worker):
                return None
        return self.get(job_id)

    def _claim(self, job_id: str, worker: str) -> bool:
        cursor = self._db.execute(
            "UPDATE jobs SET status = ?, started_at = ?, worker = ?, attempts = attempts + 1, progress = 0, step = 0 "
            "WHERE id = ? AND status = ?", (RUNNING, time.time(), worker, job_id, QUEUED))
        return cursor.rowcount == 1

    def next_queued(self, kinds: Iterable[str] | None = None) -> Job | None:
        """The job :meth:`claim_next` would take now, left waiting."""
        with self._lock:
            order = self._queue_order(kinds)
            if not order:
                return None
            job = self._row_to_job(self._db.execute("SELECT * FROM jobs WHERE id = ?", (order[0],)).fetchone())
        job.position = 1  # first in the order just computed: no second pass for the position
        return job

    def _queue_order(self, kinds: Iterable[str] | None = None) -> list[str]:
        """Ids of the waiting jobs (of ``kinds``) in the order they are served (call with the lock held).

        ``fifo``: by arrival. ``fair``: round-robin over owners: the next job is the oldest waiting one of the
        owner whose latest job started longest ago (never counts as longest), so one user's batch of 100 does
        not hold back everyone else's; each owner's own jobs keep their order.
        """
        sql, args = "SELECT id, owner, kind FROM jobs WHERE status = ?", [QUEUED]
        if kinds is not None:
            kinds = list(kinds)
            sql += f" AND kind IN ({','.join('?' * len(kinds))})"
            args.extend(kinds)
        rows = self._db.execute(sql + " ORDER BY seq", args).fetchall()
        if self.order == "fifo" or len(rows) < 2:
            return [r[0] for r in rows]
        waiting: dict[str | None, list[str]] = {}
        for job_id, owner, _ in rows:
            waiting.setdefault(owner, []).append(job_id)
        if len(waiting) == 1:
            return [r[0] for r in rows]
        last = {owner: started for owner, started in self._db.execute(
            "SELECT owner, MAX(started_at) FROM jobs WHERE started_at IS NOT NULL GROUP BY owner")}
        # owners in turn: who started longest ago first (never: first of all), ties by their oldest waiting job
        turn = sorted(waiting, key=lambda owner: last.get(owner) or 0.0)  # stable: ties keep arrival order
        order: list[str] = []
        while turn:
            for owner in list(turn):
                order.append(waiting[owner].pop(0))
                if not waiting[owner]:
                    turn.remove(owner)
        return order

    def set_progress(self, job_id: str, step: int, steps: int, phase: str | None) -> None:
        """Record the step reached by a running job."""
        progress = min(1.0, step / steps) if steps else 0.0
        with self._lock:
            self._db.execute("UPDATE jobs SET step = ?, steps = ?, progress = ?, phase = ? WHERE id = ? AND status = ?",
                             (step, steps, progress, phase, job_id, RUNNING))

    def finish(self, job_id: str, status: str, *, outputs: Sequence[str] = (), result: dict[str, Any] | None = None,
               error: str | None = None) -> Job | None:
        """Move a running (or queued) job to a final state; returns the job, None if it was already final."""
        if status not in FINISHED:
            raise ValueError(f"status: {status!r} is not final")
        with self._lock:
            cursor = self._db.execute(
                "UPDATE jobs SET status = ?, finished_at = ?, outputs = ?, result = ?, error = ?, "
                "progress = CASE WHEN ? = 'succeeded' THEN 1 ELSE progress END "
                "WHERE id = ? AND status IN (?, ?)",
                (status, time.time(), json.dumps(list(outputs)), json.dumps(result or {}), error, status,
                 job_id, QUEUED, RUNNING))
            changed = cursor.rowcount
        return self.get(job_id) if changed else None

    def cancel_queued(self, job_id: str) -> bool:
        """Cancel a job that still waits; False if it is not queued."""
        return self.finish_if(job_id, QUEUED, CANCELLED, "cancelled before it started")

    def finish_if(self, job_id: str, expected: str, status: str, error: str | None = None) -> bool:
        """Move ``job_id`` from ``expected`` to final ``status``; False if it was not in ``expected``."""
        with self._lock:
            cursor = self._db.execute(
                "UPDATE jobs SET status = ?, finished_at = ?, error = ? WHERE id = ? AND status = ?",
                (status, time.time(), error, job_id, expected))
            return cursor.rowcount == 1

    def clear_queue(self, owner: str | None = None) -> list[str]:
        """Cancel every queued job (of ``owner`` when given); returns their ids."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            sql, args = "SELECT id FROM jobs WHERE status = ?", [QUEUED]
            if owner is not None:
                sql += " AND owner = ?"
                args.append(owner)
            ids = [r[0] for r in self._db.execute(sql, args)]
            self._db.executemany("UPDATE jobs SET status = ?, finished_at = ?, error = ? WHERE id = ?",
                                 [(CANCELLED, time.time(), "queue cleared", i) for i in ids])
            self._db.execute("COMMIT")
        return ids

    def recover_interrupted(self, requeue: bool, max_attempts: int = 2) -> list[str]:
        """After a start: jobs left running by a stop or a crash are re-queued while their attempts are under
        ``max_attempts`` (and ``requeue`` is on), failed with the reason otherwise. Returns their ids."""
        with self._lock:
            rows = self._db.execute("SELECT id, attempts FROM jobs WHERE status = ?", (RUNNING,)).fetchall()
            for job_id, attempts in rows:
                if requeue and attempts < max_attempts:
                    self._db.execute("UPDATE jobs SET status = ?, started_at = NULL, progress = 0, step = 0, "
                                     "worker = NULL WHERE id = ?", (QUEUED, job_id))
                else:
                    reason = "interrupted: the server stopped while it ran"
                    if requeue:
                        reason += f"; not run again after {attempts} attempt(s)"
                    self._db.execute("UPDATE jobs SET status = ?, finished_at = ?, error = ? WHERE id = ?",
                                     (FAILED, time.time(), reason, job_id))
        return [r[0] for r in rows]

    def unclaim(self, job_id: str) -> bool:
        """Undo a claim that never reached a worker: back in the queue, the attempt not counted."""
        with self._lock:
            cursor = self._db.execute("UPDATE jobs SET status = ?, started_at = NULL, progress = 0, step = 0, "
                                      "worker = NULL, attempts = MAX(0, attempts - 1) WHERE id = ? AND status = ?",
                                      (QUEUED, job_id, RUNNING))
            return cursor.rowcount == 1

    def requeue(self, job_id: str) -> bool:
        """Put a running job back at its place in the queue (a clean stop mid-job)."""
        with self._lock:
            cursor = self._db.execute("UPDATE jobs SET status = ?, started_at = NULL, progress = 0, step = 0, "
                                      "worker = NULL WHERE id = ? AND status = ?", (QUEUED, job_id, RUNNING))
            return cursor.rowcount == 1

    def delete_finished_before(self, cutoff: float) -> list[str]:
        """Delete finished jobs older than ``cutoff`` (epoch seconds); returns their ids."""
        with self._lock:
            ids = [r[0] for r in self._db.execute(
                "SELECT id FROM jobs WHERE finished_at IS NOT NULL AND finished_at < ?", (cutoff,))]
            self._db.executemany("DELETE FROM jobs WHERE id = ?", [(i,) for i in ids])
        return ids

    # -- the gallery: search, star, delete ----------------------------------------------------------

    def _migrate_gallery(self) -> None:
        """Add the star column and the full-text index to a store made before them (the index is filled from the
        jobs already there)."""
        with self._lock:
            columns = {row["name"] for row in self._db.execute("PRAGMA table_info(jobs)")}
            if "starred" not in columns:
                self._db.execute("ALTER TABLE jobs ADD COLUMN starred INTEGER NOT NULL DEFAULT 0")
            indexed = self._db.execute("SELECT 1 FROM sqlite_master WHERE name = 'jobs_fts'").fetchone()
            self._db.executescript(_GALLERY_SCHEMA)
            if not indexed:
                self._db.execute(
                    "INSERT INTO jobs_fts(rowid, prompt, negative_prompt) SELECT seq, "
                    "json_extract(params, '$.prompt'), json_extract(params, '$.negative_prompt') FROM jobs")

    def search(self, query: JobSearch, *, limit: int = 48, cursor: int = 0) -> SearchPage:
        """The jobs ``query`` matches, newest first: ``limit`` of them from ``cursor`` (0: the newest; else the
        ``next_cursor`` of the page before)."""
        where, args = [], []  # type: list[str], list[Any]
        if query.statuses:
            where.append(f"status IN ({','.join('?' * len(query.statuses))})")
            args.extend(query.statuses)
        if query.kinds:
            where.append(f"kind IN ({','.join('?' * len(query.kinds))})")
            args.extend(query.kinds)
        for column, value in (("owner", query.owner), ("json_extract(params, '$.model')", query.model),
                              ("json_extract(params, '$.width')", query.width),
                              ("json_extract(params, '$.height')", query.height)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        if query.since is not None:
            where.append("created_at >= ?")
            args.append(query.since)
        if query.until is not None:
            where.append("created_at < ?")
            args.append(query.until)
        if query.starred:
            where.append("starred = 1")
        match = fts_query(query.text or "")
        if match is not None:
            where.append("seq IN (SELECT rowid FROM jobs_fts WHERE jobs_fts MATCH ?)")
            args.append(match)
        filters = " AND ".join(where) or "1"
        with self._lock:
            (total,) = self._db.execute(f"SELECT COUNT(*) FROM jobs WHERE {filters}", args).fetchone()
            rows = self._db.execute(f"SELECT * FROM jobs WHERE {filters} AND seq < ? ORDER BY seq DESC LIMIT ?",
                                    (*args, cursor or 2**63 - 1, limit + 1)).fetchall()
        more = len(rows) > limit
        rows = rows[:limit]
        return SearchPage(jobs=[self._row_to_job(r) for r in rows], starred={r["id"] for r in rows if r["starred"]},
                          total=int(total), next_cursor=rows[-1]["seq"] if more else None)

    def set_starred(self, job_id: str, starred: bool) -> bool:
        """Star or unstar a job; False when there is no such job."""
        with self._lock:
            cursor = self._db.execute("UPDATE jobs SET starred = ? WHERE id = ?", (int(starred), job_id))
            return cursor.rowcount == 1

    def delete_finished(self, job_id: str) -> bool:
        """Delete a finished job's row; False when it is unknown or not finished (the check and delete are one
        statement)."""
        with self._lock:
            cursor = self._db.execute(f"DELETE FROM jobs WHERE id = ? AND status IN ({','.join('?' * len(FINISHED))})",
                                      (job_id, *FINISHED))
            return cursor.rowcount == 1
