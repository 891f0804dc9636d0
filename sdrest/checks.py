"""Argument checks shared by the library: each raises ``TypeError``/``ValueError``/``OSError`` naming the argument."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Union

import numpy as np

PathLike = Union[str, "os.PathLike[str]"]

#: Largest width or height accepted (sd.cpp itself has no limit; memory does).
MAX_SIDE = 16384


def check_path(value: PathLike, argument: str) -> str:
    """A readable, non-empty file (or a folder, for diffusers layouts) as a str; errors name ``argument``."""
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{argument}: expected a path, got {type(value).__name__}")
    path = Path(value)
    if not path.exists():
        raise FileNotFoundError(f"{argument}: no such file: {str(path)!r}")
    if path.is_file():
        try:
            with path.open("rb") as f:
                f.read(1)
        except OSError as exc:
            raise PermissionError(f"{argument}: cannot read {str(path)!r}: {exc.strerror}") from exc
        if path.stat().st_size == 0:
            raise ValueError(f"{argument}: {str(path)!r} is empty")
    elif not path.is_dir():
        raise ValueError(f"{argument}: {str(path)!r} is not a file")
    return os.fspath(path)


def check_int(value: Any, argument: str, low: int, high: int) -> int:
    """An integer (not a bool) in [low, high]; errors name ``argument``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{argument}: expected an integer, got {type(value).__name__}")
    if not low <= int(value) <= high:
        raise ValueError(f"{argument}: must be between {low} and {high}, got {value}")
    return int(value)


