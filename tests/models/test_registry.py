"""The models-dir registry: scanning, ids, hints vs headers, search, cache, hashes, templates."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from sdrest.models import ModelInfo, detect
from sdrest.models.registry import Registry
from sdrest.testing.headers import write_gguf, write_safetensors
from sdrest.models.templates import TemplateError


class CountingDetector:
    """detect(), counting its calls."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, path: str) -> ModelInfo:
        self.calls.append(path)
        return detect(path)


def test_scan_ids_kinds_and_hints(models_dir: Path) -> None:
    reg = Registry(models_dir)
    report = reg.scan()
    ids = [e.id for e in reg.entries()]
    assert "checkpoints/v1-5-pruned-emaonly" in ids
    assert "diffusion_models/flux1-dev-q8_0" in ids
    assert "flat-flux-vae" in ids
    assert "README" not in " ".join(ids)
    assert sorted(report.added) == ids
    assert report.unchanged == 0 and not report.removed
    flux = reg.get("diffusion_models/flux1-dev-q8_0")
    assert (flux.kind, flux.architecture, flux.info.load_as) == ("diffusion_model", "Flux", "diffusion_model")
    assert flux.folder == "diffusion_models" and flux.mismatch is None
    assert reg.get("flat-flux-vae").kind == "vae" and reg.get("flat-flux-vae").folder is None
    oops = reg.get("vae/oops_a_lora")
    assert oops.kind == "lora"
    assert oops.mismatch == "in vae/ but the header says lora"
    assert reg.get("text_encoders/clip/clip_l").info.text_encoder_type == "clip_l"


def test_unreadable_file_in_a_model_folder_is_skipped(models_dir: Path) -> None:
    (models_dir / "lora" / "broken.safetensors").write_bytes(b"\x00" * 10)
    det = CountingDetector()
    reg = Registry(models_dir, detector=det)
    report = reg.scan()
    with pytest.raises(KeyError):
        reg.get("lora/broken")
    assert "lora/broken" not in report.added
    (skipped,) = [s for s in report.skipped if s.rel_path == "lora/broken.safetensors"]
    assert skipped.reason.startswith("not a model file: ")
    # the verdict is cached like a model's: a rescan does not read the file again, and still reports it
    calls = len(det.calls)
    again = reg.scan()
    assert len(det.calls) == calls
    assert [s.rel_path for s in again.skipped] == ["lora/broken.safetensors"]
    # once it holds a model's header, it is listed
    write_safetensors(models_dir / "lora" / "broken.safetensors", [("a.lora_down.weight", (4, 768)),
                                                                   ("a.lora_up.weight", (768, 4))])
    assert reg.scan().added == ["lora/broken"]
    assert reg.get("lora/broken").kind == "lora"


def test_model_file_of_an_unknown_kind_is_listed(models_dir: Path) -> None:
    write_safetensors(models_dir / "vae" / "mystery.safetensors", [("something.else", (4, 4))])
    reg = Registry(models_dir)
    reg.scan()
    e = reg.get("vae/mystery")
    assert e.kind == "unknown" and e.info.error is None
    assert e.mismatch == "in vae/ but sdrest does not know this kind of model"


def test_same_stem_keeps_extensions(models_dir: Path) -> None:
    write_gguf(
        models_dir / "vae" / "ae.gguf",
        [("decoder.conv_in.weight", (512, 16, 3, 3)), ("decoder.mid.block_1.conv1.weight", (512, 512, 3, 3))],
    )
    reg = Registry(models_dir)
    reg.scan()
    ids = {e.id for e in reg.entries()}
    assert {"vae/ae.gguf", "vae/ae.safetensors"} <= ids and "vae/ae" not in ids


def test_find(models_dir: Path) -> None:
    reg = Registry(models_dir)
    reg.scan()
    assert reg.find("flux1-dev-q8_0").id == "diffusion_models/flux1-dev-q8_0"
    assert reg.find("flux1-dev-q8_0.gguf").id == "diffusion_models/flux1-dev-q8_0"
    assert reg.find("diffusion_models/flux1-dev-q8_0.gguf").id == "diffusion_models/flux1-dev-q8_0"
    with pytest.raises(KeyError, match="no model"):
        reg.find("nope")
    (models_dir / "lora" / "v1-5-pruned-emaonly.safetensors").write_bytes(
        (models_dir / "lora" / "marblesh.safetensors").read_bytes()
    )
    reg.scan()
    with pytest.raises(KeyError, match="ambiguous"):
        reg.find("v1-5-pruned-emaonly")


