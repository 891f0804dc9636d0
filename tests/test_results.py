"""GenerationResult for scripts: friendly JSON-safe parameters, infotext on each image, save()."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

import sdrest
from sdrest.imagefiles import output_paths
from sdrest.infotext import infotext, parse_infotext

SIZE = 64


@pytest.fixture(scope="module")
def batch(sd1: sdrest.StableDiffusion, lora_path: Path) -> sdrest.GenerationResult:
    return sd1.txt2img("a cat", negative_prompt="blurry", width=SIZE, height=SIZE, steps=1, seed=11, batch_count=2,
                       sampler="euler", scheduler="karras", cfg_scale=6.5, loras=[sdrest.LoRA(lora_path, 0.5)])


def test_parameters_are_friendly_and_json_safe(batch: sdrest.GenerationResult, sd1_path: Path) -> None:
    p = batch.parameters
    assert json.loads(json.dumps(p, allow_nan=False)) == p
    assert p["mode"] == "txt2img" and p["prompt"] == "a cat" and p["negative_prompt"] == "blurry"
    assert (p["sampler"], p["scheduler"], p["steps"], p["cfg_scale"]) == ("euler", "karras", 1, 6.5)
    assert p["seed"] == 11 and p["seeds"] == [11, 12] and p["batch_count"] == 2
    assert p["model_name"] == sd1_path.stem and p["rng"] == "cuda"
    assert p["loras"][0]["name"] == "sd1_lora" and p["loras"][0]["multiplier"] == 0.5
    assert "eta" not in p and "img_cfg_scale" not in p, "sd.cpp's inf (model default) is left out"


def test_default_scheduler_is_named(sd1: sdrest.StableDiffusion) -> None:
    result = sd1.txt2img("a cat", width=SIZE, height=SIZE, steps=1, seed=1)
    assert result.parameters["sampler"] == sd1.default_sampler
    assert result.parameters["scheduler"] == sd1.default_scheduler()


def test_each_image_carries_its_infotext(batch: sdrest.GenerationResult) -> None:
    for image, seed in zip(batch.images, batch.seeds):
        fields = parse_infotext(image.info["parameters"])
        assert fields["prompt"] == "a cat <lora:sd1_lora:0.5>" and fields["negative_prompt"] == "blurry"
        assert fields["Seed"] == str(seed) and fields["Sampler"] == "Euler" and fields["Schedule type"] == "Karras"
        assert fields["Size"] == f"{SIZE}x{SIZE}" and "Lora hashes" not in fields  # the library hashes no files


def test_save_with_patterns(batch: sdrest.GenerationResult, tmp_path: Path) -> None:
    by_seed = batch.save(tmp_path / "cat-{seed}.png")
    assert by_seed == [tmp_path / "cat-11.png", tmp_path / "cat-12.png"]
    printf = batch.save(tmp_path / "img_%03d.png")
    assert printf == [tmp_path / "img_000.png", tmp_path / "img_001.png"]
    plain = batch.save(tmp_path / "out.png")  # several images, no pattern: sd.cpp's CLI's names
    assert plain == [tmp_path / "out_0.png", tmp_path / "out_1.png"]
    for path, image in zip(by_seed, batch.images):
        with Image.open(path) as written:
            assert written.info["parameters"] == image.info["parameters"]
            assert written.tobytes() == image.tobytes()
    assert not list(tmp_path.glob(".*partial"))


def test_save_refuses_to_overwrite_before_writing_anything(batch: sdrest.GenerationResult, tmp_path: Path) -> None:
    (tmp_path / "out_1.png").write_bytes(b"mine")
    with pytest.raises(FileExistsError, match="out_1.png"):
        batch.save(tmp_path / "out.png", overwrite=False)
    assert not (tmp_path / "out_0.png").exists()
    assert (tmp_path / "out_1.png").read_bytes() == b"mine"


def test_jpeg_and_webp_keep_the_text_in_exif(batch: sdrest.GenerationResult, tmp_path: Path) -> None:
    for name in ("one.jpg", "one.webp"):
        [path] = sdrest.GenerationResult(batch.images[:1], batch.seeds[:1], batch.parameters).save(tmp_path / name)
        with Image.open(path) as written:
            comment = written.getexif().get_ifd(0x8769)[0x9286]
        assert comment == b"UNICODE\x00" + batch.images[0].info["parameters"].encode("utf-16-be")


def test_output_names_follow_sd_cli() -> None:
    assert output_paths("out.png", [1]) == [Path("out.png")]
    assert output_paths("out", [1]) == [Path("out.png")]
    assert output_paths("out.foo", [1, 2]) == [Path("out.foo_0.png"), Path("out.foo_1.png")]
    assert output_paths("f_%d.png", [5, 6], begin_index=3) == [Path("f_3.png"), Path("f_4.png")]
    assert output_paths("100%%_%02d.jpg", [5]) == [Path("100%_00.jpg")]
    with pytest.raises(ValueError, match="same name"):
        output_paths("x-{seed}.png", [5, 5])


def test_infotext_round_trip_quotes_what_needs_it() -> None:
    text = infotext({"prompt": "a cat, sitting", "negative_prompt": "dog", "steps": 2, "sampler": "euler",
                     "width": 8, "height": 8, "model_name": "my: model", "hires": {"upscaler": "Latent", "scale": 2.0}},
                    seed=3)
    fields = parse_infotext(text)
    assert fields["prompt"] == "a cat, sitting" and fields["Model"] == "my: model" and fields["Seed"] == "3"
    assert fields["Hires upscaler"] == "Latent" and fields["Steps"] == "2"
