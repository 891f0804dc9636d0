"""Fifty generations in one process: resident memory stays bounded (no per-call leak)."""

from __future__ import annotations

import gc

import psutil

import sdrest

#: Measured: after the warm-up, 50 generations grew RSS by well under this.
RSS_GROWTH_LIMIT = 64 * 1024 * 1024


def test_fifty_generations_do_not_grow_rss(sd1: sdrest.StableDiffusion) -> None:
    process = psutil.Process()
    for seed in range(3):  # warm-up: allocators and compute buffers settle
        sd1.txt2img("a cat", width=64, height=64, steps=1, seed=seed)
    gc.collect()
    before = process.memory_info().rss
    for seed in range(50):
        sd1.txt2img("a cat", width=64, height=64, steps=1, seed=seed)
    gc.collect()
    growth = process.memory_info().rss - before
    print(f"RSS growth over 50 generations: {growth / 2**20:.1f} MiB")
    assert growth < RSS_GROWTH_LIMIT
