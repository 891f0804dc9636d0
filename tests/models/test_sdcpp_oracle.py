"""detect() against stable-diffusion.cpp's own verdict, through the native build as the oracle.

For every entry of sd.cpp's version enum a header-only file with that version's
signature tensors is written, as safetensors and as GGUF (and, for DiT models,
also in the standalone form without the ``model.diffusion_model.`` prefix);
``detect()`` must name exactly what sd.cpp's loader detects on the same file.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from sdrest import _native
from sdrest.models import detect
from sdrest.models import sdversion as V
from sdrest.models.reader import read_tensors
from sdrest.testing.signatures import DM, SIGNATURES, UNET_FAMILY, bare, gguf_shapes, gguf_types
from sdrest.testing.headers import write_gguf, write_safetensors, write_torch_legacy, write_torch_zip


def oracle(path: Path, prefix: str) -> str | None:
    """sd.cpp's version for this file loaded with this prefix."""
    return _native.detect_model_version(str(path), prefix)


def assert_parity(path: Path) -> None:
    """Our port of get_sd_version agrees with sd.cpp's for both load paths."""
    table = read_tensors(path)
    for prefix in ("", DM):
        assert V.get_sd_version(V.sdcpp_tensors(table, prefix)) == oracle(path, prefix), (path.name, prefix)


def assert_detect_agrees(path: Path, expected: str) -> None:
    info = detect(path)
    assert info.error is None, info.error
    assert info.architecture == expected
    assert info.kind in ("checkpoint", "diffusion_model")
    assert info.load_as in ("model", "diffusion_model")
    assert oracle(path, "" if info.load_as == "model" else DM) == expected
    assert_parity(path)


def test_version_table_is_sdcpps() -> None:
    assert list(V.VERSION_NAMES) == _native.model_version_names()


def test_every_version_has_a_signature() -> None:
    assert sorted(SIGNATURES) == sorted(_native.model_version_names())


@pytest.mark.parametrize("version", list(SIGNATURES))
def test_safetensors_checkpoint(tmp_path: Path, version: str) -> None:
    path = tmp_path / "model.safetensors"
    write_safetensors(path, SIGNATURES[version])
    assert_detect_agrees(path, version)
    assert detect(path).load_as == "model"


@pytest.mark.parametrize("version", list(SIGNATURES))
def test_gguf_checkpoint(tmp_path: Path, version: str) -> None:
    path = tmp_path / "model.gguf"
    write_gguf(path, gguf_types(gguf_shapes(SIGNATURES[version])))
    assert_detect_agrees(path, version)
    assert detect(path).load_as == "model"


@pytest.mark.parametrize("version", sorted(set(SIGNATURES) - UNET_FAMILY))
@pytest.mark.parametrize("fmt", ["safetensors", "gguf"])
def test_standalone_diffusion_model(tmp_path: Path, version: str, fmt: str) -> None:
    path = tmp_path / f"dm.{fmt}"
    specs = bare(SIGNATURES[version])
    if fmt == "gguf":
        write_gguf(path, gguf_types(gguf_shapes(specs)))
    else:
        write_safetensors(path, specs)
    assert_detect_agrees(path, version)
    info = detect(path)
    assert info.load_as == "diffusion_model"
    assert info.kind == "diffusion_model"


@pytest.mark.parametrize("version", ["SD 1.x", "SD 2.x Inpaint", "SDXL", "SDXS (09)"])
@pytest.mark.parametrize("container", ["zip", "legacy"])
def test_torch_checkpoint(tmp_path: Path, version: str, container: str) -> None:
    path = tmp_path / "model.ckpt"
    if container == "zip":
        write_torch_zip(path, SIGNATURES[version], dtype="f16")
    else:
        write_torch_legacy(path, SIGNATURES[version], dtype="f16")
    assert_detect_agrees(path, version)
    assert detect(path).format == ("torch_zip" if container == "zip" else "torch_legacy")


def test_standalone_unet_is_undetectable_for_both(tmp_path: Path) -> None:
    """A UNet without its text encoder: sd.cpp detects nothing, and detect() says so."""
    path = tmp_path / "unet.safetensors"
    write_safetensors(path, bare([s for s in SIGNATURES["SDXL"] if s[0].startswith(DM)]))
    assert oracle(path, "") is None and oracle(path, DM) is None
    info = detect(path)
    assert info.architecture is None
    assert info.kind == "diffusion_model"
    assert info.details["family"] == "SDXL"
    assert info.warnings
    assert_parity(path)


