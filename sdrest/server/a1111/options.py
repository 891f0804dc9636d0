"""A1111's ``/sdapi/v1/options``, one set per caller, kept across restarts.

A1111 has one user and one set of options; here each caller (a user, an API key's user, a guest; everyone at once
with ``auth none``) has their own. ``sd_model_checkpoint`` picks the model of the caller's later jobs, ``sd_vae``
their VAE, ``CLIP_stop_at_last_layers`` their CLIP skip, ``live_previews_enable`` and
``show_progress_every_n_steps`` their progress previews; any other option is stored and echoed as A1111 does.
The store is one JSON file in the data dir, written atomically, bounded in callers, keys and bytes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

__all__ = ["DEFAULTS", "MAX_BYTES", "MAX_KEYS", "MAX_OWNERS", "OptionsStore"]

log = logging.getLogger("sdrest.server")

#: the options every caller starts with (A1111's defaults for those that mean something here)
DEFAULTS: dict[str, Any] = {
    "sd_model_checkpoint": None,
    "sd_checkpoint_hash": None,
    "sd_vae": "Automatic",
    "CLIP_stop_at_last_layers": 1,
    "live_previews_enable": True,
    "show_progress_every_n_steps": 10,
    "samples_format": "png",
    "eta_noise_seed_delta": 0,
}
#: most keys one caller may store, and most bytes of their options as JSON
MAX_KEYS, MAX_BYTES = 256, 64 * 1024
#: most callers remembered; past it the one whose options changed longest ago is forgotten
MAX_OWNERS = 1000


class OptionsStore:
    """Per-caller A1111 options in ``path`` (JSON: owner -> options)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._data: dict[str, dict[str, Any]] = self._read()

    def _read(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("a1111 options: %s unreadable (%s); starting empty", self.path.name, exc)
            return {}
        if not isinstance(data, dict):
            return {}
        return {str(k): v for k, v in data.items() if isinstance(v, dict)}

    def get(self, owner: str) -> dict[str, Any]:
        """The caller's options: :data:`DEFAULTS` under what they set."""
        with self._lock:
            return {**DEFAULTS, **self._data.get(owner, {})}

    def set(self, owner: str, changes: dict[str, Any]) -> None:
        """Store ``changes`` (already checked) over the caller's options; :class:`ValueError` past
        :data:`MAX_KEYS` or :data:`MAX_BYTES`."""
        with self._lock:
            merged = {**self._data.get(owner, {}), **changes}
            if len(merged) > MAX_KEYS:
                raise ValueError(f"at most {MAX_KEYS} options may be stored")
            if len(json.dumps(merged)) > MAX_BYTES:
                raise ValueError(f"the options would take more than {MAX_BYTES} bytes")
            self._data.pop(owner, None)
            self._data[owner] = merged  # most recently changed last
            while len(self._data) > MAX_OWNERS:
                self._data.pop(next(iter(self._data)))
            self._write()

    def _write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".a1111-options-", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(self._data, f, separators=(",", ":"))
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
