"""Video generation with the Wan family: a random-weight Wan2.1 T2V 1.3B set.

The set (``synthetic.wan_diffusion_model``, ``umt5_encoder``, ``wan_vae``) is full size,
since sd.cpp fixes the Wan widths, the umt5-xxl and the VAE: ~4.3 GB on disk, written once
into the synthetic cache, the big linear weights ggml Q4_0.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import sdrest
from sdrest.testing import synthetic

SIZE = 64
FRAMES = 1  # Wan: (frames - 1) / 4 + 1 latent frames; 1 frame is one latent frame
PROMPT = "a cat walking"


@pytest.fixture(scope="session")
def wan_paths() -> dict[str, Path]:
    """The random-weight Wan video set: diffusion model, umt5-xxl text encoder, VAE."""
    return {name: fn(None) for name, fn in synthetic.WAN_GENERATORS.items()}


@pytest.fixture(scope="session")
def wan(wan_paths: dict[str, Path]) -> Iterator[sdrest.StableDiffusion]:
    with sdrest.StableDiffusion(diffusion_model=wan_paths["wan_diffusion_model"], t5xxl=wan_paths["umt5_encoder"],
                                vae=wan_paths["wan_vae"]) as sd:
        yield sd


STEPS = 2
SEED = 42


def _generate(sd: sdrest.StableDiffusion, **kw: object) -> sdrest.GenerationResult:
    args: dict[str, object] = {"width": SIZE, "height": SIZE, "video_frames": FRAMES, "steps": STEPS,
                               "seed": SEED, "cfg_scale": 1.0}
    args.update(kw)
    return sd.generate_video(PROMPT, **args)  # type: ignore[arg-type]


def _pixels(frames: list[Image.Image]) -> np.ndarray:
    return np.stack([np.asarray(f.convert("RGB")) for f in frames])


# Each generation costs ~60 s on 2 CPU cores, nearly all of it the umt5-xxl encoding 512 tokens
# (sd.cpp pads Wan prompts to 512), so the tests share generations: one run cancelled from its
# progress callback, then the reference video in the same context (with its progress events),
# then one sd-cli run in a fresh process that the reference must match pixel for pixel; so a
# cancel leaves no trace on the next generation.


@pytest.fixture(scope="module")
def cancelled_steps(wan: sdrest.StableDiffusion) -> list[int]:
    """The steps reported by a generation cancelled from its first progress event."""
    steps: list[int] = []

    def on_progress(event: sdrest.Progress) -> None:
        steps.append(event.step)
        wan.cancel()

    with pytest.raises(sdrest.Cancelled):
        _generate(wan, progress=on_progress)
    return steps


@pytest.fixture(scope="module")
def reference(wan: sdrest.StableDiffusion,
              cancelled_steps: list[int]) -> tuple[sdrest.GenerationResult, list[sdrest.Progress]]:
    """The reference video, generated after the cancelled run in the same context."""
    events: list[sdrest.Progress] = []
    return _generate(wan, progress=events.append), events


def test_wan_supports_video(wan: sdrest.StableDiffusion) -> None:
    assert wan.supports_video is True


def test_generate_video_frames(reference: tuple[sdrest.GenerationResult, list[sdrest.Progress]]) -> None:
    result, _ = reference
    assert len(result.images) == FRAMES
    assert result.seeds == [SEED] * FRAMES
    px = _pixels(result.images)
    assert px.shape == (FRAMES, SIZE, SIZE, 3)
    for frame in px.astype(np.float64):
        assert np.isfinite(frame).all()
        assert frame.std() > 1.0  # not constant


def test_progress_events_in_order(reference: tuple[sdrest.GenerationResult, list[sdrest.Progress]]) -> None:
    _, events = reference
    sampling = [e for e in events if e.phase == "sampling"]
    assert [e.step for e in sampling] == list(range(1, STEPS + 1))
    assert all(e.steps == STEPS for e in sampling)


def test_cancel_from_progress_callback(cancelled_steps: list[int]) -> None:
    assert cancelled_steps and max(cancelled_steps) < STEPS


def test_parity_with_sd_cli_after_a_cancel(wan: sdrest.StableDiffusion, wan_paths: dict[str, Path], sd_cli: Path,
                                           reference: tuple[sdrest.GenerationResult, list[sdrest.Progress]],
                                           tmp_path: Path) -> None:
    out = tmp_path / "frame_%03d.png"
    proc = subprocess.run(
        [str(sd_cli), "-M", "vid_gen", "--diffusion-model", str(wan_paths["wan_diffusion_model"]),
         "--t5xxl", str(wan_paths["umt5_encoder"]), "--vae", str(wan_paths["wan_vae"]),
         "-t", str(wan.n_threads), "-W", str(SIZE), "-H", str(SIZE), "--video-frames", str(FRAMES),
         "--steps", str(STEPS), "--seed", str(SEED), "--cfg-scale", "1", "-p", PROMPT, "-o", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout.decode(errors="replace")[-3000:]
    files = sorted(tmp_path.glob("frame_*.png"))
    assert len(files) == FRAMES
    theirs = np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files])
    assert np.array_equal(_pixels(reference[0].images), theirs)
