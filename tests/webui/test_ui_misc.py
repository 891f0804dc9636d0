"""The web UI's smaller parts in a real browser (Debian's Chromium through Playwright) against one live server with
auth on, the synthetic models plus 2000 stub files, and presets and prompt templates: skipping the rest of a batch
and clearing one's queue from the Queue region, the prompt-weight keys and the shortcut list, the paged models
table (search, filters, hash, convert with progress), the admin controls a plain user never sees, API keys (shown
once, listed, revoked, and really accepted by the API), presets, and screenshots of the models and account views.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from browser_device import DESKTOP, PHONE, Device
from server_live import AUTH_USERS, LiveServer, add_users, make_config, password_of

from sdrest.server.app import create_app
from sdrest.testing.browser import chromium_path

pytestmark = pytest.mark.skipif(chromium_path() is None, reason="no Chromium binary: apt-get install chromium")
sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

STUBS = 2000
#: two tensors of an SD1 LoRA: enough for the registry to classify a header-only file
LORA = [("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight", (4, 768)),
        ("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_up.weight", (320, 4))]
SLOW = 240_000  # ms: a generation on a busy 2-core machine


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, synthetic_models: Path) -> Iterator[LiveServer]:
    """Auth jwt (admin, alice, bob), the real workers; 2000 LoRA stubs and a preset and templates beside them."""
    from sdrest.testing.headers import write_safetensors

    bulk = synthetic_models / "lora" / "bulk"
    bulk.mkdir(parents=True, exist_ok=True)
    for index in range(STUBS):
        write_safetensors(bulk / f"bulk-{index:04d}.safetensors", LORA)
    for rel, text in (("presets/small-square.json", json.dumps({"width": 64, "height": 64, "steps": 3,
                                                                "cfg_scale": 5.5})),
                      ("prompts/watercolor.txt", "a watercolor painting of {prompt}"),
                      ("neg_prompts/clean.txt", "blurry, lowres")):
        (synthetic_models / rel).parent.mkdir(parents=True, exist_ok=True)
        (synthetic_models / rel).write_text(text)
    tmp = tmp_path_factory.mktemp("webui-misc")
    config = make_config(tmp, synthetic_models, auth="jwt", cancel_grace_seconds=120.0)
    add_users(config.data_dir, AUTH_USERS)
    with LiveServer(create_app(config)) as server:
        yield server


def queue_item(page: Any, prompt: str) -> Any:
    return page.get_by_role("region", name="Queue").get_by_role("listitem").filter(has_text=prompt)


def test_keyboard_weights_the_shortcut_list_and_a_preset(device: Device) -> None:
    page = device.login("alice")
    prompt = page.get_by_label("Prompt", exact=True)
    prompt.fill("a red fox")
    prompt.evaluate("el => el.setSelectionRange(3, 3)")  # the cursor inside "red"
    prompt.press("Control+ArrowUp")
    expect(prompt).to_have_value("a (red:1.1) fox")
    prompt.press("Control+ArrowUp")
    expect(prompt).to_have_value("a (red:1.2) fox")
    for _ in range(3):
        prompt.press("Control+ArrowDown")
    expect(prompt).to_have_value("a (red:0.9) fox")
    prompt.press("Control+ArrowUp")
    expect(prompt).to_have_value("a red fox")  # back to 1.0: no parentheses
    negative = page.get_by_label("Negative prompt")
    negative.fill("ugly, blurry")
    negative.evaluate("el => el.setSelectionRange(0, 4)")
    negative.press("Control+ArrowDown")
    expect(negative).to_have_value("(ugly:0.9), blurry")

    # ? inside a text field is a character; outside, it opens the list, which Esc closes
    prompt.press("End")
    prompt.press("?")
    expect(prompt).to_have_value("a red fox?")
    expect(page.get_by_role("dialog")).to_have_count(0)
    page.get_by_role("heading", name="Results").click()
    page.keyboard.press("?")
    dialog = page.get_by_role("dialog", name="Keyboard shortcuts")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text(re.compile(r"Ctrl\+↑ / Ctrl\+↓\s*In a prompt: raise or lower the weight"))
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()

    # a preset sets the form's fields; a template fills the prompt around what it said
    page.get_by_label("Preset").select_option(label="small-square")
    expect(page.get_by_label("Width")).to_have_value("64")
    expect(page.get_by_label("Steps")).to_have_value("3")
    expect(page.get_by_label("CFG scale")).to_have_value("5.5")
    expect(page.get_by_role("status").filter(has_text="Applied preset small-square")).to_be_visible()
    prompt.fill("a red fox")
    page.get_by_label("Prompt template").select_option(label="watercolor")
    expect(prompt).to_have_value("a watercolor painting of a red fox")
    page.get_by_label("Negative template").select_option(label="clean")
    expect(negative).to_have_value("blurry, lowres")
    # the status bar names the device the workers compute on
    expect(page.get_by_role("contentinfo", name="Status")).to_contain_text(re.compile(r"Device\s*CPU"))


def test_skip_the_rest_of_a_batch_and_clear_mine(device: Device, live: LiveServer) -> None:
    page = device.login("bob")
    page.get_by_label("Model", exact=True).select_option("checkpoints/sd1")
    page.get_by_label("Width").fill("64")
    page.get_by_label("Height").fill("64")
    page.get_by_label("Steps").fill("8")
    page.get_by_label("Batch count").fill("4")
    page.get_by_label("Seed").fill("5")
    page.get_by_label("Prompt", exact=True).fill("a batch of boats")
    page.get_by_role("button", name="Generate").click()
    running = queue_item(page, "a batch of boats")
    expect(running).to_contain_text(re.compile(r"Step [1-9]/8"), timeout=SLOW)
    # two more behind it, then "Clear mine" cancels those and leaves the running one alone
    page.get_by_label("Batch count").fill("1")
    for prompt in ("a waiting kite", "a waiting bell"):
        page.get_by_label("Prompt", exact=True).fill(prompt)
        page.get_by_label("Prompt", exact=True).press("Control+Enter")
        expect(queue_item(page, prompt)).to_contain_text("Queued")
    page.get_by_role("button", name="Clear mine").click()
    expect(queue_item(page, "a waiting kite")).to_contain_text("Cancelled")
    expect(queue_item(page, "a waiting bell")).to_contain_text("Cancelled")
    expect(page.get_by_role("button", name="Clear mine")).to_be_hidden()
    expect(running).to_contain_text("Running")
    # skip the rest: the image being sampled finishes, the job succeeds with fewer images
    running.get_by_role("button", name="Skip the rest of the batch: a batch of boats").click()
    expect(running).to_contain_text("skipping the rest")
    expect(running).to_contain_text(re.compile(r"Done.*\d image\(s\) · [123] skipped"), timeout=SLOW)
    job = next(j for j in live.queue.list_jobs() if j.params.get("prompt") == "a batch of boats")
    assert job.status == "succeeded" and 1 <= len(job.outputs) < 4 and job.result["skipped"] == 4 - len(job.outputs)


def test_models_table_pages_searches_filters_hashes_and_converts(device: Device, live: LiveServer) -> None:
    page = device.login("admin")
    page.get_by_role("link", name="Models").click()
    view = page.get_by_role("region", name="Models")
    table = view.get_by_role("table")
    count = view.locator(".pager-count")
    expect(count).to_contain_text(re.compile(r"20\d\d models · page 1 of 41"))
    expect(table.locator("tbody tr")).to_have_count(50)
    view.get_by_role("button", name="Next").click()
    expect(count).to_contain_text("page 2 of 41")
    # a page from the server stays fast with thousands of files
    started = time.monotonic()
    deep = live.client.get("/api/models", params={"page": 40, "limit": 50, "sort_by": "type"},
                           headers={"Authorization": f"Bearer {token(live, 'admin')}"})
    assert deep.status_code == 200 and len(deep.json()["models"]) == 50
    assert time.monotonic() - started < 1.0
    view.get_by_label("Search models").fill("bulk-1234")
    expect(count).to_contain_text("1 model · page 1 of 1")
    expect(table.locator("tbody tr")).to_have_count(1)
    view.get_by_label("Search models").fill("")
    view.get_by_label("Kind").select_option("checkpoint")
    row = table.get_by_role("row", name=re.compile(r"^sd1 "))
    expect(row).to_contain_text("SD 1.x")
    expect(count).to_contain_text(re.compile(r"^\d model"))
    view.get_by_label("Kind").select_option("")
    view.get_by_label("Architecture").select_option("SD 1.x")
    expect(count).to_contain_text(re.compile(r"20\d\d models"))

    # hash, then convert with its progress followed to the end
    view.get_by_label("Architecture").select_option("")
    view.get_by_label("Search models").fill("sd1_lora")
    lora = table.get_by_role("row", name=re.compile(r"^sd1_lora "))
    lora.get_by_role("button", name="Hash sd1_lora").click()
    tasks = view.get_by_role("list", name="Model tasks")
    expect(tasks.get_by_role("listitem").filter(has_text="Hash sd1_lora")).to_contain_text("Done", timeout=SLOW)
    expect(lora).to_contain_text(re.compile(r"hash [0-9a-f]{10}"))
    expect(lora.get_by_role("button", name="Hash sd1_lora")).to_be_disabled()
    lora.get_by_role("button", name="Convert sd1_lora").click()
    dialog = page.get_by_role("dialog", name="Convert sd1_lora")
    dialog.get_by_label("Quantization type").select_option("q8_0")
    dialog.get_by_role("button", name="Start conversion").click()
    task = tasks.get_by_role("listitem").filter(has_text="Convert sd1_lora to q8_0")
    expect(task.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "100", timeout=SLOW)
    expect(task).to_contain_text("Done: lora/sd1_lora.q8_0.gguf")
    expect(table.get_by_role("row", name=re.compile(r"^sd1_lora\.q8_0 "))).to_contain_text("q8_0")
    assert (live.state.registry.root / "lora" / "sd1_lora.q8_0.gguf").read_bytes()[:4] == b"GGUF"


def token(live: LiveServer, user: str) -> str:
    answer = live.client.post("/api/auth/login", json={"username": user, "password": password_of(user)})
    return answer.json()["access_token"]


def test_a_plain_user_has_no_admin_controls_and_manages_api_keys(device: Device, live: LiveServer) -> None:
    page = device.login("alice")
    page.get_by_role("link", name="Models").click()
    view = page.get_by_role("region", name="Models")
    expect(view.get_by_role("table").locator("tbody tr")).to_have_count(50)
    expect(view.get_by_role("table").get_by_role("button")).to_have_count(0)
    expect(view.get_by_role("columnheader", name="Actions")).to_have_count(0)

    page.get_by_role("button", name="Account: alice").click()
    dialog = page.get_by_role("dialog", name="Account")
    expect(dialog).to_contain_text("alice")
    expect(dialog).to_contain_text("No API keys.")
    dialog.get_by_label("New key label").fill("my script")
    dialog.get_by_role("button", name="Create key").click()
    secret = dialog.get_by_label("New API key")
    expect(secret).not_to_have_value("")
    key = secret.input_value()
    keys = dialog.get_by_role("list", name="Your API keys")
    expect(keys.get_by_role("listitem")).to_have_count(1)
    expect(keys).to_contain_text("my script")
    dialog.get_by_role("button", name="Copy").click()
    expect(dialog.get_by_role("button", name="Copied")).to_be_visible()
    # the key really works, as alice
    with httpx.Client(base_url=live.url) as client:
        me = client.get("/api/auth/me", headers={"Authorization": f"Bearer {key}"})
        assert me.status_code == 200 and me.json()["username"] == "alice"
        # shown once: opening the dialog again lists the key, never the secret
        dialog.get_by_role("button", name="Close").click()
        page.get_by_role("button", name="Account: alice").click()
        expect(keys.get_by_role("listitem")).to_have_count(1)
        expect(dialog.get_by_label("New API key")).to_have_count(0)
        keys.get_by_role("button", name="Revoke key: my script").click()
        expect(dialog).to_contain_text("No API keys.")
        assert client.get("/api/auth/me", headers={"Authorization": f"Bearer {key}"}).status_code == 401


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_screenshots_of_models_and_account(browser: Any, live: LiveServer, artifacts: Path,
                                           viewport: dict[str, int], scheme: str) -> None:
    made = Device(browser, live, viewport, scheme)
    name = f"{'desktop' if viewport is DESKTOP else 'phone'}-{scheme}"
    page = made.page
    try:
        made.login("admin")
        page.get_by_role("link", name="Models").click()
        expect(page.get_by_role("table").locator("tbody tr")).to_have_count(50)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"the models view is {overflow}px wider than the {name} screen"
        page.screenshot(path=str(artifacts / f"models-table-{name}.png"))
        page.get_by_role("button", name="Account: admin").click()
        dialog = page.get_by_role("dialog", name="Account")
        dialog.get_by_label("New key label").fill(f"screenshot {name}")
        dialog.get_by_role("button", name="Create key").click()
        expect(dialog.get_by_label("New API key")).not_to_have_value("")
        page.screenshot(path=str(artifacts / f"account-{name}.png"))
        page.keyboard.press("Escape")
        page.get_by_role("link", name="Generate").click()
        expect(page.get_by_label("Preset")).to_be_visible()
        page.screenshot(path=str(artifacts / f"generate-presets-{name}.png"))
        page.get_by_role("heading", name="Results").click()
        page.keyboard.press("?")
        expect(page.get_by_role("dialog", name="Keyboard shortcuts")).to_be_visible()
        page.screenshot(path=str(artifacts / f"shortcuts-{name}.png"))
    finally:
        made.context.close()
    assert made.errors == []
