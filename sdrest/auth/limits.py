"""Back-off after failed logins, and request rates per principal (in memory, per server process)."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable

#: the longest back-off, and how long failures are remembered after the last one
MAX_BACKOFF_SECONDS = 3600.0


#: a client address may fail this many times more often than one user name (many users may share one address)
ADDRESS_FACTOR = 4


class LoginThrottle:
    """Counts failed logins per key: ``user:NAME`` or ``addr:ADDRESS``. After ``attempts`` failures (an address:
    :data:`ADDRESS_FACTOR` times as many) a key is blocked for ``backoff`` seconds, doubled by each further failure
    (up to an hour). A success clears the user name's count, not the address's: one good account must not let an
    address go on guessing others."""

    def __init__(self, attempts: int, backoff: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.attempts = attempts
        self.backoff = backoff
        self._clock = clock
        self._lock = threading.Lock()
        self._failures: dict[str, tuple[int, float]] = {}  # key -> (count, time of the last failure)

    def _blocked_for(self, key: str, now: float) -> float:
        count, last = self._failures.get(key, (0, 0.0))
        allowed = self.attempts * (ADDRESS_FACTOR if key.startswith("addr:") else 1)
        if self.attempts <= 0 or count < allowed:
            return 0.0
        wait = min(self.backoff * 2 ** min(count - allowed, 32), MAX_BACKOFF_SECONDS)
        return max(0.0, last + wait - now)

    def retry_after(self, keys: Iterable[str]) -> int:
        """Seconds until any of ``keys`` may try again (0: now)."""
        now = self._clock()
        with self._lock:
            wait = max((self._blocked_for(k, now) for k in keys), default=0.0)
        return math.ceil(wait)

    def failed(self, keys: Iterable[str]) -> None:
        """Record a failure for each of ``keys``."""
        now = self._clock()
        with self._lock:
            for key in keys:
                count, _ = self._failures.get(key, (0, 0.0))
                self._failures[key] = (count + 1, now)
            stale = [k for k, (_, last) in self._failures.items() if now - last > MAX_BACKOFF_SECONDS * 2]
            for key in stale:
                del self._failures[key]

    def succeeded(self, keys: Iterable[str]) -> None:
        """Forget the failures of ``keys``."""
        with self._lock:
            for key in keys:
                self._failures.pop(key, None)


class RequestRate:
    """At most ``per_minute`` events per key in any sliding minute (0: no limit)."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._lock = threading.Lock()
        self._seen: dict[str, deque[float]] = {}

    def take(self, key: str) -> int:
        """Count one event for ``key``: 0 when allowed, else the seconds until one would be."""
        if self.per_minute <= 0:
            return 0
        now = self._clock()
        with self._lock:
            times = self._seen.setdefault(key, deque())
            while times and now - times[0] >= 60.0:
                times.popleft()
            if len(times) >= self.per_minute:
                return max(1, math.ceil(60.0 - (now - times[0])))
            times.append(now)
            if len(self._seen) > 10000:  # forget idle keys
                for idle in [k for k, t in self._seen.items() if not t or now - t[-1] >= 60.0]:
                    del self._seen[idle]
            return 0
