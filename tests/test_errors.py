"""Bad inputs: clear exceptions naming the argument, raised before native work; never a crash."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import sdrest

SIZE = 64


def run_isolated(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter; the test then asserts it did not die by a signal."""
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300,
                          env=env)


def assert_no_signal(done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode >= 0, f"died by signal {signal.Signals(-done.returncode).name}:\n{done.stderr[-3000:]}"


@pytest.fixture(scope="module")
def truncated(sd1_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bad") / "truncated.safetensors"
    with sd1_path.open("rb") as src, path.open("wb") as dst:
        dst.write(src.read(50_000_000))
    return path


@pytest.fixture(scope="module")
def garbage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bad") / "garbage.safetensors"
    path.write_bytes(np.random.default_rng(1).integers(0, 255, 100_000, dtype=np.uint8).tobytes())
    return path


def test_missing_file_raises_at_construction() -> None:
    with pytest.raises(FileNotFoundError, match="model: no such file"):
        sdrest.StableDiffusion("/nonexistent/model.safetensors")
    with pytest.raises(FileNotFoundError, match="vae: no such file"):
        sdrest.StableDiffusion(__file__, vae="/nonexistent/vae.safetensors")


def test_no_model_at_all() -> None:
    with pytest.raises(ValueError, match="model"):
        sdrest.StableDiffusion()


def test_unknown_context_option() -> None:
    with pytest.raises(TypeError, match="'flash_attention'"):
        sdrest.StableDiffusion(__file__, flash_attention=True)


@pytest.mark.parametrize("name", ["truncated", "garbage"])
def test_bad_model_files_raise_in_a_subprocess_that_survives(name: str, request: pytest.FixtureRequest,
                                                             child_env: dict[str, str]) -> None:
    path = request.getfixturevalue(name)
    done = run_isolated(f"""
        import sdrest
        try:
            sdrest.StableDiffusion({str(path)!r})
        except sdrest.NativeError as exc:
            print("NativeError:", str(exc).splitlines()[0])
    """, child_env)
    assert_no_signal(done)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith("NativeError: could not create the stable-diffusion context")


def test_error_carries_sd_cpp_lines(garbage: Path) -> None:
    with pytest.raises(sdrest.NativeError, match="sd.cpp said") as info:
        sdrest.StableDiffusion(garbage)
    assert str(garbage) in str(info.value)


def test_wrong_companion_raises(sd1_path: Path, wrong_vae_path: Path, child_env: dict[str, str]) -> None:
    done = run_isolated(f"""
        import sdrest
        try:
            sd = sdrest.StableDiffusion({str(sd1_path)!r}, vae={str(wrong_vae_path)!r})
            sd.txt2img("x", width=64, height=64, steps=1)
            print("no error")
        except sdrest.NativeError as exc:
            print("NativeError")
    """, child_env)
    assert_no_signal(done)
    assert done.stdout.strip() == "NativeError", done.stdout + done.stderr[-2000:]


def test_bad_esrgan_file_raises(garbage: Path) -> None:
    with pytest.raises(sdrest.NativeError, match="could not load the upscaler"):
        sdrest.Upscaler(garbage)


@pytest.mark.parametrize("kwargs,error,match", [
    ({"width": 100}, ValueError, "width: must be a multiple of 8"),
    ({"height": 100_000}, ValueError, "height: must be between"),
    ({"width": 0}, ValueError, "width"),
    ({"steps": 0}, ValueError, "steps"),
    ({"steps": 10**6}, ValueError, "steps"),
    ({"batch_count": 10_000}, ValueError, "batch_count"),
    ({"sampler": "euler_b"}, ValueError, "unknown sampler 'euler_b'; expected one of: euler, euler_a"),
    ({"scheduler": "fancy"}, ValueError, "scheduler"),
    ({"cfg_scale": float("nan")}, ValueError, "cfg_scale"),
    ({"steps": "20"}, TypeError, "steps: expected an integer"),
    ({"seed": 1.5}, TypeError, "seed"),
    ({"loras": ["/nonexistent/lora.safetensors"]}, FileNotFoundError, r"loras\[0\]"),
    ({"control_image": "not an image"}, TypeError, "control_image"),
    ({"progress": 3}, TypeError, "progress"),
    ({"cancel": True}, TypeError, "cancel"),
    ({"no_such_option": 1}, TypeError, "no_such_option"),
])
def test_invalid_txt2img_arguments(sd1: sdrest.StableDiffusion, kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        sd1.txt2img("a cat", **kwargs)


def test_invalid_img2img_arguments(sd1: sdrest.StableDiffusion) -> None:
    image = Image.new("RGB", (SIZE, SIZE))
    with pytest.raises(ValueError, match="strength"):
        sd1.img2img(image, "a cat", strength=1.5)
    with pytest.raises(ValueError, match="mask: size"):
        sd1.img2img(image, "a cat", mask=Image.new("L", (32, 32)))
    with pytest.raises(TypeError, match="image: expected uint8"):
        sd1.img2img(np.zeros((SIZE, SIZE, 3), dtype=np.float32), "a cat")
    with pytest.raises(ValueError, match="image: expected H x W x 3"):
        sd1.img2img(np.zeros((SIZE, SIZE), dtype=np.uint8), "a cat")
    with pytest.raises(TypeError, match="prompt"):
        sd1.img2img(image, None)  # type: ignore[arg-type]


def test_convert_refuses_bad_arguments(tmp_path: Path, sd1_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown type 'q9_9'"):
        sdrest.convert(sd1_path, tmp_path / "x.gguf", type="q9_9")
    with pytest.raises(FileNotFoundError, match="src"):
        sdrest.convert(tmp_path / "missing.safetensors", tmp_path / "x.gguf")
    with pytest.raises(FileNotFoundError, match="dst"):
        sdrest.convert(sd1_path, tmp_path / "no" / "x.gguf")


def test_convert_of_garbage_fails_and_leaves_nothing(tmp_path: Path, garbage: Path) -> None:
    target = tmp_path / "out.gguf"
    with pytest.raises(sdrest.NativeError, match="converting"):
        sdrest.convert(garbage, target, type="q8_0")
    assert list(tmp_path.iterdir()) == []


def test_use_after_close_raises(sd1_path: Path) -> None:
    sd = sdrest.StableDiffusion(sd1_path)
    sd.close()
    sd.close()
    with pytest.raises(ValueError, match="closed"):
        sd.txt2img("a cat")
