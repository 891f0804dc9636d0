"""Name tables of sd.cpp's enums, read from the C library's own name functions.

Sampler, scheduler, weight-type and other names are sd.cpp's strings
(``euler_a``, ``dpm++2m``, ``karras``, ``q8_0`` ...); nothing here is a second,
hand-kept list.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

from sdrest import _native


def _table(names: list[str | None]) -> dict[str, int]:
    return {name: value for value, name in enumerate(names) if name is not None}


@cache
def sampler_table() -> dict[str, int]:
    """Sampler name -> ``sample_method_t`` value."""
    return _table(_native.sample_method_names())


@cache
def scheduler_table() -> dict[str, int]:
    """Scheduler name -> ``scheduler_t`` value."""
    return _table(_native.scheduler_names())


@cache
def type_table() -> dict[str, int]:
    """Weight type name (ggml's) -> ``sd_type_t`` value, removed types left out."""
    return {n: v for n, v in _table(_native.type_names()).items() if " " not in n}


@cache
def rng_table() -> dict[str, int]:
    """RNG name -> ``rng_type_t`` value."""
    return _table(_native.rng_type_names())


@cache
def prediction_table() -> dict[str, int]:
    """Prediction type name -> ``prediction_t`` value."""
    return _table(_native.prediction_names())


@cache
def preview_table() -> dict[str, int]:
    """Preview mode name -> ``preview_t`` value."""
    return _table(_native.preview_names())


@cache
def lora_apply_mode_table() -> dict[str, int]:
    """LoRA apply mode name -> ``lora_apply_mode_t`` value."""
    return _table(_native.lora_apply_mode_names())


@cache
def cache_mode_table() -> dict[str, int]:
    """Step-cache mode name (``easycache``, ``ucache`` ...) -> ``sd_cache_mode_t`` value."""
    return {m.name.lower(): int(m) for m in _native.CacheMode}


@cache
def hires_upscaler_table() -> dict[str, int]:
    """Hires-fix upscaler name -> ``sd_hires_upscaler_t`` value (sd.cpp's names, lower case)."""
    return {n.lower(): v for n, v in _table(_native.hires_upscaler_names()).items()}


def lookup(table: Callable[[], dict[str, int]], value: str | int, argument: str) -> int:
    """The enum value for ``value`` (a name, or an int already), or ``ValueError`` naming ``argument``."""
    names = table()
    if isinstance(value, bool):
        raise TypeError(f"{argument}: expected a name, got {value!r}")
    if isinstance(value, int):
        if value in names.values():
            return value
        raise ValueError(f"{argument}: invalid value {value!r}")
    if not isinstance(value, str):
        raise TypeError(f"{argument}: expected a name, got {type(value).__name__}")
    key = value.strip().lower() if table is hires_upscaler_table or table is cache_mode_table else value.strip()
    if key in names:
        return names[key]
    raise ValueError(f"{argument}: unknown {argument} {value!r}; expected one of: {', '.join(names)}")


def samplers() -> list[str]:
    """sd.cpp's sampler names, in enum order."""
    return list(sampler_table())


def schedulers() -> list[str]:
    """sd.cpp's scheduler names, in enum order."""
    return list(scheduler_table())


def weight_types() -> list[str]:
    """The weight types sd.cpp can convert to or load with (``f32``, ``f16``, ``q8_0`` ...)."""
    return list(type_table())
