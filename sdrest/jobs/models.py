"""What a worker keeps loaded: one diffusion context and one upscaler, swapped by the jobs' needs."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import psutil

ModelLoader = Callable[[str, dict[str, str]], Any]
"""``loader(kind, files)``: a loaded native object with ``close()`` (and ``cancel()`` for diffusion)."""


@dataclass
class Loaded:
    """A loaded native object and what it was loaded from."""

    key: tuple
    obj: Any
    files: dict[str, str]
    loaded_at: float = field(default_factory=time.time)
    last_used: float = field(default_factory=time.monotonic)
    load_seconds: float = 0.0


class ModelCache:
    """The native contexts one worker owns. Use it under :attr:`lock` (the worker holds it while a job runs).

    Policy: one diffusion context and one upscaler at a time; a job needing other
    files unloads the old context before loading the new one (so two never share
    memory); :meth:`unload_idle` frees contexts unused for ``idle_seconds``; past
    ``memory_budget_mb`` of RSS, everything is unloaded after the job.

    ``loader(kind, files)`` builds the native object (``kind`` is ``"diffusion"`` or ``"upscaler"``;
    default: :class:`sdrest.StableDiffusion` / :class:`sdrest.Upscaler`); tests replace it.
    ``on_change(change, info)`` hears of every load (``loaded``, ``load_failed``) and unload (``unloaded``).
    """

    def __init__(self, *, n_threads: int | None, idle_seconds: float, memory_budget_mb: int,
                 on_change: Callable[[str, dict[str, Any]], None] | None = None,
                 loader: ModelLoader | None = None) -> None:
        self.lock = threading.RLock()
        self.n_threads = n_threads
        self.idle_seconds = idle_seconds
        self.memory_budget_mb = memory_budget_mb
        self.on_change: Callable[[str, dict[str, Any]], None] = on_change or (lambda change, info: None)
        self._loader = loader or self._native
        self._sd: Loaded | None = None
        self._upscaler: Loaded | None = None

    def _native(self, kind: str, files: dict[str, str]) -> Any:
        """The default loader: the native context for ``kind``."""
        if kind == "upscaler":
            from sdrest.upscaler import Upscaler

            return Upscaler(files["esrgan"], n_threads=self.n_threads)
        from sdrest.diffusion import StableDiffusion

        return StableDiffusion(n_threads=self.n_threads, **files)

    def diffusion(self, files: Mapping[str, str]) -> Any:
        """A :class:`sdrest.StableDiffusion` loaded from ``files`` (``model``, ``vae``, ``taesd`` ...)."""
        key = tuple(sorted(files.items()))
        with self.lock:
            if self._sd is not None and self._sd.key == key:
                self._sd.last_used = time.monotonic()
                return self._sd.obj
            self._close("diffusion")
            started = time.monotonic()
            try:
                obj = self._loader("diffusion", dict(files))
            except Exception as exc:
                self.on_change("load_failed", {"kind": "diffusion", "files": dict(files), "error": str(exc)})
                raise
            elapsed = time.monotonic() - started
            self._sd = Loaded(key, obj, dict(files), load_seconds=elapsed)
            self.on_change("loaded", {"kind": "diffusion", "files": dict(files), "seconds": elapsed})
            return obj

    def upscaler(self, path: str) -> Any:
        """A :class:`sdrest.Upscaler` loaded from ``path``."""
        key = (path,)
        with self.lock:
            if self._upscaler is not None and self._upscaler.key == key:
                self._upscaler.last_used = time.monotonic()
                return self._upscaler.obj
            self._close("upscaler")
            started = time.monotonic()
            try:
                obj = self._loader("upscaler", {"esrgan": path})
            except Exception as exc:
                self.on_change("load_failed", {"kind": "upscaler", "files": {"esrgan": path}, "error": str(exc)})
                raise
            elapsed = time.monotonic() - started
            self._upscaler = Loaded(key, obj, {"esrgan": path}, load_seconds=elapsed)
            self.on_change("loaded", {"kind": "upscaler", "files": {"esrgan": path}, "seconds": elapsed})
            return obj

    def cancel(self, mode: str = "all") -> None:
        """Stop the generation in flight (thread-safe, no lock: the worker holds it); ``new_latents`` stops it
        after the image being sampled (see :meth:`sdrest.StableDiffusion.cancel`)."""
        loaded = self._sd
        if loaded is not None:
            if mode == "all":
                loaded.obj.cancel()
            else:
                loaded.obj.cancel(mode)

    def _close(self, which: str) -> None:
        slot = "_sd" if which == "diffusion" else "_upscaler"
        loaded: Loaded | None = getattr(self, slot)
        if loaded is not None:
            setattr(self, slot, None)
            loaded.obj.close()
            self.on_change("unloaded", {"kind": which, "files": loaded.files})

    def unload(self, path: str | None = None) -> bool:
        """Unload everything, or the contexts that use ``path``; True if something was unloaded."""
        with self.lock:
            done = False
            for which, loaded in (("diffusion", self._sd), ("upscaler", self._upscaler)):
                if loaded is not None and (path is None or path in loaded.files.values()):
                    self._close(which)
                    done = True
            return done

    def touch(self) -> None:
        """Mark what is loaded as used now (the worker calls it when a job ends, so idle time starts there)."""
        with self.lock:
            now = time.monotonic()
            for loaded in (self._sd, self._upscaler):
                if loaded is not None:
                    loaded.last_used = now

    def unload_idle(self) -> bool:
        """Apply the idle timeout (called by the worker between jobs); True if something was unloaded."""
        if self.idle_seconds <= 0:
            return False
        if not self.lock.acquire(blocking=False):
            return False
        try:
            now = time.monotonic()
            done = False
            for which, loaded in (("diffusion", self._sd), ("upscaler", self._upscaler)):
                if loaded is not None and now - loaded.last_used >= self.idle_seconds:
                    self._close(which)
                    done = True
            return done
        finally:
            self.lock.release()

    def enforce_budget(self) -> bool:
        """Unload everything when the process uses more memory than the budget; True if it did."""
        if self.memory_budget_mb > 0 and psutil.Process().memory_info().rss > self.memory_budget_mb * 2**20:
            return self.unload()
        return False

    def loaded(self) -> list[dict[str, Any]]:
        """What is loaded now."""
        out = []
        for which, loaded in (("diffusion", self._sd), ("upscaler", self._upscaler)):
            if loaded is not None:
                out.append({"kind": which, "files": dict(loaded.files), "loaded_at": loaded.loaded_at,
                            "load_seconds": round(loaded.load_seconds, 3)})
        return out

    def close(self) -> None:
        """Unload everything."""
        self.unload()
