"""Every generation mode of the web UI in a real browser (Debian's Chromium through Playwright) against a live
server with the synthetic models and real workers: a mask painted with the mouse reaches the server as painted
(undo, redo, eraser, invert on the way), a dropped PNG's parameters fill the form (ours and A1111's), image to
image takes a pasted and a dropped image, ControlNet sends Canny edges, an upscale by an exact factor, the video
form round-trips through the server's validation, and screenshots of each mode (desktop and phone, light and dark).

The tests share one server and run in file order.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw, PngImagePlugin
from browser_device import DESKTOP, PHONE, Device
from server_live import AUTH_USERS, LiveServer, add_users, client_as, login, make_config, until

from sdrest.infotext import infotext
from sdrest.server.app import create_app
from sdrest.testing import synthetic
from sdrest.testing.browser import chromium_path

pytestmark = pytest.mark.skipif(chromium_path() is None, reason="no Chromium binary: apt-get install chromium")
sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

JOB_SECONDS = 240
SIZE = 64


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, synthetic_models: Path) -> Iterator[LiveServer]:
    """One server for the module: auth jwt, the synthetic SD1 set (ControlNet, ESRGAN and a LoRA among it) and
    the Wan video set (hard links to the cache: the Video mode shows; its jobs are too slow to run here)."""
    for folder, source in (("diffusion_models", synthetic.wan_diffusion_model()),
                           ("text_encoders", synthetic.umt5_encoder()), ("vae", synthetic.wan_vae())):
        synthetic._link(source, synthetic_models / folder / source.name)
    tmp = tmp_path_factory.mktemp("webui-modes")
    config = make_config(tmp, synthetic_models, auth="jwt", cancel_grace_seconds=120.0)
    add_users(config.data_dir, AUTH_USERS)
    with LiveServer(create_app(config)) as server:
        yield server


def png(width: int = SIZE, height: int = SIZE, text: dict[str, str] | None = None, itxt: bool = False) -> bytes:
    """A PNG: a light square on a dark ground (edges for Canny), with text chunks."""
    image = Image.new("RGB", (width, height), (30, 40, 60))
    ImageDraw.Draw(image).rectangle((width // 4, height // 4, 3 * width // 4, 3 * height // 4), fill=(230, 200, 90))
    info = PngImagePlugin.PngInfo()
    for key, value in (text or {}).items():
        if itxt:
            info.add_itxt(key, value, zip=True)
        else:
            info.add_text(key, value)
    out = io.BytesIO()
    image.save(out, format="PNG", pnginfo=info)
    return out.getvalue()


def file_of(name: str, data: bytes) -> dict[str, Any]:
    return {"name": name, "mimeType": "image/png", "buffer": data}


def data_transfer(page: Any, name: str, data: bytes) -> Any:
    """A DataTransfer holding one PNG file, in the page."""
    return page.evaluate_handle("""([b64, name]) => {
        const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
        const dt = new DataTransfer();
        dt.items.add(new File([bytes], name, { type: 'image/png' }));
        return dt;
    }""", [base64.b64encode(data).decode(), name])


def drop(page: Any, target: Any, name: str, data: bytes) -> None:
    """Drop a PNG file onto the element ``target`` (a locator), as a drag from the desktop would."""
    transfer = data_transfer(page, name, data)
    target.dispatch_event("dragover", {"dataTransfer": transfer})
    target.dispatch_event("drop", {"dataTransfer": transfer})


def newest_job(live: LiveServer, prompt: str | None = None, kind: str | None = None) -> Any:
    def find() -> Any:
        for job in live.queue.list_jobs(newest_first=True, limit=20):
            if (prompt is None or job.params.get("prompt") == prompt) and (kind is None or job.kind == kind):
                return job
        return None
    return until(find, 30, f"no job with prompt {prompt!r} and kind {kind!r}")


def finished(live: LiveServer, job_id: str) -> Any:
    job = until(lambda: (j := live.queue.get(job_id)) and j.status in ("succeeded", "failed", "cancelled") and j,
                JOB_SECONDS, f"job {job_id} did not end")
    assert job.status == "succeeded", job.error
    return job


def received(live: LiveServer, job_id: str, name: str) -> Image.Image:
    """An input image of a job as the server stored it."""
    with Image.open(live.state.inputs_dir / job_id / name) as image:
        image.load()
        return image


def tab(page: Any, name: str) -> Any:
    return page.get_by_role("tablist", name="Mode").get_by_role("tab", name=name, exact=True)


def small(page: Any, steps: int = 1, model: str | None = "checkpoints/sd1") -> None:
    """The SD1 model (the models dir has Wan too: no default), at 64x64 and ``steps`` steps."""
    if model:
        page.get_by_label("Model", exact=True).select_option(model)
    page.get_by_label("Width").fill(str(SIZE))
    page.get_by_label("Height").fill(str(SIZE))
    page.get_by_label("Steps").fill(str(steps))


def mask_alpha(page: Any, x: int, y: int) -> int:
    """The painted layer's alpha at image pixel (x, y): 255 where the mask says redraw."""
    return page.evaluate("([x, y]) => document.querySelector('.mask-canvas').getContext('2d')"
                         ".getImageData(x, y, 1, 1).data[3]", [x, y])


