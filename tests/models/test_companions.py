"""Companion resolution: a model plus the files of its folder that complete it."""

from __future__ import annotations

from pathlib import Path

import pytest

from sdrest.models.companions import resolve
from sdrest.models.registry import Registry
from sdrest.testing.signatures import SIGNATURES, bare
from sdrest.testing.headers import write_safetensors


@pytest.fixture
def registry(models_dir: Path) -> Registry:
    reg = Registry(models_dir)
    reg.scan()
    return reg


def test_flux_gets_a_complete_set(registry: Registry) -> None:
    cs = resolve(registry, "flux1-dev-q8_0")
    assert cs.complete
    assert {role: e.id for role, e in cs.files.items()} == {
        "vae": "vae/ae",
        "clip_l": "text_encoders/clip/clip_l",
        "t5xxl": "text_encoders/t5xxl/t5xxl_fp16",  # T5, not the UMT5 next to it
    }
    assert cs.alternatives == {"vae": ["flat-flux-vae"]}
    params = cs.sd_params()
    assert params["diffusion_model_path"].endswith("flux1-dev-q8_0.gguf")
    assert set(params) == {"diffusion_model_path", "vae_path", "clip_l_path", "t5xxl_path"}


def test_sdxl_checkpoint_needs_nothing(registry: Registry) -> None:
    cs = resolve(registry, "checkpoints/sd_xl_base_1.0")
    assert cs.complete and cs.files == {}
    assert sorted(cs.contained) == ["clip_g", "clip_l", "vae"]
    assert set(cs.sd_params()) == {"model_path"}


def test_missing_is_listed(registry: Registry) -> None:
    cs = resolve(registry, "qwen-image")
    assert cs.files["vae"].id == "vae/qwen_image_vae"
    assert cs.missing == ["llm"]  # no Qwen2.5-VL in the folder
    assert cs.optional_missing == ["llm_vision"]
    assert not cs.complete
    assert cs.to_dict()["missing"] == ["llm"]


def test_llm_of_the_right_size_is_preferred(registry: Registry) -> None:
    cs = resolve(registry, "z_image_turbo-q4_0")
    assert cs.complete
    assert cs.files["llm"].id == "text_encoders/llm/qwen_3_4b"
    assert cs.files["vae"].id in ("vae/ae", "flat-flux-vae")


def test_wan22_low_noise_finds_its_high_noise_twin(registry: Registry) -> None:
    root = registry.root / "diffusion_models"
    for name in ("Wan2.2-T2V-A14B-LowNoise-Q8_0", "Wan2.2-T2V-A14B-HighNoise-Q8_0"):
        write_safetensors(root / f"{name}.safetensors", bare(SIGNATURES["Wan 2.2 I2V"]))
    registry.scan()
    cs = resolve(registry, "Wan2.2-T2V-A14B-LowNoise-Q8_0")
    assert cs.files["high_noise_diffusion_model"].id == "diffusion_models/Wan2.2-T2V-A14B-HighNoise-Q8_0"
    assert cs.files["t5xxl"].id == "text_encoders/t5xxl/umt5-xxl-encoder-Q8_0"
    assert cs.files["vae"].id == "vae/qwen_image_vae"
    assert cs.complete


def test_not_a_model(registry: Registry) -> None:
    with pytest.raises(ValueError, match="lora"):
        resolve(registry, "lora/marblesh")
    with pytest.raises(KeyError):
        resolve(registry, "no-such-model")