def check_float(value: Any, argument: str, low: float = -math.inf, high: float = math.inf) -> float:
    """A finite-or-bounded, non-NaN number in [low, high] as a float; errors name ``argument``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{argument}: expected a number, got {type(value).__name__}")
    number = float(value)
    if math.isnan(number) or not low <= number <= high:
        raise ValueError(f"{argument}: must be between {low} and {high}, got {value}")
    return number


def check_side(value: Any, argument: str) -> int:
    """An image side: a multiple of 8 in [8, MAX_SIDE]; errors name ``argument``."""
    side = check_int(value, argument, 8, MAX_SIDE)
    if side % 8:
        raise ValueError(f"{argument}: must be a multiple of 8, got {side}")
    return side


class ArgumentError(ValueError):
    """A ``ValueError`` about one argument; ``argument`` names it (the request field, for an API)."""

    def __init__(self, argument: str, message: str) -> None:
        super().__init__(f"{argument}: {message}")
        self.argument = argument


#: Schedulers whose sd.cpp schedule needs more than one step. GITS takes its schedule from a table
#: that starts at two steps; unpatched sd.cpp reads ``table[steps - 2]`` and crashes at one step
#: (third_party/patches/0003-gits-one-step.patch fixes our build; this keeps other builds safe).
MIN_SCHEDULER_STEPS = {"gits": 2}


def check_schedule(scheduler: str | None, steps: int, argument: str = "steps") -> None:
    """Refuse a step count ``scheduler`` (an sd.cpp name; ``None``: the model's default) cannot schedule.

    Pure Python (no native import): the API server checks requests with it before queueing, the
    library before native work. Raises :class:`ArgumentError` naming ``argument``.
    """
    minimum = MIN_SCHEDULER_STEPS.get(scheduler or "", 1)
    if steps < minimum:
        raise ArgumentError(argument, f"the {scheduler} scheduler needs at least {minimum} steps, got {steps}")


def hires_schedule_steps(steps: int, hires_steps: int, denoising_strength: float) -> int:
    """The length of the schedule sd.cpp builds for a hires-fix pass (``hires_steps`` 0: ``steps``).

    sd.cpp stretches it so that trimming by the denoising strength leaves ``hires_steps``:
    ``int(steps / denoising_strength)`` in single precision, the strength clamped to [0.0001, 1].
    """
    wanted = np.float32(hires_steps if hires_steps > 0 else steps)
    strength = np.float32(min(max(denoising_strength, 0.0001), 1.0))
    return int(wanted / strength)


def check_sigmas(values: Any, argument: str = "sigmas") -> list[float]:
    """A custom schedule: at least two sigmas (N steps take N + 1), each a number in [0, 10000]."""
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise TypeError(f"{argument}: expected a sequence of numbers")
    sigmas = [check_float(s, argument, 0.0, 1e4) for s in values]
    if len(sigmas) == 1:
        raise ValueError(f"{argument}: a schedule of N steps has N + 1 sigmas; give at least 2, got 1")
    return sigmas


#: ``sd_tiling_params_t``: integer tile sizes (0: the default) and fractions
_TILING_RANGES: dict[str, tuple[type, float, float]] = {
    "tile_size_x": (int, 0, MAX_SIDE), "tile_size_y": (int, 0, MAX_SIDE),
    "target_overlap": (float, 0.0, 0.5), "rel_size_x": (float, 0.0, 1024.0), "rel_size_y": (float, 0.0, 1024.0),
}


def check_tiling(value: Any, defaults: dict[str, Any], argument: str = "vae_tiling") -> dict[str, Any]:
    """``sd_tiling_params_t`` from ``True`` or a dict of its fields, each checked, tiling enabled.

    sd.cpp clamps the overlap to [0, 0.5] but lets NaN through, which fails an assertion while blending
    tiles; sizes and fractions are kept to what means something.
    """
    out = dict(defaults, enabled=True)
    if value is True:
        return out
    if not isinstance(value, dict):
        raise TypeError(f"{argument}: expected True or a dict of tiling settings")
    for key, setting in value.items():
        if key == "enabled":
            if not isinstance(setting, bool):
                raise TypeError(f"{argument}.enabled: expected a bool")
            out[key] = setting
            continue
        if key not in _TILING_RANGES:
            raise TypeError(f"{argument}: unknown setting {key!r}; expected one of: enabled, {', '.join(_TILING_RANGES)}")
        kind, low, high = _TILING_RANGES[key]
        name = f"{argument}.{key}"
        out[key] = check_int(setting, name, int(low), int(high)) if kind is int else check_float(setting, name, low, high)
    return out


#: ``sd_cache_params_t`` fractions of the sampling run
_CACHE_FRACTIONS = ("start_percent", "end_percent", "spectrum_flex_window", "spectrum_stop_percent")
#: counts and block indices: -1 means "no limit" where sd.cpp uses it
_CACHE_INT_RANGE = (-1, 10000)


def check_cache(value: Any, defaults: dict[str, Any], argument: str = "cache") -> dict[str, Any]:
    """``sd_cache_params_t`` from a dict of its fields (``mode`` left as given, for a name lookup), checked.

    Like sd.cpp's CLI: thresholds are not negative, ``0 <= start_percent < end_percent <= 1``; no NaN
    anywhere, and counts stay in [-1, 10000].
    """
    if not isinstance(value, dict):
        raise TypeError(f"{argument}: expected a dict of step-cache settings")
    out = dict(defaults)
    for key, setting in value.items():
        name = f"{argument}.{key}"
        if key not in defaults:
            raise TypeError(f"{argument}: unknown setting {key!r}")
        default = defaults[key]
        if key == "mode":
            out[key] = setting
        elif isinstance(default, bool):
            if not isinstance(setting, bool):
                raise TypeError(f"{name}: expected a bool")
            out[key] = setting
        elif isinstance(default, int):
            out[key] = check_int(setting, name, *_CACHE_INT_RANGE)
        elif isinstance(default, float):
            high = 1.0 if key in _CACHE_FRACTIONS else math.inf
            out[key] = check_float(setting, name, 0.0, high)
        else:
            if setting is not None and not isinstance(setting, str):
                raise TypeError(f"{name}: expected a string")
            out[key] = setting
    if not out["start_percent"] < out["end_percent"]:
        raise ValueError(f"{argument}.start_percent: must be below end_percent ({out['end_percent']}), "
                         f"got {out['start_percent']}")
    return out
