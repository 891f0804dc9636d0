"""One SQLite file shared by threads: WAL, autocommit unless a transaction is begun, rows by name."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path


class Database:
    """A connection to ``path`` made with ``schema``, and the lock every use of it takes (thread-safe)."""

    def __init__(self, path: Path, schema: str, *, foreign_keys: bool = False) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=30)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        if foreign_keys:
            self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(schema)

    def close(self) -> None:
        """Close the database (idempotent)."""
        with self._lock:
            try:
                self._db.close()
            except sqlite3.ProgrammingError:
                pass