def to_screen(page: Any, x: float, y: float) -> tuple[float, float]:
    """The page coordinates of image pixel (x, y) in the mask editor."""
    box = page.locator(".mask-canvas").bounding_box()
    return box["x"] + x * box["width"] / SIZE, box["y"] + y * box["height"] / SIZE


def paint(page: Any, points: list[tuple[float, float]]) -> None:
    """A stroke through image pixels ``points`` with the mouse: down, moves, up."""
    page.mouse.move(*to_screen(page, *points[0]))
    page.mouse.down()
    for point in points[1:]:
        page.mouse.move(*to_screen(page, *point), steps=6)
    page.mouse.up()


def test_every_mode_the_models_allow_is_offered(device: Device) -> None:
    page = device.login()
    tabs = page.get_by_role("tablist", name="Mode").get_by_role("tab")
    expect(tabs).to_have_text(["Text to image", "Image to image", "Inpaint", "ControlNet", "Upscale", "Video"])
    expect(tab(page, "Text to image")).to_have_attribute("aria-selected", "true")
    # the arrow keys move between the tabs (and choose)
    tab(page, "Text to image").focus()
    page.keyboard.press("ArrowRight")
    expect(tab(page, "Image to image")).to_have_attribute("aria-selected", "true")
    expect(tab(page, "Image to image")).to_be_focused()
    expect(page.get_by_label("Strength")).to_have_value("0.75")  # the server's default
    page.keyboard.press("End")
    expect(tab(page, "Video")).to_have_attribute("aria-selected", "true")
    page.keyboard.press("Home")
    expect(tab(page, "Text to image")).to_have_attribute("aria-selected", "true")
    expect(page.get_by_label("Strength")).to_have_count(0)


def test_inpaint_sends_the_mask_painted_with_the_mouse(device: Device, live: LiveServer) -> None:
    page = device.login()
    tab(page, "Inpaint").click()
    page.get_by_label("Init image").set_input_files(files=[file_of("photo.png", png())])
    stage = page.get_by_role("application", name="Mask: paint where to redraw")
    expect(stage).to_be_visible()
    expect(page.get_by_label("Width")).to_have_value(str(SIZE))  # the size follows the image
    # [ and ] size the brush (outside text fields)
    brush = page.get_by_label("Brush size")
    start = int(brush.input_value())
    stage.focus()
    for _ in range(3):
        page.keyboard.press("]")
    expect(brush).to_have_value(str(start + 3))
    page.keyboard.press("[")
    expect(brush).to_have_value(str(start + 2))
    page.get_by_label("Prompt", exact=True).fill("a mended wall [not a key]")
    expect(brush).to_have_value(str(start + 2))

    paint(page, [(12, 32), (52, 32)])  # a horizontal stroke through the middle
    assert mask_alpha(page, 32, 32) == 255 and mask_alpha(page, 20, 32) == 255
    assert mask_alpha(page, 2, 2) == 0 and mask_alpha(page, 32, 8) == 0
    # undo and redo: the buttons and the keys
    page.get_by_role("button", name="Undo").click()
    assert mask_alpha(page, 32, 32) == 0
    page.get_by_role("button", name="Redo").click()
    assert mask_alpha(page, 32, 32) == 255
    stage.focus()
    page.keyboard.press("Control+z")
    assert mask_alpha(page, 32, 32) == 0
    page.keyboard.press("Control+Shift+Z")
    assert mask_alpha(page, 32, 32) == 255
    # invert swaps redrawn and kept; twice is the same mask
    page.get_by_role("button", name="Invert").click()
    assert mask_alpha(page, 32, 32) == 0 and mask_alpha(page, 2, 2) == 255
    page.get_by_role("button", name="Invert").click()
    assert mask_alpha(page, 32, 32) == 255 and mask_alpha(page, 2, 2) == 0
    # Clear keeps everything; undo brings the stroke back
    page.get_by_role("button", name="Clear").click()
    assert mask_alpha(page, 32, 32) == 0
    page.keyboard.press("Control+z")
    assert mask_alpha(page, 32, 32) == 255
    # the eraser takes a piece out of the stroke's right end
    eraser = page.get_by_role("button", name="Eraser")
    eraser.click()
    expect(eraser).to_have_attribute("aria-pressed", "true")
    paint(page, [(46, 24), (46, 40)])
    eraser.click()
    assert mask_alpha(page, 46, 32) == 0 and mask_alpha(page, 20, 32) == 255
    # zooming in and fitting again changes nothing painted
    page.get_by_role("button", name="Zoom in").click()
    page.get_by_role("button", name="Fit").click()

    small(page)
    page.get_by_label("Prompt", exact=True).fill("a mended wall")
    page.get_by_role("button", name="Generate").click()
    job = newest_job(live, "a mended wall", "inpainting")
    mask = received(live, job.id, "mask.png").convert("L")
    assert mask.size == (SIZE, SIZE)
    assert mask.getpixel((32, 32)) == 255 and mask.getpixel((20, 32)) == 255 and mask.getpixel((14, 32)) == 255
    assert mask.getpixel((46, 32)) == 0  # erased
    assert mask.getpixel((2, 2)) == 0 and mask.getpixel((32, 8)) == 0 and mask.getpixel((61, 61)) == 0
    assert received(live, job.id, "image.png").size == (SIZE, SIZE)
    assert job.params["strength"] == 0.75
    finished(live, job.id)
    hero = page.get_by_role("region", name="Results").get_by_role("img", name="a mended wall").first
    expect(hero).to_be_visible(timeout=JOB_SECONDS * 1000)


