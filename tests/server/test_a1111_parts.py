"""The A1111 dialect's parts without a server: names, infotexts, the image work around img2img, PNG Info, hashes,
errors and model names."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from sdrest import a1111_names
from sdrest.infotext import infotext, parse_infotext
from sdrest.jobs.infotext_files import add_file_hashes
from sdrest.models.hashing import lora_hash
from sdrest.server.a1111 import catalog
from sdrest.server.a1111 import options as options_module
from sdrest.server.a1111.errors import a1111_error, as_a1111, location
from sdrest.server.a1111.images import fill_masked, plan_img2img, resize_image
from sdrest.server.a1111.options import OptionsStore
from sdrest.server.a1111.pnginfo import generation_text, parse_parameters
from sdrest.server.errors import ApiError
from sdrest.testing.headers import write_safetensors

SAMPLERS = ["euler", "euler_a", "heun", "dpm2", "dpm++2s_a", "dpm++2m", "dpm++2mv2", "ipndm", "lcm", "ddim_trailing"]
SCHEDULERS = ["discrete", "karras", "exponential", "ays", "gits", "sgm_uniform", "simple", "smoothstep", "lcm"]


# -- names -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("sampler", "scheduler", "expected"), [
    ("Euler a", "automatic", ("euler_a", None)),
    ("euler A", None, ("euler_a", None)),
    ("k_euler_ancestral", "", ("euler_a", None)),
    ("euler_a", "Karras", ("euler_a", "karras")),
    ("DPM++ 2M", "Automatic", ("dpm++2m", "karras")),  # A1111 1.9+: the sampler's own preferred schedule
    ("DPM++ 2M", "exponential", ("dpm++2m", "exponential")),
    ("DPM++ 2M Karras", "automatic", ("dpm++2m", "karras")),  # the pre-1.9 name
    ("DPM++ 2M SGMUniform", None, ("dpm++2m", "sgm_uniform")),
    ("DDIM", "Uniform", ("ddim_trailing", "discrete")),
    ("LCM", "align_your_steps", ("lcm", "ays")),
    ("ipndm", "smoothstep", ("ipndm", "smoothstep")),  # sd.cpp's own names where A1111 has none
    (None, None, (None, None)),
])
def test_resolve(sampler: str | None, scheduler: str | None, expected: tuple[str | None, str | None]) -> None:
    assert a1111_names.resolve(sampler, scheduler, SAMPLERS, SCHEDULERS) == expected


@pytest.mark.parametrize(("sampler", "scheduler", "field"), [
    ("DPM++ SDE", None, "sampler_name"),  # A1111's, not sd.cpp's
    ("Euler a", "polyexponential", "scheduler"),
    ("Res Multistep", None, "sampler_name"),  # sd.cpp's, but not in this build's list
])
def test_resolve_refuses_unknown_names(sampler: str, scheduler: str | None, field: str) -> None:
    with pytest.raises(a1111_names.UnknownName) as caught:
        a1111_names.resolve(sampler, scheduler, SAMPLERS, SCHEDULERS)
    assert caught.value.field == field and str(caught.value).startswith(field)


def test_lists_follow_the_names_the_library_reports() -> None:
    samplers = a1111_names.samplers(SAMPLERS)
    assert [s.name for s in samplers][:3] == ["DPM++ 2M", "DPM++ 2S a", "Euler a"]
    assert {s.sdcpp for s in samplers} == set(SAMPLERS)  # every sd.cpp sampler, none it lacks
    assert "dpm++2mv2" in [s.name for s in samplers]
    schedulers = a1111_names.schedulers(SCHEDULERS)
    assert schedulers[0].name == "automatic" and {"smoothstep", "lcm"} <= {s.name for s in schedulers}
    assert "kl_optimal" not in {s.name for s in schedulers}  # not in this build
    assert a1111_names.sampler_label("dpm++2s_a") == "DPM++ 2S a" and a1111_names.sampler_label("tcd") == "tcd"
    assert a1111_names.scheduler_label("discrete") == "Uniform" and a1111_names.scheduler_label("ays") == \
        "Align Your Steps"


def test_every_table_name_is_one_sd_cpp_reports() -> None:
    """The tables hold A1111's vocabulary only: each maps onto a name the C library itself reports."""
    names = pytest.importorskip("sdrest.names")
    assert {s.sdcpp for s in a1111_names.SAMPLERS} <= set(names.samplers())
    assert {s.sdcpp for s in a1111_names.SCHEDULERS if s.sdcpp} <= set(names.schedulers())


# -- infotext --------------------------------------------------------------------------------------------


