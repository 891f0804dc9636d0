"""``Upscaler.upscale`` honours the factor exactly: model passes, then Lanczos to the exact size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import sdrest
from sdrest.upscaler import plan_upscale

WIDTH, HEIGHT = 24, 16  # not square: a swapped width and height shows


@pytest.fixture(scope="module")
def upscaler(esrgan_path: Path) -> sdrest.Upscaler:
    """The synthetic x4 ESRGAN, loaded once."""
    with sdrest.Upscaler(esrgan_path) as up:
        yield up


@pytest.fixture(scope="module")
def source() -> Image.Image:
    """A deterministic, non-flat RGB image."""
    rng = np.random.default_rng(3)
    return Image.fromarray(rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8))


@pytest.fixture(scope="module")
def one_pass(upscaler: sdrest.Upscaler, source: Image.Image) -> Image.Image:
    """The model's own output: one x4 pass, no resize."""
    return upscaler.upscale(source, 4)


@pytest.mark.parametrize(("factor", "passes"), [(1, 1), (2, 1), (3, 1), (4, 1), (8, 2)])
def test_factor_gives_the_exact_size(upscaler: sdrest.Upscaler, source: Image.Image, factor: int,
                                     passes: int) -> None:
    result = upscaler.upscale(source, factor)
    assert result.size == (WIDTH * factor, HEIGHT * factor)
    assert result.mode == "RGB"
    info = result.info["parameters"]
    assert f"Postprocess upscale by: {factor}," in info
    assert f"Postprocess upscaler: {Path(upscaler.path).stem}," in info
    fields = dict(field.split(": ", 1) for field in info.split(", "))
    assert fields["Upscaler passes"] == str(passes) and fields["Upscaler scale"] == "4"
    assert ("Resize" in fields) == (factor not in (4, 16))


def test_default_factor_is_the_models(upscaler: sdrest.Upscaler, source: Image.Image, one_pass: Image.Image) -> None:
    assert upscaler.factor == 4
    default = upscaler.upscale(source)
    assert default.size == (WIDTH * 4, HEIGHT * 4)
    assert np.array_equal(np.asarray(default), np.asarray(one_pass))
    assert np.asarray(one_pass).std() > 0, "a flat image would prove nothing"


def test_smaller_factor_is_the_model_output_resized(upscaler: sdrest.Upscaler, source: Image.Image,
                                                    one_pass: Image.Image) -> None:
    """Factor 2 on an x4 model: one pass, then Lanczos down to 2x (A1111's way), not the raw 4x."""
    result = upscaler.upscale(source, 2)
    expected = one_pass.resize((WIDTH * 2, HEIGHT * 2), Image.Resampling.LANCZOS)
    assert np.array_equal(np.asarray(result), np.asarray(expected))


def test_larger_factor_runs_the_model_again(upscaler: sdrest.Upscaler, one_pass: Image.Image,
                                            source: Image.Image) -> None:
    """Factor 8 on an x4 model: two passes (16x), then Lanczos down to 8x."""
    result = upscaler.upscale(source, 8)
    twice = upscaler.upscale(one_pass, 4)
    assert twice.size == (WIDTH * 16, HEIGHT * 16)
    expected = twice.resize((WIDTH * 8, HEIGHT * 8), Image.Resampling.LANCZOS)
    assert np.array_equal(np.asarray(result), np.asarray(expected))


def test_the_inputs_parameters_are_kept(upscaler: sdrest.Upscaler, source: Image.Image) -> None:
    """A generated image keeps how it was made; what the upscale did is appended to its last line."""
    generated = source.copy()
    generated.info["parameters"] = "a lovely cat\nNegative prompt: blurry\nSteps: 20, Seed: 42, Size: 24x16"
    text = upscaler.upscale(generated, 2).info["parameters"]
    assert text == ("a lovely cat\nNegative prompt: blurry\nSteps: 20, Seed: 42, Size: 24x16, "
                    "Postprocess upscale by: 2, Postprocess upscaler: esrgan_x4, Upscaler scale: 4, "
                    "Upscaler passes: 1, Resize: Lanczos from 96x64")


def test_fractional_factor(upscaler: sdrest.Upscaler, source: Image.Image) -> None:
    result = upscaler.upscale(source, 2.5)
    assert result.size == (60, 40)
    assert "Postprocess upscale by: 2.5," in result.info["parameters"]


def test_progress_reports_each_pass(esrgan_path: Path, source: Image.Image) -> None:
    """sd.cpp reports progress per tile: small tiles make both passes report."""
    events: list[sdrest.Progress] = []
    with sdrest.Upscaler(esrgan_path, tile_size=16) as small_tiles:
        result = small_tiles.upscale(source.crop((0, 0, 20, 8)), 8, progress=events.append)  # 2 tiles, then 10
    assert result.size == (160, 64)
    assert events and {e.phase for e in events} == {"upscaling"}
    finished = [e for e in events if e.step == e.steps]
    assert len(finished) == 2, [(e.step, e.steps) for e in events]


@pytest.mark.parametrize(("factor", "error", "match"), [
    (0, ValueError, "factor: must be between"),
    (17, ValueError, "factor: must be between"),
    (float("nan"), ValueError, "factor"),
    ("2", TypeError, "factor: expected a number"),
    (True, TypeError, "factor: expected a number"),
])
def test_bad_factor(upscaler: sdrest.Upscaler, source: Image.Image, factor: object, error: type,
                    match: str) -> None:
    with pytest.raises(error, match=match):
        upscaler.upscale(source, factor)  # type: ignore[arg-type]


def test_plan_refuses_huge_results() -> None:
    with pytest.raises(ValueError, match="would exceed 32768 pixels a side"):
        plan_upscale((4096, 4096), 16, 4)


@pytest.mark.parametrize(("scale", "factor", "passes", "model_side"), [
    (4, 1, 1, 40), (4, 4, 1, 40), (4, 5, 2, 160), (4, 16, 2, 160), (2, 3, 2, 40), (2, 8, 3, 80), (1, 3, 1, 10),
])
def test_plan(scale: int, factor: int, passes: int, model_side: int) -> None:
    plan = plan_upscale((10, 10), factor, scale)
    assert (plan.passes, plan.model_size, plan.size) == (passes, (model_side, model_side), (10 * factor, 10 * factor))
