"""The exceptions sdrest raises besides the built-in ``ValueError``/``TypeError``/``OSError``."""

from __future__ import annotations

from sdrest._native import Cancelled, NativeError

__all__ = ["Cancelled", "NativeError"]