def test_infotext_the_way_a1111_writes_it() -> None:
    params = {"prompt": "a cat", "negative_prompt": "dull", "steps": 20, "sampler": "dpm++2m", "scheduler": "karras",
              "cfg_scale": 7.0, "width": 512, "height": 768, "model_hash": "6ce0161689", "model_name": "v1-5",
              "vae_name": "vae-ft-mse.safetensors", "vae_hash": "735e4c3a44",
              "loras": [{"name": "film: grain", "multiplier": 0.6, "hash": "2d1b3a5c7e9f"},
                        {"name": "plain", "multiplier": 1.0}]}
    text = infotext(params, 42)
    assert text.splitlines()[0] == "a cat <lora:film: grain:0.6> <lora:plain:1>"
    assert text.splitlines()[-1] == (
        'Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7.0, Seed: 42, Size: 512x768, '
        'Model hash: 6ce0161689, Model: v1-5, VAE hash: 735e4c3a44, VAE: vae-ft-mse.safetensors, '
        'Lora hashes: "film grain: 2d1b3a5c7e9f"')
    fields = parse_infotext(text)
    assert fields["Lora hashes"] == "film grain: 2d1b3a5c7e9f" and fields["VAE hash"] == "735e4c3a44"
    assert infotext({"prompt": "x <lora:plain:1>", "loras": [{"name": "plain", "multiplier": 1}]}).startswith(
        "x <lora:plain:1>\n")  # a tag already in the prompt is not repeated


def test_file_hashes_of_a_job(tmp_path: Path) -> None:
    lora = tmp_path / "style.safetensors"
    write_safetensors(lora, [("lora_unet_x.lora_down.weight", (4, 8))])
    data = lora.read_bytes()
    tensors = data[8 + int.from_bytes(data[:8], "little"):]
    assert lora_hash(lora) == hashlib.sha256(tensors).hexdigest()[:12]  # the header is not hashed
    other = tmp_path / "style.pt"
    other.write_bytes(b"PK\x03\x04 not safetensors")
    assert lora_hash(other) == hashlib.sha256(other.read_bytes()).hexdigest()[:12]
    params = {"_context": {"model": "m", "taesd": str(tmp_path / "taesd.safetensors"), "vae": "v"},
              "loras": [{"name": "style", "_path": str(lora)}, {"name": "gone", "_path": str(tmp_path / "gone")}]}
    add_file_hashes(params, None)
    assert params["vae_name"] == "taesd.safetensors"  # a TAESD decodes when there is one
    assert params["loras"][0]["hash"] == lora_hash(lora) and params["loras"][1]["hash"] is None


# -- images ----------------------------------------------------------------------------------------------


def _picture(size: tuple[int, int]) -> Image.Image:
    image = Image.new("RGB", size, (200, 20, 20))
    ImageDraw.Draw(image).rectangle((0, 0, size[0] // 2 - 1, size[1] - 1), fill=(20, 20, 200))
    return image


def test_resize_modes() -> None:
    wide = _picture((80, 40))
    assert all(resize_image(mode, wide, 32, 64).size == (32, 64) for mode in (0, 1, 2, 3))
    cropped = resize_image(1, wide, 32, 64)  # covers, centre kept: the split between the halves
    assert cropped.getpixel((0, 32))[2] > 150 and cropped.getpixel((31, 32))[0] > 150
    filled = resize_image(2, wide, 32, 64)  # fits, bands filled from the edge rows
    assert filled.getpixel((0, 0)) == filled.getpixel((0, 24)) and filled.getpixel((0, 0))[2] > 150


def test_masked_img2img_keeps_the_original_outside_the_mask() -> None:
    source = _picture((64, 64))
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (16, 16, 48, 48))
    plan = plan_img2img(source, mask, width=64, height=64, resize_mode=0, mask_blur=0, invert=False, fill=1,
                        full_res=False, padding=0, seed=1)
    assert plan.image.size == plan.mask.size == (64, 64)
    out = plan.finish(Image.new("RGB", (64, 64), (0, 255, 0)))
    assert out.getpixel((2, 2)) == source.getpixel((2, 2)) and out.getpixel((32, 32)) == (0, 255, 0)
    inverted = plan_img2img(source, mask, width=64, height=64, resize_mode=0, mask_blur=0, invert=True, fill=1,
                            full_res=False, padding=0, seed=1).finish(Image.new("RGB", (64, 64), (0, 255, 0)))
    assert inverted.getpixel((2, 2)) == (0, 255, 0) and inverted.getpixel((32, 32)) == source.getpixel((32, 32))


def test_full_resolution_inpainting_crops_and_pastes_back() -> None:
    source = _picture((128, 64))
    mask = Image.new("L", (128, 64), 0)
    mask.paste(255, (90, 20, 100, 30))
    plan = plan_img2img(source, mask, width=64, height=64, resize_mode=0, mask_blur=0, invert=False, fill=1,
                        full_res=True, padding=4, seed=1)
    assert plan.region is not None and plan.image.size == (64, 64)
    x1, y1, x2, y2 = plan.region
    assert x1 <= 86 and x2 >= 104 and x2 - x1 == y2 - y1  # around the mask, the job's aspect
    out = plan.finish(Image.new("RGB", (64, 64), (0, 255, 0)))
    assert out.size == (128, 64) and out.getpixel((95, 25)) == (0, 255, 0) and out.getpixel((5, 5)) == \
        source.getpixel((5, 5))


@pytest.mark.parametrize("mode", [0, 2, 3])
def test_fill_modes_change_only_the_masked_area(mode: int) -> None:
    source = _picture((32, 32))
    mask = Image.new("L", (32, 32), 0)
    mask.paste(255, (8, 8, 24, 24))
    filled = fill_masked(source, mask, mode, seed=3)
    assert filled.getpixel((0, 0)) == source.getpixel((0, 0)) and filled.getpixel((31, 31)) == source.getpixel((31, 31))
    assert filled.getpixel((16, 16)) != source.getpixel((16, 16)) or mode == 0
    assert fill_masked(source, mask, 1, seed=3) is source


# -- PNG Info ----------------------------------------------------------------------------------------------


def test_png_info_fields() -> None:
    fields = parse_parameters("a cat\nNegative prompt: dull\nSteps: 4, Sampler: Euler a, Size: 512x768, "
                              'Lora hashes: "x: 0123456789ab"')
    assert fields == {"Prompt": "a cat", "Negative prompt": "dull", "Steps": "4", "Sampler": "Euler a",
                      "Size-1": "512", "Size-2": "768", "Lora hashes": "x: 0123456789ab"}


def test_png_info_reads_an_a1111_jpeg_comment() -> None:
    exif = Image.Exif()  # as A1111 writes it (piexif's UserComment, "unicode": a prefix, then UTF-16 BE)
    exif.get_ifd(0x8769)[0x9286] = b"UNICODE\x00" + "a dog\nSteps: 3".encode("utf-16-be")
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format="JPEG", exif=exif)
    with Image.open(io.BytesIO(buffer.getvalue())) as image:
        assert generation_text(image) == "a dog\nSteps: 3"


