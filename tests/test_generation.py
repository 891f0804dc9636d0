"""Generation through the library: progress, threads and the GIL, previews, results."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

import sdrest

SIZE = 64


def test_result_carries_images_seeds_and_parameters(sd1: sdrest.StableDiffusion) -> None:
    result = sd1.txt2img("a cat", width=SIZE, height=SIZE, steps=1, seed=11, batch_count=2)
    assert len(result) == 2
    assert result.seeds == [11, 12]
    assert [im.size for im in result] == [(SIZE, SIZE)] * 2
    assert result.parameters["prompt"] == "a cat"
    assert result.parameters["steps"] == 1
    for image in result:
        array = np.asarray(image)
        assert array.dtype == np.uint8 and array.shape == (SIZE, SIZE, 3)
    assert not np.array_equal(np.asarray(result[0]), np.asarray(result[1])), "two seeds, one image"


def test_same_seed_same_pixels_and_random_seed_reported(sd1: sdrest.StableDiffusion) -> None:
    a = sd1.txt2img("a dog", width=SIZE, height=SIZE, steps=1, seed=3)
    b = sd1.txt2img("a dog", width=SIZE, height=SIZE, steps=1, seed=3)
    assert np.array_equal(np.asarray(a[0]), np.asarray(b[0]))
    c = sd1.txt2img("a dog", width=SIZE, height=SIZE, steps=1)
    assert 0 <= c.seeds[0] < 2**31
    again = sd1.txt2img("a dog", width=SIZE, height=SIZE, steps=1, seed=c.seeds[0])
    assert np.array_equal(np.asarray(c[0]), np.asarray(again[0]))


def test_progress_once_per_step_in_order_on_the_calling_thread(sd1: sdrest.StableDiffusion) -> None:
    events: list[sdrest.Progress] = []
    threads: set[int] = set()

    def on_progress(event: sdrest.Progress) -> None:
        events.append(event)
        threads.add(threading.get_ident())

    sd1.txt2img("a cat", width=SIZE, height=SIZE, steps=4, seed=1, progress=on_progress)
    sampling = [e for e in events if e.phase == "sampling"]
    assert [(e.step, e.steps) for e in sampling] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert all(e.seconds_per_step >= 0 for e in sampling)
    assert threads == {threading.get_ident()}


def test_progress_reports_the_decoding_phase_with_vae_tiling(sd1: sdrest.StableDiffusion) -> None:
    events: list[sdrest.Progress] = []
    sd1.txt2img("a cat", width=SIZE, height=SIZE, steps=1, seed=1, progress=events.append,
                vae_tiling={"tile_size_x": 32, "tile_size_y": 32})
    phases = [e.phase for e in events]
    assert phases[0] == "sampling"
    assert "decoding" in phases
    assert phases.index("decoding") > phases.index("sampling")


def test_previews_arrive_as_images(sd1: sdrest.StableDiffusion) -> None:
    previews: list[tuple[int, list, bool]] = []
    sd1.txt2img("a cat", width=SIZE, height=SIZE, steps=2, seed=1,
                preview=lambda step, frames, noisy: previews.append((step, frames, noisy)))
    assert [p[0] for p in previews] == [1, 2]
    assert all(len(frames) == 1 and frames[0].size[0] > 0 for _, frames, _ in previews)


def test_other_python_threads_run_during_a_generation(sd1: sdrest.StableDiffusion) -> None:
    started = threading.Event()
    stop = threading.Event()
    ticks = 0

    def spin() -> None:
        nonlocal ticks
        started.set()
        while not stop.is_set():
            ticks += 1

    ticks_at_step: list[int] = []
    worker = threading.Thread(target=spin)
    worker.start()
    started.wait()
    try:
        sd1.txt2img("a cat", width=SIZE, height=SIZE, steps=3, seed=1,
                    progress=lambda e: ticks_at_step.append(ticks))
    finally:
        stop.set()
        worker.join()
    # The counting thread kept running between steps, while sd.cpp computed.
    assert len(ticks_at_step) == 3
    assert ticks_at_step[-1] - ticks_at_step[0] > 1000


def test_two_contexts_in_two_threads_keep_their_progress_apart(sd1_path: Path,
                                                               sd1: sdrest.StableDiffusion) -> None:
    second = sdrest.StableDiffusion(sd1_path)
    seen: dict[str, list[int]] = {"a": [], "b": []}
    idents: dict[str, set[int]] = {"a": set(), "b": set()}
    errors: list[BaseException] = []

    def run(name: str, sd: sdrest.StableDiffusion, steps: int) -> None:
        def on_progress(event: sdrest.Progress) -> None:
            if event.phase == "sampling":
                seen[name].append(event.steps)
                idents[name].add(threading.get_ident())
        try:
            sd.txt2img("a cat", width=SIZE, height=SIZE, steps=steps, seed=1, progress=on_progress)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    try:
        threads = [threading.Thread(target=run, args=("a", sd1, 3)), threading.Thread(target=run, args=("b", second, 5))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        second.close()
    assert not errors
    assert seen["a"] == [3, 3, 3]
    assert seen["b"] == [5] * 5
    assert idents["a"].isdisjoint(idents["b"])


def test_one_context_shared_by_two_threads_is_serialized(sd1: sdrest.StableDiffusion) -> None:
    reference = np.asarray(sd1.txt2img("a cat", width=SIZE, height=SIZE, steps=1, seed=21)[0])
    results: list[np.ndarray] = []

    def run() -> None:
        results.append(np.asarray(sd1.txt2img("a cat", width=SIZE, height=SIZE, steps=1, seed=21)[0]))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 2
    assert all(np.array_equal(r, reference) for r in results)


def test_controlnet_and_canny(sd1_path: Path, controlnet_path: Path) -> None:
    rng = np.random.default_rng(0)
    source = rng.integers(0, 255, (SIZE, SIZE, 3), dtype=np.uint8)
    edges = sdrest.preprocess_canny(source)
    assert edges.size == (SIZE, SIZE)
    with sdrest.StableDiffusion(sd1_path, control_net=controlnet_path) as sd:
        with_control = sd.txt2img("a cat", width=SIZE, height=SIZE, steps=1, seed=2, control_image=edges,
                                  control_strength=1.0)
        without = sd.txt2img("a cat", width=SIZE, height=SIZE, steps=1, seed=2)
    assert not np.array_equal(np.asarray(with_control[0]), np.asarray(without[0]))


def test_taesd_decodes(sd1_path: Path, taesd_path: Path) -> None:
    with sdrest.StableDiffusion(sd1_path, taesd=taesd_path) as sd:
        image = sd.txt2img("a cat", width=SIZE, height=SIZE, steps=1, seed=2)[0]
    assert image.size == (SIZE, SIZE)
    assert np.isfinite(np.asarray(image, dtype=np.float32)).all()


def test_video_on_an_image_model_is_refused(sd1: sdrest.StableDiffusion) -> None:
    assert not sd1.supports_video
    with pytest.raises(ValueError, match="cannot generate video"):
        sd1.generate_video("a cat")


def test_defaults_are_sd_cpps(sd1: sdrest.StableDiffusion) -> None:
    assert sd1.default_sampler == "euler_a"
    assert sd1.default_scheduler() in sdrest.schedulers()
    assert sd1.n_threads == sdrest.available_physical_cores()


def test_recorded_parameters_leave_the_images_out(sd1: sdrest.StableDiffusion) -> None:
    image = np.full((SIZE, SIZE, 3), 128, dtype=np.uint8)
    result = sd1.img2img(image, "a cat", steps=1, seed=4, ref_images=[image])
    recorded = result.parameters
    assert recorded["strength"] == 0.75 and recorded["width"] == SIZE

    def arrays_in(value: object) -> int:
        if isinstance(value, np.ndarray):
            return 1
        if isinstance(value, dict):
            return sum(arrays_in(v) for v in value.values())
        if isinstance(value, list):
            return sum(arrays_in(v) for v in value)
        return 0

    assert arrays_in(recorded) == 0
    assert not {"init_image", "mask_image", "ref_images"} & set(recorded)