def test_wan_5d_patch_embedding_is_folded_like_sdcpp(tmp_path: Path) -> None:
    """safetensors keeps Wan's 5-D conv; sd.cpp folds its two outer dims, so must we."""
    path = tmp_path / "wan.safetensors"
    write_safetensors(path, bare(SIGNATURES["Wan 2.2 I2V"]))
    table = read_tensors(path)
    assert table.tensors["patch_embedding.weight"].shape == (5120, 36, 1, 2, 2)
    assert table.tensors["patch_embedding.weight"].ne[3] == 5120 * 36
    assert_detect_agrees(path, "Wan 2.2 I2V")


def _random_case(rng: random.Random) -> list[tuple[str, tuple[int, ...]]]:
    pool: dict[str, tuple[int, ...]] = {}
    for specs in SIGNATURES.values():
        for name, shape in specs:
            pool[name] = shape
    names = rng.sample(sorted(pool), rng.randint(1, 9))
    out = []
    for name in names:
        shape = pool[name]
        if name.endswith(("input_blocks.0.0.weight", "img_in.weight")):
            shape = (
                (320, rng.choice([4, 8, 9]), 3, 3)
                if "input_blocks" in name
                else (3072, rng.choice([64, 128, 196, 384]))
            )
        if rng.random() < 0.3:
            name = name.removeprefix(DM)
        out.append((name, shape))
    return out


@pytest.mark.parametrize("seed", range(60))
def test_random_tensor_maps_agree(tmp_path: Path, seed: int) -> None:
    """Mixed signatures (several early returns in one file, any order): same verdict as sd.cpp."""
    rng = random.Random(seed)
    specs = _random_case(rng)
    st = tmp_path / "r.safetensors"
    gg = tmp_path / "r.gguf"
    write_safetensors(st, specs)
    rng.shuffle(specs)  # GGUF keeps file order, so the order of checks matters here
    write_gguf(gg, gguf_types(gguf_shapes(specs)))
    assert_parity(st)
    assert_parity(gg)


def _diffusers(folder: Path, *, xl: bool, in_channels: int = 4) -> None:
    (folder / "unet").mkdir(parents=True)
    (folder / "vae").mkdir()
    (folder / "text_encoder").mkdir()
    write_safetensors(
        folder / "unet" / "diffusion_pytorch_model.safetensors",
        [
            ("conv_in.weight", (320, in_channels, 3, 3)),
            ("down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k.weight", (640, 2048 if xl else 768)),
            ("mid_block.resnets.1.conv1.weight", (1280, 1280, 3, 3)),
            ("up_blocks.1.attentions.0.transformer_blocks.1.attn1.to_k.weight", (1280, 1280)),
            ("up_blocks.2.attentions.1.proj_in.weight", (640, 640)),
        ],
    )
    write_safetensors(
        folder / "vae" / "diffusion_pytorch_model.safetensors",
        [("decoder.conv_in.weight", (512, 4, 3, 3)), ("decoder.mid_block.resnets.0.conv1.weight", (512, 512, 3, 3))],
    )
    write_safetensors(
        folder / "text_encoder" / "model.safetensors", [("text_model.embeddings.token_embedding.weight", (49408, 768))]
    )
    if xl:
        (folder / "text_encoder_2").mkdir()
        write_safetensors(
            folder / "text_encoder_2" / "model.safetensors",
            [("text_model.embeddings.token_embedding.weight", (49408, 1280))],
        )
    (folder / "model_index.json").write_text("{}")


@pytest.mark.parametrize(
    ("xl", "in_channels", "expected"), [(False, 4, "SD 1.x"), (False, 9, "SD 1.x Inpaint"), (True, 4, "SDXL")]
)
def test_diffusers_folder(tmp_path: Path, xl: bool, in_channels: int, expected: str) -> None:
    folder = tmp_path / "pipeline"
    _diffusers(folder, xl=xl, in_channels=in_channels)
    assert_detect_agrees(folder, expected)
    info = detect(folder)
    assert info.format == "diffusers"
    assert info.kind == "checkpoint"
    assert not info.missing_companions


@pytest.mark.parametrize("version", ["Flux", "Flux Fill", "Wan 2.2 I2V", "Qwen Image", "Z-Image"])
def test_comfy_style_diffusion_model_prefix(tmp_path: Path, version: str) -> None:
    """``diffusion_model.*`` names: sd.cpp's verdict as a diffusion model is the version, but only the
    model_path route renames them (``convert_tensor_name``'s prefix map), so that is the load path."""
    path = tmp_path / "dm.safetensors"
    write_safetensors(path, [("diffusion_model." + n, s) for n, s in bare(SIGNATURES[version])])
    info = detect(path)
    assert (info.architecture, info.load_as, info.kind) == (version, "model", "diffusion_model")
    assert info.warnings
    if version != "Flux Fill":  # its exact img_in name is only seen after the renaming
        assert oracle(path, DM) == version
    assert_parity(path)