# -- errors ---------------------------------------------------------------------------------------------------


def test_errors_in_fastapis_shape() -> None:
    assert location("override_settings.sd_model_checkpoint") == ["body", "override_settings", "sd_model_checkpoint"]
    assert location("imageList[2].data") == ["body", "imageList", 2, "data"]
    renamed = as_a1111(ApiError(422, "sampling_method: unknown", field="sampling_method"),
                       {"sampling_method": "sampler_name", "init_image": "init_images[0]"})
    assert renamed.field == "sampler_name" and renamed.message == "sampler_name: unknown"
    assert as_a1111(ApiError(422, "init_image[1]: bad", field="init_image[1]"),
                    {"init_image": "init_images"}).field == "init_images[1]"
    invalid = a1111_error(renamed)
    assert invalid.status_code == 422 and json.loads(invalid.body)["detail"] == [
        {"loc": ["body", "sampler_name"], "msg": "sampler_name: unknown", "type": "value_error"}]
    refused = a1111_error(ApiError(401, "who are you", headers={"WWW-Authenticate": "Bearer"}))
    assert json.loads(refused.body)["detail"] == "who are you"
    assert refused.headers["www-authenticate"].startswith("Basic")


# -- options and model names ----------------------------------------------------------------------------------


def test_options_are_kept_per_caller_and_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(options_module, "MAX_OWNERS", 5)
    store = OptionsStore(tmp_path / "options.json")
    store.set("alice", {"sd_vae": "x.safetensors", "mine": [1, 2]})
    assert OptionsStore(tmp_path / "options.json").get("alice")["mine"] == [1, 2]  # kept across restarts
    assert store.get("bob")["sd_vae"] == "Automatic"
    with pytest.raises(ValueError):
        store.set("alice", {"big": "x" * 100_000})
    for n in range(options_module.MAX_OWNERS):
        store.set(f"guest-{n}", {"k": n})
    assert store.get("alice").get("mine") is None  # the oldest caller is forgotten past the bound


def test_checkpoint_names_as_a1111_clients_send_them(tmp_path: Path) -> None:
    from sdrest.models.hashing import Hashes
    from sdrest.models.registry import Registry
    from sdrest.testing.signatures import SIGNATURES

    (tmp_path / "checkpoints").mkdir()
    write_safetensors(tmp_path / "checkpoints" / "Dream.safetensors", SIGNATURES["SD 1.x"])
    registry = Registry(tmp_path)
    registry.scan()
    (entry,) = catalog.checkpoints(registry)
    assert catalog.checkpoint_item(entry)["title"] == "Dream.safetensors"
    for ref in ("Dream.safetensors", "dream", "checkpoints/Dream.safetensors", "checkpoints/Dream",
                "/home/me/webui/models/Stable-diffusion/Dream.safetensors", "C:\\webui\\models\\Dream.safetensors"):
        assert catalog.find_checkpoint(ref, registry) == [entry], ref
    entry.hashes = Hashes(sha256="ab" * 32, autov2="ab" * 5, legacy="12345678")
    assert catalog.title(entry) == "Dream.safetensors [ababababab]"
    for ref in ("Dream.safetensors [ababababab]", "dream.safetensors [ABABABABAB]", "ababababab", "12345678"):
        assert catalog.find_checkpoint(ref, registry) == [entry], ref
    assert catalog.find_checkpoint("Dream.safetensors [0000000000]", registry) == []  # a hash that disagrees
