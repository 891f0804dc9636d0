"""The web UI in a real browser (Debian's Chromium through Playwright) against a live server with auth on, the
synthetic SD1 model and real workers: log in, generate and watch, reload, a second device, cancel, a plain user's
view, loading and unloading a model, and screenshots of every view (desktop and phone, light and dark).

The tests share one server and run in file order: the first loads the model (as an admin, through the Models
view) and the last unloads it, so the model loads once.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser_device import DESKTOP, PHONE, Device
from server_live import AUTH_USERS, LiveServer, add_users, make_config, until

from sdrest.server.app import create_app
from sdrest.testing.browser import chromium_path

pytestmark = pytest.mark.skipif(chromium_path() is None, reason="no Chromium binary: apt-get install chromium")
sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

#: long enough on a busy 2-core machine to catch the job mid-run
SLOW_STEPS = 40
GENERATION_SECONDS = 240


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, synthetic_models: Path) -> Iterator[LiveServer]:
    """One server for the module: auth jwt with the users admin, alice and bob, the real workers."""
    tmp = tmp_path_factory.mktemp("webui-live")
    # a cancelled job stops at its next step; on a busy machine that may take a while, and a worker killed for
    # being slow would drop the loaded model the later tests look at
    config = make_config(tmp, synthetic_models, auth="jwt", cancel_grace_seconds=120.0)
    add_users(config.data_dir, AUTH_USERS)
    with LiveServer(create_app(config)) as server:
        yield server


def queue_of(page: Any) -> Any:
    return page.get_by_role("region", name="Queue")


def job_item(page: Any, job_id: str) -> Any:
    return queue_of(page).locator(f'li[data-job-id="{job_id}"]')


def progress_of(item: Any) -> int:
    return int(item.get_by_role("progressbar").get_attribute("aria-valuenow"))


def set_size(page: Any, steps: int) -> None:
    page.get_by_label("Width").fill("64")
    page.get_by_label("Height").fill("64")
    page.get_by_label("Steps").fill(str(steps))


def newest_job_id(live: LiveServer, prompt: str) -> str:
    """The id of the newest job with ``prompt`` (read from the server's store)."""
    def find() -> str | None:
        jobs = [j for j in live.queue.list_jobs(newest_first=True) if j.params.get("prompt") == prompt]
        return jobs[0].id if jobs else None
    return until(find, 30, f"no job with prompt {prompt!r}")


def test_an_admin_loads_a_model_from_the_models_view(device: Device) -> None:
    page = device.login("admin")
    page.get_by_role("link", name="Models").click()
    table = page.get_by_role("table")
    row = table.get_by_role("row", name=re.compile(r"^sd1 "))
    expect(row).to_contain_text("checkpoint")
    expect(row).to_contain_text("SD 1.x")
    expect(row).to_contain_text("f16")
    expect(row).to_contain_text("2.0 GB")
    expect(row).to_contain_text("Not loaded")
    row.get_by_role("button", name="Load sd1").click()
    expect(row.get_by_role("button", name="Unload sd1")).to_be_visible(timeout=GENERATION_SECONDS * 1000)
    expect(row).to_contain_text("Loaded")
    expect(page.get_by_role("contentinfo", name="Status")).to_contain_text("sd1")
    # a model that cannot be loaded on its own (a VAE) has no Load button (Hash and Convert it has)
    vae = table.get_by_role("row", name=re.compile(r"^sd1_vae "))
    expect(vae.get_by_role("button", name="Hash sd1_vae")).to_be_visible()
    expect(vae.get_by_role("button", name=re.compile(r"^(Load|Unload) "))).to_have_count(0)


def test_generate_shows_field_errors_then_progress_to_the_image(device: Device, live: LiveServer) -> None:
    page = device.login("admin")
    # the form comes from /api/parameters: defaults, ranges, and the rest folded
    steps = page.get_by_label("Steps")
    expect(steps).to_have_attribute("min", "1")
    expect(steps).to_have_attribute("max", "500")
    expect(page.get_by_text(re.compile(r"More parameters \(\d+\)"))).to_be_visible()
    # choosing a model applies its architecture's defaults
    page.get_by_label("Model", exact=True).select_option("checkpoints/sd1")
    expect(page.get_by_label("Width")).to_have_value("512")
    # what the schema says is checked before sending; the error shows next to its field
    set_size(page, 4)
    width = page.get_by_label("Width")
    width.fill("100")
    page.get_by_label("Prompt", exact=True).fill("a red fox")
    page.get_by_role("button", name="Generate").click()
    expect(width).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#err-width")).to_have_text("a multiple of 8")
    # what only the server knows (its max_pixels) comes back as an API error, shown the same way
    device.expected.append("status of 422")
    width.fill("8192")
    page.get_by_label("Height").fill("4096")
    page.get_by_role("button", name="Generate").click()
    expect(page.locator("#err-width")).to_contain_text("more than")
    expect(width).to_have_attribute("aria-invalid", "true")
    assert all(j.params.get("prompt") != "a red fox" for j in live.queue.list_jobs())
    width.fill("64")
    page.get_by_label("Height").fill("64")
    page.get_by_role("button", name="Generate").click()
    expect(width).not_to_have_attribute("aria-invalid", "true")

    job_id = newest_job_id(live, "a red fox")
    item = job_item(page, job_id)
    expect(item).to_contain_text("64×64")
    expect(item.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "100",
                                                             timeout=GENERATION_SECONDS * 1000)
    expect(item).to_contain_text("Done", timeout=GENERATION_SECONDS * 1000)  # after the VAE decode
    image = page.get_by_role("region", name="Results").get_by_role("img", name="a red fox").first
    expect(image).to_be_visible()
    until(lambda: image.evaluate("img => img.complete && img.naturalWidth") == 64, 30, "the image did not load")
    # reuse: the viewer puts the parameters (prompt, seed, size) back into the form
    seed = live.queue.get(job_id).params["seed"]
    page.get_by_label("Prompt", exact=True).fill("something else")
    page.get_by_role("button", name="Open image: a red fox").click()
    dialog = page.get_by_role("dialog", name="Image")
    expect(dialog.get_by_role("link", name="Download")).to_have_attribute("href", re.compile(r"download=true"))
    expect(dialog.get_by_role("group", name="Send to").get_by_role("button")).to_have_count(3)
    dialog.get_by_role("button", name="Reuse all").click()
    expect(page.get_by_label("Prompt", exact=True)).to_have_value("a red fox")
    expect(page.get_by_label("Seed")).to_have_value(str(seed))


def test_a_job_survives_a_reload_shows_on_a_second_device_and_cancels_alone(
        browser: Any, device: Device, live: LiveServer) -> None:
    page = device.login("admin")
    set_size(page, SLOW_STEPS)
    page.get_by_label("Seed").fill("")
    page.get_by_label("Prompt", exact=True).fill("a slow lighthouse")
    page.get_by_role("button", name="Generate").click()
    running = newest_job_id(live, "a slow lighthouse")
    item = job_item(page, running)
    expect(item).to_contain_text(re.compile(rf"Step [1-9]\d*/{SLOW_STEPS}"), timeout=GENERATION_SECONDS * 1000)
    expect(item).to_contain_text("ETA")

    # a second job while the first runs, with Ctrl+Enter from inside the prompt field
    page.get_by_label("Prompt", exact=True).fill("a queued harbour")
    page.get_by_label("Prompt", exact=True).press("Control+Enter")
    queued = newest_job_id(live, "a queued harbour")
    expect(job_item(page, queued)).to_contain_text("Queued")

    # a reload: the same job, still progressing; the form kept its values
    page.reload()
    expect(page.get_by_role("contentinfo", name="Status")).to_contain_text("Live")
    item = job_item(page, running)
    expect(item).to_contain_text("Running")
    before = progress_of(item)
    until(lambda: progress_of(item) > before, 60, "the job's progress did not move after the reload")
    expect(page.get_by_label("Steps")).to_have_value(str(SLOW_STEPS))

    # a second device sees the same queue and cancels exactly the job chosen
    other = Device(browser, live)
    try:
        second = other.login("admin")
        expect(job_item(second, running)).to_contain_text("Running")
        expect(job_item(second, queued)).to_contain_text("Queued")
        job_item(second, queued).get_by_role("button", name="Cancel job: a queued harbour").click()
        expect(job_item(second, queued)).to_contain_text("Cancelled")
        expect(job_item(page, queued)).to_contain_text("Cancelled")
        assert live.queue.get(running).status == "running"
        # Esc (outside text fields) cancels the current job
        page.get_by_role("heading", name="Queue").click()
        page.keyboard.press("Escape")
        expect(job_item(page, running)).to_contain_text("Cancelled", timeout=60_000)
        expect(job_item(second, running)).to_contain_text("Cancelled", timeout=60_000)
    finally:
        other.close()
    assert other.errors == []
    assert live.queue.get(running).status == "cancelled"
    assert live.queue.get(queued).status == "cancelled"
    assert [j.status for j in live.queue.list_jobs() if j.params.get("prompt") == "a red fox"] == ["succeeded"]


def test_a_plain_user_has_no_admin_controls_and_sees_only_their_jobs(device: Device, live: LiveServer) -> None:
    page = device.login("alice")
    expect(page.get_by_role("banner")).to_contain_text("alice")
    expect(queue_of(page)).to_contain_text("Nothing queued")
    expect(queue_of(page).get_by_role("listitem")).to_have_count(0)
    expect(page.get_by_role("region", name="Results").get_by_role("img")).to_have_count(0)
    page.get_by_role("link", name="Models").click()
    table = page.get_by_role("table")
    expect(table.get_by_role("row", name=re.compile(r"^sd1 "))).to_contain_text("Loaded")
    expect(table.get_by_role("button")).to_have_count(0)
    expect(table.get_by_role("columnheader", name="Actions")).to_have_count(0)
    # log-out ends the session: the log-in form again
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    assert device.context.cookies() == [] or all(c["value"] == "" for c in device.context.cookies())


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_screenshots_of_each_view(browser: Any, live: LiveServer, artifacts: Path, viewport: dict[str, int],
                                  scheme: str) -> None:
    """Every view at 1280x800 and 390x844, light and dark: nothing wider than the screen, no console error."""
    made = Device(browser, live, viewport, scheme)
    name = f"{'desktop' if viewport is DESKTOP else 'phone'}-{scheme}"
    page = made.page
    try:
        page.goto(f"{live.url}/")
        expect(page.get_by_role("heading", name="Log in")).to_be_visible()
        shots = {"login": None}
        page.screenshot(path=str(artifacts / f"login-{name}.png"))
        made.login("admin")
        expect(page.get_by_role("region", name="Results").get_by_role("img").first).to_be_visible()
        shots["generate"] = page.screenshot(path=str(artifacts / f"generate-{name}.png"))
        if viewport is PHONE:
            sheet = page.get_by_role("region", name="Parameters")
            expect(sheet).not_to_be_in_viewport()
            page.get_by_role("button", name="Parameters").click()
            expect(sheet).to_be_in_viewport()
            expect(page.get_by_label("Steps")).to_be_visible()
            page.wait_for_timeout(300)  # the sheet's slide-in
            page.screenshot(path=str(artifacts / f"parameters-{name}.png"))
            page.get_by_role("button", name="Done").click()
        page.get_by_role("link", name="Models").click()
        expect(page.get_by_role("table")).to_be_visible()
        page.screenshot(path=str(artifacts / f"models-{name}.png"))
        for view in ("#/models", "#/generate"):
            page.goto(f"{live.url}/ui/{view}")
            expect(page.get_by_role("contentinfo", name="Status")).to_contain_text("Live")
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{view} is {overflow}px wider than the {name} screen"
    finally:
        made.close()
    assert made.errors == []
    for view in ("login", "generate", "models"):
        assert (artifacts / f"{view}-{name}.png").stat().st_size > 5000


def test_an_admin_unloads_the_model(device: Device) -> None:
    page = device.login("admin")
    page.get_by_role("link", name="Models").click()
    row = page.get_by_role("table").get_by_role("row", name=re.compile(r"^sd1 "))
    row.get_by_role("button", name="Unload sd1").click()
    expect(row.get_by_role("button", name="Load sd1")).to_be_visible(timeout=60_000)
    expect(row).to_contain_text("Not loaded")
    expect(page.get_by_role("contentinfo", name="Status")).to_contain_text("none loaded")