def test_inpaint_without_a_mask_says_where_to_paint(device: Device) -> None:
    page = device.login()
    tab(page, "Inpaint").click()
    page.get_by_label("Init image").set_input_files(files=[file_of("photo.png", png())])
    expect(page.get_by_role("application", name="Mask: paint where to redraw")).to_be_visible()
    page.get_by_role("button", name="Generate").click()
    expect(page.locator("#err-mask_image")).to_have_text("paint where to redraw")


def test_a_dropped_png_fills_the_form_with_its_parameters(device: Device) -> None:
    page = device.login()
    a1111 = ("a castle on a hill <lora:sd1_lora:0.7>\nNegative prompt: fog, rain\nSteps: 13, Sampler: DPM++ 2M, "
             "Schedule type: Karras, CFG scale: 5.5, Seed: 4242, Size: 96x128, Model hash: 0123456789, Model: sd1, "
             "Denoising strength: 0.4, Version: v1.10.1")
    drop(page, page.get_by_role("region", name="Results"), "a1111.png", png(text={"parameters": a1111}, itxt=True))
    expect(page.get_by_role("status").filter(has_text="Read the parameters of a1111.png")).to_be_visible()
    expect(page.get_by_label("Prompt", exact=True)).to_have_value("a castle on a hill")
    expect(page.get_by_label("Negative prompt")).to_have_value("fog, rain")
    expect(page.get_by_label("Steps")).to_have_value("13")
    expect(page.get_by_label("Width")).to_have_value("96")
    expect(page.get_by_label("Height")).to_have_value("128")
    expect(page.get_by_label("Seed")).to_have_value("4242")
    expect(page.get_by_label("CFG scale")).to_have_value("5.5")
    expect(page.get_by_label("Sampler")).to_have_value("dpm++2m")
    expect(page.get_by_label("Scheduler")).to_have_value("karras")
    expect(page.get_by_label("Model", exact=True)).to_have_value("checkpoints/sd1")
    # the LoRA tag went into the picker, with its weight
    expect(page.get_by_label("Weight of sd1_lora")).to_have_value("0.7")
    # a field of another mode is kept for it
    tab(page, "Image to image").click()
    expect(page.get_by_label("Strength")).to_have_value("0.4")
    tab(page, "Text to image").click()

    # one of ours: what the server writes (sdrest.infotext), in a tEXt chunk
    ours = infotext({"prompt": "a quiet harbour", "negative_prompt": "", "steps": 7, "sampler": "euler_a",
                     "cfg_scale": 3.0, "width": 64, "height": 72, "model_name": "sd1", "model_hash": "0123456789"},
                    seed=77)
    drop(page, page.locator("body"), "ours.png", png(text={"parameters": ours}))
    expect(page.get_by_label("Prompt", exact=True)).to_have_value("a quiet harbour")
    expect(page.get_by_label("Steps")).to_have_value("7")
    expect(page.get_by_label("Sampler")).to_have_value("euler_a")
    expect(page.get_by_label("Width")).to_have_value("64")
    expect(page.get_by_label("Height")).to_have_value("72")
    expect(page.get_by_label("Seed")).to_have_value("77")
    # a PNG without parameters in a mode without an input image: said so
    drop(page, page.locator("body"), "plain.png", png())
    expect(page.get_by_role("alert").filter(has_text="plain.png carries no generation parameters")).to_be_visible()


