"""Native log lines go to the ``sdrest.native`` logger; this keeps the native filter in step with it."""

from __future__ import annotations

import logging

from sdrest import _native

LOGGER = logging.getLogger("sdrest.native")

_LEVELS = (
    (logging.DEBUG, _native.LogLevel.DEBUG),
    (logging.INFO, _native.LogLevel.INFO),
    (logging.WARNING, _native.LogLevel.WARN),
)


def sync_log_threshold() -> None:
    """Forward only the native lines the ``sdrest.native`` logger would emit (cheap; call before native work)."""
    effective = LOGGER.getEffectiveLevel()
    threshold = _native.LogLevel.ERROR
    for python_level, native_level in _LEVELS:
        if effective <= python_level:
            threshold = native_level
            break
    _native.set_log_threshold(int(threshold))
