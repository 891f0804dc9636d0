"""Cancellation: from another thread, from a callback, by an exception, by Ctrl-C; then work again."""

from __future__ import annotations

import random
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

import sdrest

SIZE = 64


def test_cancel_from_another_thread_stops_within_one_step(sd1: sdrest.StableDiffusion) -> None:
    steps_seen: list[int] = []
    second_step = threading.Event()

    def on_progress(event: sdrest.Progress) -> None:
        steps_seen.append(event.step)
        if event.step == 2:
            second_step.set()

    canceller = threading.Thread(target=lambda: (second_step.wait(60), sd1.cancel()))
    canceller.start()
    with pytest.raises(sdrest.Cancelled):
        sd1.txt2img("a cat", width=SIZE, height=SIZE, steps=20, seed=1, progress=on_progress)
    canceller.join()
    # cancel() landed after step 2 was reported: at most the step running then finishes.
    assert 2 <= max(steps_seen) <= 3


def test_cancel_event_set_in_a_progress_callback(sd1: sdrest.StableDiffusion) -> None:
    cancel = threading.Event()
    steps_seen: list[int] = []

    def on_progress(event: sdrest.Progress) -> None:
        steps_seen.append(event.step)
        if event.step == 1:
            cancel.set()

    with pytest.raises(sdrest.Cancelled):
        sd1.txt2img("a cat", width=SIZE, height=SIZE, steps=20, seed=1, progress=on_progress, cancel=cancel)
    assert max(steps_seen) <= 2


def test_an_event_set_before_the_call_cancels_before_native_work(sd1: sdrest.StableDiffusion) -> None:
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(sdrest.Cancelled):
        sd1.txt2img("a cat", width=SIZE, height=SIZE, steps=2, cancel=cancel)


def test_an_exception_in_a_callback_cancels_and_is_reraised(sd1: sdrest.StableDiffusion) -> None:
    class Boom(Exception):
        pass

    steps_seen: list[int] = []

    def on_progress(event: sdrest.Progress) -> None:
        steps_seen.append(event.step)
        raise Boom("from the callback")

    with pytest.raises(Boom, match="from the callback"):
        sd1.txt2img("a cat", width=SIZE, height=SIZE, steps=20, seed=1, progress=on_progress)
    assert steps_seen == [1]


def test_the_context_generates_correctly_after_cancels(sd1: sdrest.StableDiffusion) -> None:
    reference = np.asarray(sd1.txt2img("a cat", width=SIZE, height=SIZE, steps=2, seed=8)[0])
    with pytest.raises(sdrest.Cancelled):
        sd1.txt2img("a cat", width=SIZE, height=SIZE, steps=2, seed=8, progress=lambda e: sd1.cancel())
    again = np.asarray(sd1.txt2img("a cat", width=SIZE, height=SIZE, steps=2, seed=8)[0])
    assert np.array_equal(reference, again)


def test_cancel_while_idle_does_not_poison_the_next_call(sd1: sdrest.StableDiffusion) -> None:
    sd1.cancel()
    result = sd1.txt2img("a cat", width=SIZE, height=SIZE, steps=1, seed=8)
    assert len(result) == 1


def test_a_hundred_cancels_at_random_moments(sd1: sdrest.StableDiffusion) -> None:
    rng = random.Random(1234)
    outcomes = {"cancelled": 0, "finished": 0}
    for _ in range(100):
        delay = rng.uniform(0.0, 0.05)
        timer = threading.Timer(delay, sd1.cancel)
        timer.start()
        try:
            sd1.txt2img("a cat", width=SIZE, height=SIZE, steps=2, seed=1)
            outcomes["finished"] += 1
        except sdrest.Cancelled:
            outcomes["cancelled"] += 1
        finally:
            timer.join()
    assert outcomes["cancelled"] + outcomes["finished"] == 100
    assert outcomes["cancelled"] > 0
    # and the context still works
    assert len(sd1.txt2img("a cat", width=SIZE, height=SIZE, steps=1, seed=1)) == 1


def test_close_while_generating_in_another_thread(sd1_path: Path) -> None:
    sd = sdrest.StableDiffusion(sd1_path)
    first_step = threading.Event()
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            sd.txt2img("a cat", width=SIZE, height=SIZE, steps=50, seed=1, progress=lambda e: first_step.set())
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - checked below
            outcome.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    assert first_step.wait(120)
    sd.close()
    worker.join()
    assert isinstance(outcome[0], sdrest.Cancelled)
    with pytest.raises(ValueError, match="closed"):
        sd.txt2img("a cat")


def test_ctrl_c_cancels_cleanly_and_raises_keyboard_interrupt(sd1_path: Path, tmp_path: Path,
                                                              child_env: dict[str, str]) -> None:
    script = tmp_path / "interrupt.py"
    script.write_text(textwrap.dedent(f"""
        import os, signal, sys
        import sdrest
        sd = sdrest.StableDiffusion({str(sd1_path)!r})
        def on_progress(event):
            if event.step == 1:
                os.kill(os.getpid(), signal.SIGINT)
        steps = []
        try:
            sd.txt2img("a cat", width=64, height=64, steps=30, seed=1,
                       progress=lambda e: (steps.append(e.step), on_progress(e)))
        except KeyboardInterrupt:
            print("interrupted after", max(steps), flush=True)
        image = sd.txt2img("a cat", width=64, height=64, steps=1, seed=1)[0]
        print("then generated", image.size, flush=True)
    """))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300,
                          env=child_env)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines[0] in ("interrupted after 1", "interrupted after 2")
    assert lines[1] == "then generated (64, 64)"


def test_reentering_the_context_from_its_own_callback_is_refused(sd1: sdrest.StableDiffusion) -> None:
    def reenter(event: sdrest.Progress) -> None:
        sd1.txt2img("again", width=SIZE, height=SIZE, steps=1)

    with pytest.raises(ValueError, match="re-entered from its own callback"):
        sd1.txt2img("a cat", width=SIZE, height=SIZE, steps=3, seed=1, progress=reenter)
    with pytest.raises(ValueError, match="re-entered from its own callback"):
        sd1.txt2img("a cat", width=SIZE, height=SIZE, steps=3, seed=1, progress=lambda e: sd1.close())
    assert not sd1.closed
    assert len(sd1.txt2img("a cat", width=SIZE, height=SIZE, steps=1, seed=1)) == 1
