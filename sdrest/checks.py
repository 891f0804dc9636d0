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
