"""Job events (state changes, progress, previews) from worker threads to any number of listeners.

Workers publish from their own threads; listeners are asyncio queues on the event
loop (one per SSE stream). ``publish`` never blocks the worker: events are handed
to the loop with ``call_soon_threadsafe``, and a listener too slow to keep up
loses progress events, never state changes (a state change closes the gap).
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Event = dict[str, Any]


@dataclass(eq=False)
class Subscription:
    """One listener: an asyncio queue on ``loop``, optionally filtered to one job."""

    loop: asyncio.AbstractEventLoop
    job_id: str | None
    queue: asyncio.Queue[Event] = field(default_factory=lambda: asyncio.Queue(maxsize=1000))

    def _put(self, event: Event) -> None:
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            if event.get("type") == "state":  # make room: state changes matter most
                try:
                    self.queue.get_nowait()
                    self.queue.put_nowait(event)
                except (asyncio.QueueEmpty, asyncio.QueueFull):
                    pass


class EventBus:
    """Fan-out of job events. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscriptions: set[Subscription] = set()
        self._ids = itertools.count(1)
        self._hooks: list[Callable[[Event], None]] = []

    def add_hook(self, hook: Callable[[Event], None]) -> None:
        """Call ``hook(event)`` synchronously on every publish (metrics); it must be quick and not raise."""
        self._hooks.append(hook)

    def subscribe(self, job_id: str | None = None) -> Subscription:
        """A new listener on the running loop (all jobs, or ``job_id`` only)."""
        sub = Subscription(asyncio.get_running_loop(), job_id)
        with self._lock:
            self._subscriptions.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Stop delivering to ``sub``."""
        with self._lock:
            self._subscriptions.discard(sub)

    def publish(self, event: Event) -> None:
        """Deliver ``event`` (it must carry ``type`` and ``job_id``) to every matching listener."""
        event = dict(event, id=next(self._ids))
        for hook in self._hooks:
            hook(event)
        with self._lock:
            targets = [s for s in self._subscriptions if s.job_id is None or s.job_id == event.get("job_id")]
        for sub in targets:
            try:
                sub.loop.call_soon_threadsafe(sub._put, event)
            except RuntimeError:  # the loop closed
                self.unsubscribe(sub)
