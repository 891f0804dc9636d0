"""Feature by feature: ``sdrest generate FLAGS`` and ``sd-cli FLAGS`` make the same pixels.

Each case runs sd.cpp's own CLI (built from the same source) as a subprocess and
``sdrest generate`` with the same command line, and compares every image exactly.
``sdrest generate`` runs in this process through the command's own entry point
(parse the command line, plan, generate, write the files), with a :class:`ContextCache`
so that cases with the same model settings load the model once; the subprocess path of
the command is exercised by tests/test_generate_cli.py.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sdrest.cli import build_parser
from sdrest.generate_cli import ContextCache, generate

SIZE = 64
THREADS = 2
PROMPT = "a lovely cat"


@pytest.fixture(scope="module")
def contexts() -> Iterator[ContextCache]:
    cache = ContextCache()
    yield cache
    cache.close()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A deterministic, non-trivial init image, a mask (right half) and a control image."""
    folder = tmp_path_factory.mktemp("inputs")
    rng = np.random.default_rng(7)
    gradient = np.linspace(0, 255, SIZE, dtype=np.float32)
    array = np.stack([np.add.outer(gradient, gradient) / 2, np.tile(gradient, (SIZE, 1)),
                      rng.uniform(0, 255, (SIZE, SIZE))], axis=-1).astype(np.uint8)
    Image.fromarray(array).save(folder / "init.png")
    mask = np.zeros((SIZE, SIZE), dtype=np.uint8)
    mask[:, SIZE // 2:] = 255
    Image.fromarray(mask, mode="L").save(folder / "mask.png")
    control = np.zeros((SIZE, SIZE, 3), dtype=np.uint8)
    control[16:48, 16:48] = 255
    Image.fromarray(control).save(folder / "control.png")
    return {"init": folder / "init.png", "mask": folder / "mask.png", "control": folder / "control.png"}


def run_sd_cli(sd_cli: Path, flags: list[str], out: Path) -> None:
    done = subprocess.run([str(sd_cli), *flags, "-o", str(out)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"sd-cli failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


def run_sdrest(flags: list[str], out: Path, contexts: ContextCache | None) -> None:
    args = build_parser().parse_args(["generate", *flags, "-o", str(out), "-q"])
    assert generate(args, contexts=contexts) == 0


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def compare(sd_cli: Path, tmp_path: Path, flags: list[str], contexts: ContextCache | None,
            names: tuple[str, ...] = ("{}.png",)) -> list[np.ndarray]:
    """Run both; assert every image is identical (and not flat); return our images."""
    run_sd_cli(sd_cli, flags, tmp_path / "cli.png")
    run_sdrest(flags, tmp_path / "ours.png", contexts)
    ours = []
    for name in names:
        theirs_px, ours_px = pixels(tmp_path / name.format("cli")), pixels(tmp_path / name.format("ours"))
        assert ours_px.shape == theirs_px.shape
        diff = np.abs(ours_px.astype(int) - theirs_px.astype(int))
        assert diff.max() == 0, f"{name}: {np.count_nonzero(diff)} of {diff.size} values differ, max by {diff.max()}"
        assert ours_px.std() > 0, "a flat image: the comparison would prove nothing"
        ours.append(ours_px)
    return ours


@pytest.fixture(scope="module")
def base(sd1_path: Path) -> list[str]:
    return ["-m", str(sd1_path), "-p", PROMPT, "-n", "blurry", "-W", str(SIZE), "-H", str(SIZE), "-t", str(THREADS),
            "--steps", "1", "-s", "42"]


@pytest.fixture(scope="module")
def reference(base: list[str], contexts: ContextCache, tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    """Our plain txt2img of the base flags (euler_a): what a feature's image must differ from."""
    out = tmp_path_factory.mktemp("reference") / "plain.png"
    run_sdrest(base, out, contexts)
    return pixels(out)


@pytest.mark.parametrize("sampler,scheduler,steps", [("euler_a", None, 1), ("euler", "karras", 2),
                                                     ("dpm++2m", "discrete", 2)])
def test_txt2img_samplers_and_schedulers(sd_cli: Path, tmp_path: Path, base: list[str], contexts: ContextCache,
                                         sampler: str, scheduler: str | None, steps: int) -> None:
    flags = [*base, "--sampling-method", sampler, "--steps", str(steps)]
    compare(sd_cli, tmp_path, flags + (["--scheduler", scheduler] if scheduler else []), contexts)


def test_batch_of_two(sd_cli: Path, tmp_path: Path, base: list[str], contexts: ContextCache,
                      reference: np.ndarray) -> None:
    first, second = compare(sd_cli, tmp_path, [*base, "-b", "2"], contexts, names=("{}_0.png", "{}_1.png"))
    assert np.array_equal(first, reference), "image 0 of a batch is the single image of the same seed"
    assert not np.array_equal(first, second)


def test_img2img(sd_cli: Path, tmp_path: Path, base: list[str], contexts: ContextCache,
                 inputs: dict[str, Path]) -> None:
    compare(sd_cli, tmp_path, [*base, "-i", str(inputs["init"]), "--strength", "0.6", "--steps", "2"], contexts)


def test_inpaint(sd_cli: Path, tmp_path: Path, base: list[str], contexts: ContextCache,
                 inputs: dict[str, Path]) -> None:
    [ours] = compare(sd_cli, tmp_path, [*base, "-i", str(inputs["init"]), "--mask", str(inputs["mask"]),
                                        "--strength", "0.8", "--steps", "2"], contexts)
    init = pixels(inputs["init"])
    assert not np.array_equal(ours[:, SIZE // 2:], init[:, SIZE // 2:]), "the masked half was repainted"


def test_skip_layer_guidance(sd_cli: Path, tmp_path: Path, base: list[str], contexts: ContextCache) -> None:
    compare(sd_cli, tmp_path, [*base, "--slg-scale", "2.5", "--skip-layers", "[1,2]", "--skip-layer-start", "0",
                               "--skip-layer-end", "1"], contexts)


def test_custom_sigmas(sd_cli: Path, tmp_path: Path, base: list[str], contexts: ContextCache,
                       reference: np.ndarray) -> None:
    [ours] = compare(sd_cli, tmp_path, [*base, "--sigmas", "14.6,3.5,0.0"], contexts)
    assert not np.array_equal(ours, reference)


@pytest.mark.parametrize("mode,option", [("ucache", "threshold=1000,start=0,end=1"),
                                         ("spectrum", "warmup=1,stop=1")])
def test_cache_modes_for_unet(sd_cli: Path, tmp_path: Path, base: list[str], contexts: ContextCache,
                              mode: str, option: str) -> None:
    flags = [*base, "--steps", "4", "--sampling-method", "euler"]
    [cached] = compare(sd_cli, tmp_path, [*flags, "--cache-mode", mode, "--cache-option", option], contexts)
    run_sdrest(flags, tmp_path / "uncached.png", contexts)
    assert not np.array_equal(cached, pixels(tmp_path / "uncached.png")), f"{mode} skipped no step"


def test_vae_tiling(sd_cli: Path, tmp_path: Path, base: list[str], contexts: ContextCache,
                    reference: np.ndarray) -> None:
    [ours] = compare(sd_cli, tmp_path, [*base, "--vae-tiling", "--vae-tile-size", "4x4"], contexts)
    assert not np.array_equal(ours, reference), "tiling changed nothing: the tiles covered the whole image"


def test_hires_fix(sd_cli: Path, tmp_path: Path, base: list[str], contexts: ContextCache) -> None:
    # sd.cpp aligns the target up to a multiple of 64 for SD1 (the UNet's), so 80 gives 128.
    [ours] = compare(sd_cli, tmp_path, [*base, "--hires", "--hires-width", "80", "--hires-height", "80",
                                        "--hires-steps", "1"], contexts)
    assert ours.shape == (128, 128, 3)


def test_taesd(sd_cli: Path, tmp_path: Path, base: list[str], contexts: ContextCache, taesd_path: Path,
               reference: np.ndarray) -> None:
    [ours] = compare(sd_cli, tmp_path, [*base, "--taesd", str(taesd_path)], contexts)
    assert not np.array_equal(ours, reference)


def test_rng_cpu(sd_cli: Path, tmp_path: Path, base: list[str], contexts: ContextCache,
                 reference: np.ndarray) -> None:
    [ours] = compare(sd_cli, tmp_path, [*base, "--rng", "cpu"], contexts)
    assert not np.array_equal(ours, reference)


def test_controlnet_with_canny(sd_cli: Path, tmp_path: Path, base: list[str], contexts: ContextCache,
                               controlnet_path: Path, inputs: dict[str, Path]) -> None:
    compare(sd_cli, tmp_path, [*base, "--control-net", str(controlnet_path), "--control-image",
                               str(inputs["control"]), "--canny", "--control-strength", "0.7"], contexts)


def test_lora_from_the_prompt(sd_cli: Path, tmp_path: Path, base: list[str], lora_path: Path,
                              reference: np.ndarray) -> None:
    flags = [*base, "--lora-model-dir", str(lora_path.parent), "-p", f"{PROMPT}<lora:{lora_path.stem}:0.8>"]
    # A fresh model: a LoRA applied to the weights should not carry over into the cached context's other cases.
    [ours] = compare(sd_cli, tmp_path, flags, None)
    assert not np.array_equal(ours, reference), "the LoRA changed nothing"