def test_image_to_image_takes_a_pasted_or_dropped_image(device: Device) -> None:
    page = device.login()
    tab(page, "Image to image").click()
    expect(page.get_by_label("Strength")).to_be_visible()
    page.evaluate("""(b64) => {
        const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
        const dt = new DataTransfer();
        dt.items.add(new File([bytes], 'pasted.png', { type: 'image/png' }));
        document.dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true }));
    }""", base64.b64encode(png(SIZE, SIZE)).decode())
    init = page.get_by_role("img", name="The init image")
    expect(init).to_be_visible()
    until(lambda: init.evaluate("img => img.naturalWidth") == SIZE, 10, "the pasted image did not show")
    zone = page.locator('.drop[data-field="init_image"]')
    drop(page, zone, "dropped.png", png(72, 64))
    expect(zone.get_by_text("72×64")).to_be_visible()
    expect(page.get_by_label("Width")).to_have_value("72")
    expect(page.get_by_label("Height")).to_have_value("64")


def test_controlnet_sends_canny_edges(device: Device, live: LiveServer) -> None:
    page = device.login()
    tab(page, "ControlNet").click()
    expect(page.get_by_label("ControlNet model")).to_be_visible()
    page.get_by_label("ControlNet model").select_option("controlnet/sd1_controlnet")
    expect(page.get_by_label("Control strength")).to_have_value("0.9")
    page.get_by_label("Control image").set_input_files(files=[file_of("pose.png", png())])
    page.get_by_label("Canny edges").check()
    expect(page.get_by_role("img", name="Canny edges preview")).to_be_visible()
    small(page)
    page.get_by_label("Prompt", exact=True).fill("a guided lighthouse")
    page.get_by_role("button", name="Generate").click()
    job = newest_job(live, "a guided lighthouse", "controlnet")
    control = received(live, job.id, "control_image.png").convert("L")
    values = {value for _, value in control.getcolors()}
    assert values <= {0, 255} and 255 in values  # an edge map: the square's outline
    assert control.getpixel((32, 32)) == 0 and control.getpixel((2, 2)) == 0
    finished(live, job.id)


def test_upscale_by_an_exact_factor_then_reuse_the_result_for_inpainting(device: Device, live: LiveServer) -> None:
    page = device.login()
    tab(page, "Upscale").click()
    expect(page.get_by_label("Prompt", exact=True)).to_have_count(0)
    expect(page.get_by_label("Upscaler")).to_be_visible()
    page.get_by_label("Image", exact=True).set_input_files(files=[file_of("small.png", png())])
    page.get_by_label("Upscale factor").fill("2")
    page.get_by_role("button", name="Generate").click()
    job = newest_job(live, kind="upscale")
    job = finished(live, job.id)
    assert job.params["upscale_factor"] == 2 and (job.result["width"], job.result["height"]) == (128, 128)
    # the gallery's "reuse" (js/reuse.js sends it): the mode and the image are this view's
    page.evaluate("(url) => document.dispatchEvent(new CustomEvent('sdrest:reuse', "
                  "{ detail: { params: {}, mode: 'inpaint', image: url } }))",
                  f"/api/queue/job/{job.id}/output/{job.outputs[0]}")
    expect(tab(page, "Inpaint")).to_have_attribute("aria-selected", "true")
    expect(page.get_by_role("application", name="Mask: paint where to redraw")).to_be_visible()
    expect(page.get_by_label("Width")).to_have_value("128")


