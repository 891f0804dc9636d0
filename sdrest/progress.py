"""Progress events and the glue that turns native callbacks into them."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Optional

import numpy as np
from PIL import Image

from sdrest.images import to_pil


@dataclass(frozen=True)
class Progress:
    """One progress event: ``step`` of ``steps`` done in ``phase``.

    ``phase`` is ``"loading"``, ``"sampling"``, ``"decoding"``, ``"upscaling"`` or
    ``"converting"``; ``seconds_per_step`` is sd.cpp's running average.
    """

    step: int
    steps: int
    seconds_per_step: float
    phase: str


ProgressCallback = Callable[[Progress], object]
PreviewCallback = Callable[[int, list[Image.Image], bool], object]


def progress_adapter(
    progress: Optional[ProgressCallback],
    cancel: Optional[threading.Event],
    stop: Callable[[], None],
) -> Optional[Callable[[int, int, float, str], None]]:
    """The callable handed to the native layer: drops sd.cpp's step-0 "start" events,
    calls ``progress`` once per step, and stops the call when ``cancel`` is set."""
    if progress is None and cancel is None:
        # The native layer still checks Ctrl-C and cancel() at every step.
        return None

    def on_progress(step: int, steps: int, seconds: float, phase: str) -> None:
        if cancel is not None and cancel.is_set():
            stop()
            return
        if progress is not None and step > 0:
            progress(Progress(step, steps, seconds, phase))

    return on_progress


def preview_adapter(preview: Optional[PreviewCallback]) -> Optional[Callable[[int, list[np.ndarray], bool], None]]:
    """The callable handed to the native layer for previews: frames become PIL images."""
    if preview is None:
        return None

    def on_preview(step: int, frames: list[np.ndarray], is_noisy: bool) -> None:
        preview(step, [to_pil(f) for f in frames], is_noisy)

    return on_preview
