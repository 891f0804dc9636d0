"""``ModelCache`` with a stand-in loader: keep, swap, idle timeout, memory budget."""

from __future__ import annotations

import time
from typing import Any

from sdrest.jobs.models import ModelCache


class Obj:
    def __init__(self, kind: str, files: dict[str, str]) -> None:
        self.kind, self.files, self.closed = kind, files, False

    def close(self) -> None:
        self.closed = True

    def cancel(self) -> None:
        pass


def cache(**kwargs: Any) -> tuple[ModelCache, list[tuple[str, str]]]:
    changes: list[tuple[str, str]] = []
    options: dict[str, Any] = {"n_threads": 1, "idle_seconds": 0.0, "memory_budget_mb": 0, **kwargs}
    return ModelCache(on_change=lambda change, info: changes.append((change, info["kind"])),
                      loader=Obj, **options), changes


def test_keeps_then_swaps_and_reports_changes() -> None:
    models, changes = cache()
    first = models.diffusion({"model": "a"})
    assert models.diffusion({"model": "a"}) is first
    second = models.diffusion({"model": "b"})
    assert first.closed and not second.closed and second.files == {"model": "b"}
    up = models.upscaler("x4")
    assert up.kind == "upscaler" and up.files == {"esrgan": "x4"}
    assert changes == [("loaded", "diffusion"), ("unloaded", "diffusion"), ("loaded", "diffusion"),
                       ("loaded", "upscaler")]
    models.close()
    assert second.closed and up.closed and models.loaded() == []


def test_idle_timeout_counts_from_the_last_use() -> None:
    models, changes = cache(idle_seconds=0.2)
    obj = models.diffusion({"model": "a"})
    assert not models.unload_idle()
    assert models.loaded() and not obj.closed
    deadline = time.monotonic() + 5
    while models.loaded():
        assert time.monotonic() < deadline, "not unloaded"
        models.unload_idle()
        time.sleep(0.02)
    assert obj.closed and changes.count(("unloaded", "diffusion")) == 1


def test_touch_restarts_the_idle_clock() -> None:
    models, _ = cache(idle_seconds=0.2)
    models.diffusion({"model": "a"})
    models._sd.last_used -= 10  # type: ignore[union-attr]  # loaded long ago (a long job)
    models.touch()  # ... that just ended
    models.unload_idle()
    assert models.loaded()


def test_no_idle_timeout_never_unloads() -> None:
    models, _ = cache()
    models.diffusion({"model": "a"})
    models._sd.last_used -= 10**6  # type: ignore[union-attr]
    models.unload_idle()
    assert models.loaded()


def test_memory_budget() -> None:
    over, _ = cache(memory_budget_mb=1)
    obj = over.diffusion({"model": "a"})
    over.enforce_budget()
    assert obj.closed and over.loaded() == []
    under, _ = cache(memory_budget_mb=10**7)
    kept = under.diffusion({"model": "a"})
    under.enforce_budget()
    assert not kept.closed and under.loaded()
