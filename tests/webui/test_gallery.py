"""The Gallery view in a real browser (Debian's Chromium through Playwright) against a live server with auth on:
search by prompt text, the starred filter, the full view (keyboard navigation, star, delete), reusing a result's
parameters in the Generate form, comparing two results with the slider, a user's gallery holding only their own
jobs, and screenshots of the gallery, the full view and the compare view (desktop and phone, light and dark).

The workers run a stand-in that draws each job's image from its prompt (a colour per job, so the screenshots and
the comparison show different images) in a few milliseconds: what is under test is the server's search, stars and
deletion and the page, not the native code (tests/webui/test_browser.py generates with the real model).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw
from browser_device import DESKTOP, PHONE, Device
from server_live import AUTH_USERS, LiveServer, add_users, client_as, login, make_config, wait_job

from sdrest.jobs.outputs import a1111_parameters, save_png
from sdrest.jobs.tasks import TaskContext, TaskResult
from sdrest.server.app import create_app
from sdrest.testing.browser import chromium_path

pytestmark = pytest.mark.skipif(chromium_path() is None, reason="no Chromium binary: apt-get install chromium")
sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

#: alice's jobs, oldest first (so the gallery, newest first, shows them in reverse): prompt -> (width, height, seed)
ALICE = {
    "a red fox in the snow": (64, 64, 11),
    "a red barn at dusk": (128, 64, 22),
    "a green forest path": (64, 64, 33),
    "a blue lake at dawn": (64, 128, 44),
    "an orange sunset over the sea": (64, 64, 55),
    "a purple flower": (64, 64, 66),
}
BOB = {"bob's secret castle": (64, 64, 77)}
STEPS = 2
#: the gallery's page size (js/views/gallery.js)
PAGE = 48
#: whether every image a selector finds has loaded (a function: the page's policy allows no string evaluation)
LOADED = "selector => [...document.querySelectorAll(selector)].every(i => i.complete && i.naturalWidth > 0)"


def paint(kind: str, params: dict[str, Any], ctx: TaskContext) -> TaskResult:
    """Stand-in for the native work: ``steps`` steps, then an image whose colours come from the prompt."""
    steps = params["steps"]
    for step in range(1, steps + 1):
        ctx.progress(step, steps, 0.0, "sampling")
    digest = hashlib.sha256(params["prompt"].encode()).digest()
    image = Image.new("RGB", (params["width"], params["height"]), tuple(digest[:3]))
    ImageDraw.Draw(image).ellipse((8, 8, params["width"] - 8, params["height"] - 8), fill=tuple(digest[3:6]))
    params["model_hash"] = "0123456789"
    save_png(image, ctx.output_dir / "000.png", a1111_parameters(params, params["seed"]))
    return TaskResult(["000.png"], {"seeds": [params["seed"]]})


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, synthetic_models: Path) -> Iterator[LiveServer]:
    """One server for the module: auth jwt with the users admin, alice and bob, and their finished jobs."""
    tmp = tmp_path_factory.mktemp("gallery-live")
    config = make_config(tmp, synthetic_models, auth="jwt")
    add_users(config.data_dir, AUTH_USERS)
    with LiveServer(create_app(config, runner=paint)) as server:
        for user, jobs in (("alice", ALICE), ("bob", BOB)):
            with client_as(server, login(server, user)["access_token"]) as client:
                for prompt, (width, height, seed) in jobs.items():
                    response = client.post("/api/generate/text2img", json={
                        "prompt": prompt, "negative_prompt": "blurry", "width": width, "height": height,
                        "steps": STEPS, "seed": seed, "model": "checkpoints/sd1"})
                    assert response.status_code == 202, response.text
                    assert wait_job(client, response.json()["job_id"])["status"] == "succeeded"
        yield server


def open_gallery(device: Device, user: str) -> Any:
    """Log in as ``user`` and open the Gallery view; the page, once its first page of results shows."""
    page = device.login(user)
    page.get_by_role("link", name="Gallery").click()
    expect(gallery_of(page).get_by_role("status")).to_contain_text("image")
    return page


def gallery_of(page: Any) -> Any:
    return page.get_by_role("region", name="Gallery")


def thumbnails(page: Any) -> Any:
    return gallery_of(page).get_by_role("list", name="Results found").get_by_role("img")


def names(page: Any) -> list[str]:
    return [img.get_attribute("alt") for img in thumbnails(page).all()]


def viewer(page: Any) -> Any:
    return page.get_by_role("dialog", name=re.compile(r"^Image \d+ of \d+$"))


def test_search_by_prompt_text_and_the_starred_filter(device: Device, live: LiveServer) -> None:
    page = open_gallery(device, "alice")
    expect(thumbnails(page)).to_have_count(len(ALICE))
    assert names(page) == list(reversed(ALICE))  # newest first, and none of bob's
    img = thumbnails(page).first
    expect(img).to_have_attribute("loading", "lazy")
    assert "thumb=1" in img.get_attribute("src")
    search = page.get_by_role("search", name="Search the gallery")
    search.get_by_label("Search prompts").fill("red")
    search.get_by_label("Search prompts").press("Enter")
    expect(thumbnails(page)).to_have_count(2)
    assert names(page) == ["a red barn at dusk", "a red fox in the snow"]
    search.get_by_label("Search prompts").fill('sunset NOT "(')  # FTS syntax is only text: "not" is a word
    search.get_by_role("button", name="Search").click()
    expect(gallery_of(page).get_by_role("status")).to_have_text("No images match.")
    expect(thumbnails(page)).to_have_count(0)
    search.get_by_label("Search prompts").fill("sunset")
    search.get_by_role("button", name="Search").click()
    expect(thumbnails(page)).to_have_count(1)
    search.get_by_label("Size").fill("64x128")
    search.get_by_label("Search prompts").fill("")
    search.get_by_role("button", name="Search").click()
    expect(thumbnails(page)).to_have_count(1)
    assert names(page) == ["a blue lake at dawn"]
    search.get_by_label("Size").fill("huge")
    search.get_by_role("button", name="Search").click()
    expect(search.get_by_label("Size")).to_have_attribute("aria-invalid", "true")
    expect(search.locator("#g-size-error")).to_have_text("width x height, e.g. 512x512")
    search.get_by_role("button", name="Reset").click()
    expect(search.get_by_label("Size")).not_to_have_attribute("aria-invalid", "true")
    expect(thumbnails(page)).to_have_count(len(ALICE))

    # star one from the full view; the starred filter then finds it alone
    gallery_of(page).get_by_role("button", name="Open image: a green forest path").click()
    dialog = viewer(page)
    star = dialog.get_by_role("button", name="Star")
    expect(star).to_have_attribute("aria-pressed", "false")
    star.click()
    expect(star).to_have_attribute("aria-pressed", "true")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    search.get_by_label("Starred only").check()
    expect(thumbnails(page)).to_have_count(1)
    assert names(page) == ["a green forest path"]
    with client_as(live, login(live, "alice")["access_token"]) as client:
        starred = client.get("/api/gallery", params={"starred": "true"}).json()["jobs"]
    assert [j["parameters"]["prompt"] for j in starred] == ["a green forest path"]


def test_the_full_view_navigates_by_keyboard_and_deletes(device: Device, live: LiveServer) -> None:
    page = open_gallery(device, "alice")
    first = list(reversed(ALICE))
    expect(thumbnails(page)).to_have_count(len(first))
    gallery_of(page).get_by_role("button", name=f"Open image: {first[0]}").click()
    dialog = page.get_by_role("dialog", name=f"Image 1 of {len(first)}")
    expect(dialog.get_by_role("img")).to_have_attribute("alt", first[0])
    expect(dialog.get_by_role("link", name="Download")).to_have_attribute("href", re.compile(r"download=true"))
    page.keyboard.press("ArrowRight")
    dialog = page.get_by_role("dialog", name=f"Image 2 of {len(first)}")
    expect(dialog.get_by_role("img")).to_have_attribute("alt", first[1])
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowLeft")
    expect(dialog.get_by_role("img")).to_have_attribute("alt", first[1])
    page.keyboard.press("ArrowLeft")
    expect(page.get_by_role("dialog", name=f"Image 1 of {len(first)}")).to_be_visible()
    page.keyboard.press("ArrowLeft")  # the first has no previous
    expect(page.get_by_role("dialog", name=f"Image 1 of {len(first)}")).to_be_visible()

    # delete the first (the newest) after confirming; the view moves on to the next one
    doomed = first[0]
    doomed_id = next(j.id for j in live.queue.list_jobs() if j.params.get("prompt") == doomed)
    dialog = viewer(page)
    dialog.get_by_role("button", name="Delete", exact=True).click()
    confirm = dialog.get_by_role("group", name="Confirm deletion")
    confirm.get_by_role("button", name="Keep").click()
    expect(confirm).to_be_hidden()
    dialog.get_by_role("button", name="Delete", exact=True).click()
    confirm.get_by_role("button", name="Delete for good").click()
    expect(page.get_by_role("dialog", name=f"Image 1 of {len(first) - 1}").get_by_role("img")).to_have_attribute(
        "alt", first[1])
    page.keyboard.press("Escape")
    expect(thumbnails(page)).to_have_count(len(first) - 1)
    assert doomed not in names(page)
    assert live.queue.get(doomed_id) is None
    assert not (live.state.config.data_dir / "outputs" / doomed_id).exists()
    expect(gallery_of(page).get_by_role("button", name=f"Open image: {first[1]}")).to_be_focused()  # Esc: back where it was


def test_reuse_a_results_parameters_in_the_generate_form(device: Device, live: LiveServer) -> None:
    page = open_gallery(device, "alice")
    gallery_of(page).get_by_role("button", name="Open image: a red barn at dusk").click()
    viewer(page).get_by_role("button", name="Reuse all").click()
    expect(page).to_have_url(re.compile(r"#/generate$"))
    width, height, seed = ALICE["a red barn at dusk"]
    expect(page.get_by_label("Prompt", exact=True)).to_have_value("a red barn at dusk")
    expect(page.get_by_label("Negative prompt")).to_have_value("blurry")
    expect(page.get_by_label("Width")).to_have_value(str(width))
    expect(page.get_by_label("Height")).to_have_value(str(height))
    expect(page.get_by_label("Steps")).to_have_value(str(STEPS))
    expect(page.get_by_label("Seed")).to_have_value(str(seed))
    expect(page.get_by_label("Model", exact=True)).to_have_value("checkpoints/sd1")

    # one part alone: the seed of another result, the rest as it was
    page.get_by_role("link", name="Gallery").click()
    gallery_of(page).get_by_role("button", name="Open image: a blue lake at dawn").click()
    viewer(page).get_by_role("button", name="Reuse seed").click()
    expect(page.get_by_label("Seed")).to_have_value(str(ALICE["a blue lake at dawn"][2]))
    expect(page.get_by_label("Prompt", exact=True)).to_have_value("a red barn at dusk")
    page.get_by_role("link", name="Gallery").click()
    gallery_of(page).get_by_role("button", name="Open image: a blue lake at dawn").click()
    viewer(page).get_by_role("button", name="Reuse size").click()
    expect(page.get_by_label("Height")).to_have_value("128")
    expect(page.get_by_label("Width")).to_have_value("64")
    # the form keeps what was reused across a reload
    page.reload()
    expect(page.get_by_label("Height")).to_have_value("128")
    expect(page.get_by_label("Prompt", exact=True)).to_have_value("a red barn at dusk")


def test_compare_two_results_with_the_slider_and_side_by_side(device: Device) -> None:
    page = open_gallery(device, "alice")
    gallery = gallery_of(page)
    compare_button = gallery.get_by_role("button", name="Compare", exact=True)
    gallery.get_by_role("checkbox", name="Select for comparison: a red fox in the snow").check()
    expect(compare_button).to_be_disabled()
    gallery.get_by_role("checkbox", name="Select for comparison: a green forest path").check()
    compare_button.click()
    dialog = page.get_by_role("dialog", name="Compare")
    slider = dialog.get_by_role("slider", name="Compare position")
    expect(slider).to_be_focused()
    expect(slider).to_have_value("50")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    expect(slider).to_have_value("52")
    stage = dialog.locator(".compare-stage")
    assert stage.evaluate("el => el.style.getPropertyValue('--pos')") == "52%"
    page.keyboard.press("Home")
    expect(slider).to_have_value("0")
    expect(dialog.get_by_role("img")).to_have_count(2)
    dialog.get_by_label("Side by side").check()
    expect(dialog.get_by_role("slider")).to_have_count(0)
    expect(dialog.get_by_role("img", name="a red fox in the snow")).to_be_visible()
    expect(dialog.get_by_role("img", name="a green forest path")).to_be_visible()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()


def test_a_user_sees_only_their_own_jobs(device: Device) -> None:
    page = open_gallery(device, "bob")
    expect(thumbnails(page)).to_have_count(1)
    assert names(page) == list(BOB)
    search = page.get_by_role("search", name="Search the gallery")
    search.get_by_label("Search prompts").fill("red")
    search.get_by_label("Search prompts").press("Enter")
    expect(gallery_of(page).get_by_role("status")).to_have_text("No images match.")
    expect(thumbnails(page)).to_have_count(0)


def test_the_next_page_loads_as_the_end_of_the_grid_comes_into_view(device: Device, live: LiveServer) -> None:
    """More results than one page (48): the rest come as the grid's end scrolls into view."""
    with client_as(live, login(live, "admin")["access_token"]) as client:
        ids = []
        for index in range(PAGE + 4):
            response = client.post("/api/generate/text2img", json={
                "prompt": f"tile number {index}", "width": 64, "height": 64, "steps": 1, "seed": index})
            assert response.status_code == 202, response.text
            ids.append(response.json()["job_id"])
        for job_id in ids:
            wait_job(client, job_id)
    page = open_gallery(device, "admin")
    search = page.get_by_role("search", name="Search the gallery")
    search.get_by_label("Search prompts").fill("tile number")
    search.get_by_label("Search prompts").press("Enter")
    expect(thumbnails(page)).to_have_count(PAGE)
    gallery_of(page).get_by_role("button", name="Load more").scroll_into_view_if_needed()
    expect(thumbnails(page)).to_have_count(PAGE + 4)
    expect(gallery_of(page).get_by_role("button", name="Load more")).to_be_hidden()
    assert names(page)[0] == f"tile number {PAGE + 3}" and names(page)[-1] == "tile number 0"


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_screenshots_of_the_gallery_and_compare(browser: Any, live: LiveServer, artifacts: Path,
                                               viewport: dict[str, int], scheme: str) -> None:
    """The gallery, its full view and the compare view at 1280x800 and 390x844, light and dark: nothing wider
    than the screen, no console error."""
    made = Device(browser, live, viewport, scheme)
    name = f"{'desktop' if viewport is DESKTOP else 'phone'}-{scheme}"
    try:
        page = open_gallery(made, "alice")
        expect(thumbnails(page).first).to_be_visible()
        page.wait_for_function(LOADED, arg=".gallery-grid img")
        page.screenshot(path=str(artifacts / f"gallery-{name}.png"))
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"the gallery is {overflow}px wider than the {name} screen"
        gallery = gallery_of(page)
        gallery.get_by_role("button", name="Open image: a red barn at dusk").click()
        expect(viewer(page).get_by_role("img")).to_be_visible()
        page.wait_for_function(LOADED, arg=".gallery-viewer img")
        page.screenshot(path=str(artifacts / f"gallery-viewer-{name}.png"))
        page.keyboard.press("Escape")
        for prompt in ("a red barn at dusk", "a green forest path"):
            gallery.get_by_role("checkbox", name=f"Select for comparison: {prompt}").check()
        page.screenshot(path=str(artifacts / f"gallery-selected-{name}.png"))
        gallery.get_by_role("button", name="Compare", exact=True).click()
        dialog = page.get_by_role("dialog", name="Compare")
        expect(dialog.get_by_role("slider", name="Compare position")).to_be_focused()
        page.wait_for_function(LOADED, arg=".compare img")
        page.keyboard.press("ArrowLeft")
        page.screenshot(path=str(artifacts / f"compare-{name}.png"))
        dialog.get_by_label("Side by side").check()
        page.wait_for_function(LOADED, arg=".compare img")
        page.screenshot(path=str(artifacts / f"compare-side-{name}.png"))
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"the compare view is {overflow}px wider than the {name} screen"
    finally:
        made.close()
    assert made.errors == []
    for view in ("gallery", "gallery-viewer", "compare", "compare-side"):
        assert (artifacts / f"{view}-{name}.png").stat().st_size > 5000
