"""Same inputs, same pixels: sdrest against sd.cpp's own CLI built from the same source."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import sdrest
from sdrest.models.gguf import read_gguf

SIZE = 64
THREADS = 2
PROMPT = "a lovely cat"
NEGATIVE = "blurry"


def run_cli(sd_cli: Path, out: Path, *args: str) -> Image.Image:
    """Run sd.cpp's CLI; return the image it wrote."""
    cmd = [str(sd_cli), "-t", str(THREADS), "-o", str(out), *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"sd-cli failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    with Image.open(out) as image:
        return image.convert("RGB")


def gguf_tensors(path: Path) -> dict[str, tuple[str, tuple[int, ...], bytes]]:
    """name -> (ggml type, shape, data bytes) of a GGUF file."""
    table = read_gguf(path)
    out = {}
    with path.open("rb") as f:
        for info in table.tensors.values():
            f.seek(info.offset)
            out[info.name] = (info.dtype, info.shape, f.read(info.nbytes))
    return out


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"))


def assert_same_pixels(ours: Image.Image, theirs: Image.Image) -> None:
    a, b = pixels(ours), pixels(theirs)
    assert a.shape == b.shape
    diff = np.abs(a.astype(int) - b.astype(int))
    assert diff.max() == 0, f"{np.count_nonzero(diff)} of {diff.size} values differ, max by {diff.max()}"
    assert a.std() > 0, "the image is flat: the comparison would prove nothing"


@pytest.fixture(scope="module")
def init_image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A deterministic, non-trivial RGB image."""
    rng = np.random.default_rng(7)
    gradient = np.linspace(0, 255, SIZE, dtype=np.float32)
    array = np.stack([np.add.outer(gradient, gradient) / 2, np.tile(gradient, (SIZE, 1)),
                      rng.uniform(0, 255, (SIZE, SIZE))], axis=-1).astype(np.uint8)
    path = tmp_path_factory.mktemp("inputs") / "init.png"
    Image.fromarray(array).save(path)
    return path


@pytest.fixture(scope="module")
def mask_image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Repaint the right half."""
    array = np.zeros((SIZE, SIZE), dtype=np.uint8)
    array[:, SIZE // 2:] = 255
    path = tmp_path_factory.mktemp("inputs") / "mask.png"
    Image.fromarray(array, mode="L").save(path)
    return path


@pytest.mark.parametrize("sampler,scheduler", [("euler_a", None), ("euler", "karras"), ("dpm++2m", None)])
def test_txt2img_matches_cli(sd1: sdrest.StableDiffusion, sd1_path: Path, sd_cli: Path, tmp_path: Path,
                             sampler: str, scheduler: str | None) -> None:
    extra = ["--scheduler", scheduler] if scheduler else []
    theirs = run_cli(sd_cli, tmp_path / "cli.png", "-m", str(sd1_path), "-p", PROMPT, "-n", NEGATIVE,
                     "-W", str(SIZE), "-H", str(SIZE), "--steps", "2", "-s", "42",
                     "--sampling-method", sampler, *extra)
    ours = sd1.txt2img(PROMPT, negative_prompt=NEGATIVE, width=SIZE, height=SIZE, steps=2, seed=42,
                       sampler=sampler, scheduler=scheduler)
    assert ours.seeds == [42]
    assert_same_pixels(ours.images[0], theirs)


def test_img2img_matches_cli(sd1: sdrest.StableDiffusion, sd1_path: Path, sd_cli: Path, tmp_path: Path,
                             init_image: Path) -> None:
    theirs = run_cli(sd_cli, tmp_path / "cli.png", "-m", str(sd1_path), "-p", PROMPT, "-i", str(init_image),
                     "--strength", "0.6", "--steps", "3", "-s", "5")
    ours = sd1.img2img(Image.open(init_image), PROMPT, strength=0.6, steps=3, seed=5)
    assert_same_pixels(ours.images[0], theirs)


def test_inpaint_matches_cli(sd1: sdrest.StableDiffusion, sd1_path: Path, sd_cli: Path, tmp_path: Path,
                             init_image: Path, mask_image: Path) -> None:
    theirs = run_cli(sd_cli, tmp_path / "cli.png", "-m", str(sd1_path), "-p", PROMPT, "-i", str(init_image),
                     "--mask", str(mask_image), "--strength", "0.8", "--steps", "2", "-s", "9")
    ours = sd1.img2img(Image.open(init_image), PROMPT, mask=Image.open(mask_image), strength=0.8, steps=2, seed=9)
    assert_same_pixels(ours.images[0], theirs)


def test_lora_matches_cli(sd1: sdrest.StableDiffusion, sd1_path: Path, lora_path: Path, sd_cli: Path,
                          tmp_path: Path) -> None:
    theirs = run_cli(sd_cli, tmp_path / "cli.png", "-m", str(sd1_path), "--lora-model-dir", str(lora_path.parent),
                     "-p", f"{PROMPT}<lora:{lora_path.stem}:0.8>", "-W", str(SIZE), "-H", str(SIZE),
                     "--steps", "2", "-s", "3")
    ours = sd1.txt2img(PROMPT, loras=[sdrest.LoRA(lora_path, 0.8)], width=SIZE, height=SIZE, steps=2, seed=3)
    assert_same_pixels(ours.images[0], theirs)
    plain = sd1.txt2img(PROMPT, width=SIZE, height=SIZE, steps=2, seed=3)
    assert not np.array_equal(pixels(plain.images[0]), pixels(ours.images[0])), "the LoRA changed nothing"


def test_upscale_matches_cli(esrgan_path: Path, sd_cli: Path, tmp_path: Path, init_image: Path) -> None:
    theirs = run_cli(sd_cli, tmp_path / "cli.png", "-M", "upscale", "--upscale-model", str(esrgan_path),
                     "-i", str(init_image))
    with sdrest.Upscaler(esrgan_path) as upscaler:
        ours = upscaler.upscale(Image.open(init_image))
    assert ours.size == (SIZE * 4, SIZE * 4)
    assert_same_pixels(ours, theirs)


@pytest.mark.parametrize("weight_type", ["q8_0", "q4_0"])  # q4_K and f16: tests/test_convert_cli.py (the VAE)
def test_convert_matches_cli(sd1_path: Path, sd_cli: Path, tmp_path: Path, weight_type: str) -> None:
    cli_out = tmp_path / "cli.gguf"
    done = subprocess.run([str(sd_cli), "-M", "convert", "-m", str(sd1_path), "-o", str(cli_out),
                           "--type", weight_type], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    ours = sdrest.convert(sd1_path, tmp_path / "ours.gguf", type=weight_type)
    theirs_tensors = gguf_tensors(cli_out)
    our_tensors = gguf_tensors(ours)
    assert set(our_tensors) == set(theirs_tensors)
    assert len(our_tensors) > 1000
    types = set()
    for name, (ggml_type, shape, data) in our_tensors.items():
        assert (ggml_type, shape) == theirs_tensors[name][:2], name
        assert data == theirs_tensors[name][2], f"{name}: bytes differ"
        types.add(ggml_type)
    assert weight_type in types