def test_search_filter_sort_paginate(models_dir: Path) -> None:
    reg = Registry(models_dir)
    reg.scan()
    vaes = reg.search(kind="vae")
    assert {e.id for e in vaes.items} == {"vae/ae", "vae/sdxl_vae", "vae/qwen_image_vae", "flat-flux-vae"}
    assert [e.id for e in reg.search(architecture="flux").items] == [
        "diffusion_models/flux1-dev-q8_0",
        "flat-flux-vae",
        "text_encoders/clip/clip_l",
        "text_encoders/t5xxl/t5xxl_fp16",
        "vae/ae",
    ]
    assert [e.id for e in reg.search("flux q8").items] == ["diffusion_models/flux1-dev-q8_0"]
    by_size = reg.search(kind="text_encoder", sort="size", descending=True)
    sizes = [e.size for e in by_size.items]
    assert sizes == sorted(sizes, reverse=True)
    page = reg.search(sort="id", offset=2, limit=3)
    everything = reg.search(sort="id")
    assert page.total == everything.total == len(reg.entries())
    assert [e.id for e in page.items] == [e.id for e in everything.items[2:5]]
    with pytest.raises(ValueError):
        reg.search(sort="colour")


def test_rescan_picks_up_new_changed_deleted(models_dir: Path) -> None:
    det = CountingDetector()
    reg = Registry(models_dir, detector=det)
    reg.scan()
    first = len(det.calls)
    again = reg.scan()
    assert len(det.calls) == first and again.unchanged == first
    assert not (again.added or again.changed or again.removed)
    # new
    write_safetensors(
        models_dir / "lora" / "new.safetensors", [("a.lora_down.weight", (4, 768)), ("a.lora_up.weight", (768, 4))]
    )
    # changed (same size, new mtime)
    vae = models_dir / "vae" / "sdxl_vae.safetensors"
    st = vae.stat()
    os.utime(vae, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    # deleted
    (models_dir / "vae" / "oops_a_lora.safetensors").unlink()
    report = reg.scan()
    assert report.added == ["lora/new"]
    assert report.changed == ["vae/sdxl_vae"]
    assert report.removed == ["vae/oops_a_lora"]
    assert len(det.calls) == first + 2
    with pytest.raises(KeyError):
        reg.get("vae/oops_a_lora")


def test_disk_cache_survives_a_restart(models_dir: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache" / "models.json"
    Registry(models_dir, cache_path=cache).scan()
    assert cache.is_file()
    det = CountingDetector()
    reg = Registry(models_dir, cache_path=cache, detector=det)
    assert reg.get("diffusion_models/flux1-dev-q8_0").architecture == "Flux"  # known before any scan
    report = reg.scan()
    assert det.calls == [] and report.unchanged == len(reg.entries())


def test_corrupt_cache_is_ignored(models_dir: Path, tmp_path: Path) -> None:
    cache = tmp_path / "models.json"
    cache.write_text("{not json")
    reg = Registry(models_dir, cache_path=cache)
    reg.scan()
    assert reg.get("vae/ae").kind == "vae"


def test_rescan_of_1000_unchanged_files_is_fast(tmp_path: Path) -> None:
    root = tmp_path / "many"
    (root / "lora").mkdir(parents=True)
    src = root / "lora" / "l0000.safetensors"
    write_safetensors(src, [("a.lora_down.weight", (4, 768)), ("a.lora_up.weight", (768, 4))])
    data = src.read_bytes()
    for i in range(1, 1000):
        (root / "lora" / f"l{i:04d}.safetensors").write_bytes(data)
    reg = Registry(root)
    first = reg.scan()
    assert len(first.added) == 1000
    t0 = time.perf_counter()
    again = reg.scan()
    elapsed = time.perf_counter() - t0
    assert again.unchanged == 1000
    assert elapsed < 0.5, elapsed


def test_diffusers_folder_is_one_entry(tmp_path: Path) -> None:
    root = tmp_path / "models"
    pipe = root / "checkpoints" / "sd15-diffusers"
    (pipe / "unet").mkdir(parents=True)
    (pipe / "text_encoder").mkdir()
    (pipe / "model_index.json").write_text("{}")
    write_safetensors(
        pipe / "unet" / "diffusion_pytorch_model.safetensors",
        [
            ("conv_in.weight", (320, 4, 3, 3)),
            ("mid_block.resnets.1.conv1.weight", (1280, 1280, 3, 3)),
            ("up_blocks.2.attentions.1.proj_in.weight", (640, 640)),
        ],
    )
    write_safetensors(
        pipe / "text_encoder" / "model.safetensors", [("text_model.embeddings.token_embedding.weight", (49408, 768))]
    )
    reg = Registry(root)
    reg.scan()
    assert [e.id for e in reg.entries()] == ["checkpoints/sd15-diffusers"]
    assert reg.get("checkpoints/sd15-diffusers").architecture == "SD 1.x"


def write_random_model(path: Path, data_bytes: int) -> None:
    """A LoRA header followed by ``data_bytes`` of random tensor data (not sparse: hashes must see it)."""
    rank = 8
    width = data_bytes // (2 * rank * 2)
    size = write_safetensors(path, [("a.lora_down.weight", (rank, width)), ("a.lora_up.weight", (width, rank))])
    header = size - 2 * rank * width * 2
    with open(path, "r+b") as f:
        f.seek(header)
        f.write(os.urandom(size - header))


def test_hashes(models_dir: Path) -> None:
    path = models_dir / "lora" / "big.safetensors"
    write_random_model(path, (1 << 20) + 200_000)
    reg = Registry(models_dir)
    reg.scan()
    raw = path.read_bytes()
    seen: list[tuple[int, int]] = []
    h = reg.hashes("lora/big", progress=lambda done, total: seen.append((done, total)))
    full = hashlib.sha256(raw).hexdigest()
    assert h.sha256 == full
    assert h.autov2 == full[:10]
    assert h.legacy == hashlib.sha256(raw[0x100000:0x110000]).hexdigest()[:8]
    assert seen[-1] == (len(raw), len(raw))
    assert reg.get("lora/big").hashes == h  # cached
    # a changed file gets new hashes after a rescan
    with open(path, "ab") as f:
        f.write(b"more")
    reg.scan()
    assert reg.get("lora/big").hashes is None
    assert reg.hashes("lora/big").sha256 == hashlib.sha256(raw + b"more").hexdigest()



def test_hashes_can_be_cancelled(models_dir: Path) -> None:
    import threading

    from sdrest.models.hashing import HashCancelled

    path = models_dir / "lora" / "big.safetensors"
    write_random_model(path, 3 << 20)
    reg = Registry(models_dir)
    reg.scan()
    stop = threading.Event()
    with pytest.raises(HashCancelled):
        reg.hashes("lora/big", progress=lambda done, total: stop.set(), cancel=stop)
    assert reg.get("lora/big").hashes is None  # nothing cached from a cancelled run
    assert reg.hashes("lora/big").sha256 == hashlib.sha256(path.read_bytes()).hexdigest()

def test_templates(models_dir: Path) -> None:
    reg = Registry(models_dir)
    reg.scan()
    assert {t.id for t in reg.templates()} == {"presets/portrait", "presets/fast", "prompts/cat", "neg_prompts/default"}
    assert [t.id for t in reg.templates("neg_prompt")] == ["neg_prompts/default"]
    assert reg.read_template("presets/portrait") == {"steps": 30, "cfg_scale": 6.5}
    assert reg.read_template("presets/fast") == {"steps": 8, "sampler": "euler"}
    assert reg.read_template("prompts/cat") == "a lovely cat"
    with pytest.raises(KeyError):
        reg.read_template("presets/nope")
    (models_dir / "presets" / "bad.yaml").write_text("a: [unclosed\n")
    (models_dir / "presets" / "evil.yaml").write_text("!!python/object/apply:os.system ['touch pwned']\n")
    reg.scan()
    with pytest.raises(TemplateError):
        reg.read_template("presets/bad")
    with pytest.raises(TemplateError):
        reg.read_template("presets/evil")


def test_missing_root(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        Registry(tmp_path / "nope").scan()
