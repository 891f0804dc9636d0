"""Inputs that crash sd.cpp: the library refuses them before native work, and our patched sd.cpp survives them.

The native checks run in a child process (``sdrest.testing.crash_search``'s worker), so a crash fails
the test instead of ending pytest.
"""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path

import pytest

import sdrest
from sdrest.checks import ArgumentError, check_schedule, hires_schedule_steps
from sdrest.testing import crash_search
from sdrest.testing.crash_search import Case, Settings

SMALL = {"width": 64, "height": 64, "seed": 1}


def test_check_schedule_is_pure_python() -> None:
    """The server's API process calls it, and must not import the extension."""
    import subprocess

    code = ("import sys; from sdrest.checks import check_schedule; check_schedule('gits', 2); "
            "assert 'sdrest._native' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(sdrest.__file__).parents[1])


@pytest.mark.parametrize(("scheduler", "steps", "refused"), [
    ("gits", 1, True), ("gits", 0, True), ("gits", 2, False), ("karras", 1, False), (None, 1, False),
    ("discrete", 0, True),
])
def test_check_schedule(scheduler: str | None, steps: int, refused: bool) -> None:
    if refused:
        with pytest.raises(ArgumentError, match=r"^steps: .*at least") as info:
            check_schedule(scheduler, steps)
        assert info.value.argument == "steps" and isinstance(info.value, ValueError)
    else:
        check_schedule(scheduler, steps)


def test_hires_schedule_steps_follows_sd_cpp() -> None:
    """int(steps / strength) in single precision, the strength clamped to [0.0001, 1], 0 steps: the base's."""
    assert hires_schedule_steps(20, 0, 0.7) == 28
    assert hires_schedule_steps(20, 1, 1.0) == 1
    assert hires_schedule_steps(1, 0, 0.5) == 2
    assert hires_schedule_steps(2, 0, 0.0) == 20000


@pytest.mark.parametrize(("options", "argument", "value"), [
    ({"scheduler": "gits", "steps": 1}, "steps", "got 1"),
    ({"scheduler": "gits", "steps": 2, "hires": {"steps": 1, "denoising_strength": 1.0}}, "hires.steps", "got 1"),
    ({"hires": {"denoising_strength": 0.0}}, "hires.denoising_strength", "got 0.0"),
    ({"hires": {"denoising_strength": 1.5}}, "hires.denoising_strength", "got 1.5"),
    ({"hires": {"upscale_tile_size": 0}}, "hires.upscale_tile_size", "got 0"),
    ({"steps": 0}, "steps", "got 0"),
    ({"sigmas": [5.0]}, "sigmas", "got 1"),
    ({"vae_tiling": {"target_overlap": math.nan}}, "vae_tiling.target_overlap", "got nan"),
    ({"cache": {"mode": "ucache", "reuse_threshold": math.nan}}, "cache.reuse_threshold", "got nan"),
    ({"cache": {"mode": "ucache", "start_percent": 0.9, "end_percent": 0.5}}, "cache.start_percent", "got 0.9"),
])
def test_library_refuses_crashing_combinations(sd1: sdrest.StableDiffusion, options: dict, argument: str,
                                               value: str) -> None:
    """A ValueError naming the argument and the value, before any native work (no progress event at all)."""
    events: list[object] = []
    with pytest.raises(ValueError, match=rf"^{re.escape(argument)}: ") as info:
        sd1.txt2img("x", progress=events.append, **SMALL, **options)
    assert events == [], "native work started before the refusal"
    assert value in str(info.value)


def test_library_refuses_what_crashes_img2img(sd1: sdrest.StableDiffusion) -> None:
    import numpy as np

    image = np.full((64, 64, 3), 128, dtype=np.uint8)
    with pytest.raises(ValueError, match=r"^steps: the gits scheduler needs at least 2 steps, got 1"):
        sd1.img2img(image, "x", scheduler="gits", steps=1, **SMALL)
    with pytest.raises(ValueError, match=r"^strength: must be between 0.0 and 1.0, got -1"):
        sd1.img2img(image, "x", strength=-1.0, **SMALL)


def test_patched_sd_cpp_survives_what_the_library_refuses(sd1_path: Path, taesd_path: Path) -> None:
    """A tiny slice of the crash search, the library's check bypassed, in a child process:
    gits with one step samples (patch 0003), zero steps (patch 0004) and a negative img2img strength
    (patch 0005) are errors instead of crashes, and the library's own layer refuses gits with one step."""
    gits = sdrest.schedulers().index("gits")
    euler = sdrest.samplers().index("euler")
    cases = [
        Case("gits steps=1", "native", "txt2img", {"sample_params.scheduler": gits,
                                                   "sample_params.sample_method": euler,
                                                   "sample_params.sample_steps": 1,
                                                   "sample_params.guidance.txt_cfg": 1.0}),
        Case("gits steps=1", "library", "txt2img", {"scheduler": "gits", "steps": 1, "cfg_scale": 1.0}),
        Case("sample_steps=0", "native", "txt2img", {"sample_params.sample_steps": 0}),
        Case("strength=-1", "native", "txt2img", {"init_image": "gray", "mask_image": "white", "strength": -1.0}),
    ]
    settings = Settings(sd1_path, timeout=300, memory_gb=8)
    settings.matrix_taesd = taesd_path
    cases = [Case(c.name, c.layer, c.call, c.options, group="matrix") for c in cases]  # TAESD decodes: faster
    native_gits, library_gits, zero_steps, negative_strength = crash_search.search(cases, settings, jobs=1)
    assert native_gits.outcome == "ok", native_gits.detail
    assert library_gits.outcome == "error", library_gits.detail
    assert library_gits.detail.startswith("ArgumentError: steps: the gits scheduler needs at least 2 steps"), \
        library_gits.detail
    assert zero_steps.outcome == "error" and "NativeError" in zero_steps.detail, zero_steps.detail
    assert "at least one step" in zero_steps.detail, zero_steps.detail
    assert negative_strength.outcome == "error", negative_strength.detail  # patch 0005
    assert "strength must be in [0, 1]" in negative_strength.detail, negative_strength.detail
