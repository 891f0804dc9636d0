"""Events, outputs, metrics, config: the small parts of the jobs layer and the settings schema."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
from PIL import Image

from sdrest.config import ServerConfig, load_config
from sdrest.jobs.events import EventBus
from sdrest.jobs.metrics import Metrics
from sdrest.jobs.outputs import (
    a1111_parameters,
    parse_a1111_parameters,
    safe_name,
    save_png,
    thumbnail,
)


def test_events_cross_from_threads_to_the_loop() -> None:
    async def main() -> list[dict]:
        bus = EventBus()
        mine = bus.subscribe("job-1")
        everything = bus.subscribe()
        worker = threading.Thread(target=lambda: [bus.publish({"type": "progress", "job_id": j, "step": 1})
                                                  for j in ("job-1", "job-2")])
        worker.start()
        worker.join()
        got = [await asyncio.wait_for(mine.queue.get(), 5)]
        got += [await asyncio.wait_for(everything.queue.get(), 5) for _ in range(2)]
        assert mine.queue.empty()
        bus.unsubscribe(mine)
        bus.publish({"type": "state", "job_id": "job-1"})
        await asyncio.wait_for(everything.queue.get(), 5)
        assert mine.queue.empty()
        return got

    got = asyncio.run(main())
    assert [e["job_id"] for e in got] == ["job-1", "job-1", "job-2"]
    assert got[1]["id"] < got[2]["id"]


def test_png_parameters_round_trip(tmp_path: Path) -> None:
    params = {"prompt": "a cat, sitting", "negative_prompt": "blurry", "steps": 20, "sampler": "euler_a",
              "scheduler": "karras", "cfg_scale": 7.0, "width": 64, "height": 48, "model_hash": "abcdef0123",
              "model_name": "sd1", "loras": [{"name": "style", "multiplier": 0.5, "hash": "0123456789ab"}]}
    text = a1111_parameters(params, 1234)
    assert text.splitlines()[-1].startswith("Steps: 20, Sampler: Euler a, Schedule type: Karras, CFG scale: 7.0")
    path = tmp_path / "000.png"
    save_png(Image.new("RGB", (64, 48)), path, text)
    assert not list(tmp_path.glob(".*partial"))
    with Image.open(path) as img:
        meta = parse_a1111_parameters(img.info["parameters"])
    assert meta["prompt"] == "a cat, sitting <lora:style:0.5>" and meta["Seed"] == "1234" and meta["Size"] == "64x48"
    assert meta["Model hash"] == "abcdef0123" and meta["Lora hashes"] == "style: 0123456789ab"
    small = thumbnail(path, tmp_path / "thumbs", 16)
    with Image.open(small) as img:
        assert img.size == (16, 12)
    assert thumbnail(path, tmp_path / "thumbs", 16) == small


@pytest.mark.parametrize("name", ["../x.png", "a/b.png", "", ".hidden", "x" * 80, "a.b.png"])
def test_unsafe_names(name: str) -> None:
    assert not safe_name(name)


def test_metrics_render() -> None:
    m = Metrics()
    m.inc("jobs_total", kind="txt2img", status="succeeded")
    m.observe("job_seconds", 1.5, kind="txt2img")
    text = m.render({"queue_depth": 3})
    assert 'sdrest_jobs_total{kind="txt2img",status="succeeded"} 1.0' in text
    assert 'sdrest_job_seconds_count{kind="txt2img"} 1' in text and "sdrest_queue_depth 3" in text


def test_config_precedence(tmp_path: Path) -> None:
    file = tmp_path / "sdrest.yaml"
    file.write_text("port: 9000\nqueue_limit: 5\non_interrupted: fail\n")
    config = load_config({"port": "9100"}, {"SDREST_QUEUE_LIMIT": "7", "SDREST_CONFIG": str(file)})
    assert (config.port, config.queue_limit, config.on_interrupted) == (9100, 7, "fail")
    assert config.data_dir.is_absolute() and ServerConfig().host == "127.0.0.1" and ServerConfig().port == 8080
    with pytest.raises(ValueError, match="queue_limit"):
        load_config({}, {"SDREST_QUEUE_LIMIT": "many"})
    with pytest.raises(ValueError, match="on_interrupted"):
        load_config({"on_interrupted": "explode"}, {})
    file.write_text("colour: blue\n")
    with pytest.raises(ValueError, match="colour"):
        load_config({}, {}, file)