def test_the_video_form_round_trips_through_validation(device: Device, live: LiveServer) -> None:
    page = device.login()
    tab(page, "Video").click()
    model = page.get_by_label("Model", exact=True)
    expect(model.locator("option")).to_have_count(1)  # only the video models
    expect(model).to_have_value("diffusion_models/wan")
    expect(page.get_by_label("Video frames")).to_have_value("33")  # Wan's default, applied with the model
    small(page, model=None)
    page.get_by_label("Video frames").fill("1")
    page.get_by_label("Prompt", exact=True).fill("waves")
    sent: list[dict[str, Any]] = []

    def hold(route: Any) -> None:  # the synthetic Wan set takes minutes on a CPU: keep the request, queue nothing
        sent.append(json.loads(route.request.post_data))
        route.fulfill(status=503, content_type="application/json",
                      body=json.dumps({"error": {"code": "held", "message": "held by the test"}}))

    device.expected.append("503")
    page.route("**/api/generate/video", hold)
    page.get_by_role("button", name="Generate").click()
    expect(page.get_by_role("alert").filter(has_text="held by the test")).to_be_visible()
    assert len(sent) == 1
    body = sent[0]
    assert {k: body[k] for k in ("model", "width", "height", "steps", "video_frames")} == {
        "model": "diffusion_models/wan", "width": SIZE, "height": SIZE, "steps": 1, "video_frames": 1}
    with client_as(live, login(live, "admin")["access_token"]) as client:
        answer = client.post("/api/validate", json={"type": "video", "parameters": body}).json()
        assert answer == {"valid": True, "errors": []}
        # and an error of the server's goes next to its field
        assert client.post("/api/validate", json={"type": "video", "parameters": {**body, "video_frames": 0}}).json()[
            "errors"][0]["field"] == "video_frames"


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_screenshots_of_each_mode(browser: Any, live: LiveServer, artifacts: Path, viewport: dict[str, int],
                                  scheme: str) -> None:
    """Inpaint with a painted mask, ControlNet with its edges, upscale and video, at 1280x800 and 390x844, light
    and dark: nothing wider than the screen, no console error."""
    made = Device(browser, live, viewport, scheme)
    name = f"{'desktop' if viewport is DESKTOP else 'phone'}-{scheme}"
    page = made.page
    try:
        made.login()
        tab(page, "Inpaint").click()
        page.get_by_label("Init image").set_input_files(files=[file_of("photo.png", png(256, 192))])
        expect(page.get_by_role("application", name="Mask: paint where to redraw")).to_be_visible()
        page.get_by_label("Prompt", exact=True).fill("a red door in a stone wall")
        page.locator(".mask-canvas").scroll_into_view_if_needed()
        box = page.locator(".mask-canvas").bounding_box()
        page.mouse.move(box["x"] + box["width"] * .3, box["y"] + box["height"] * .4)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * .65, box["y"] + box["height"] * .55, steps=8)
        page.mouse.up()
        page.evaluate("window.scrollTo(0, 0)")
        shots = [f"inpaint-{name}"]
        page.screenshot(path=str(artifacts / f"{shots[-1]}.png"))
        tab(page, "ControlNet").click()
        page.get_by_label("Control image").set_input_files(files=[file_of("edges.png", png(256, 192))])
        page.get_by_label("Canny edges").check()
        expect(page.get_by_role("img", name="Canny edges preview")).to_be_visible()
        shots.append(f"controlnet-{name}")
        page.screenshot(path=str(artifacts / f"{shots[-1]}.png"))
        tab(page, "Upscale").click()
        page.get_by_label("Image", exact=True).set_input_files(files=[file_of("small.png", png())])
        expect(page.get_by_role("img", name="The image to upscale")).to_be_visible()
        shots.append(f"upscale-{name}")
        page.screenshot(path=str(artifacts / f"{shots[-1]}.png"))
        tab(page, "Video").click()
        expect(page.get_by_label("Video frames")).to_be_attached()
        shots.append(f"video-{name}")
        page.screenshot(path=str(artifacts / f"{shots[-1]}.png"))
        if viewport is PHONE:
            page.get_by_role("button", name="Parameters").click()
            expect(page.get_by_label("Video frames")).to_be_in_viewport()
            page.get_by_label("LoRAs", exact=True).select_option("lora/sd1_lora")
            expect(page.get_by_label("Weight of sd1_lora")).to_have_value("1")
            page.get_by_label("Weight of sd1_lora").scroll_into_view_if_needed()
            page.wait_for_timeout(300)  # the sheet's slide-in
            shots.append(f"video-parameters-{name}")
            page.screenshot(path=str(artifacts / f"{shots[-1]}.png"))
            page.get_by_role("button", name="Done").click()
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"the generate view is {overflow}px wider than the {name} screen"
    finally:
        made.close()
    assert made.errors == []
    for shot in shots:
        assert (artifacts / f"{shot}.png").stat().st_size > 5000
