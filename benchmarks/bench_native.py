"""sdrest against sd.cpp's own CLI: per-image time, model load time, peak RSS.

    python benchmarks/bench_native.py [--pairs 5] [--size 256] [--steps 4]

Both run the same build (the CLI is installed beside the extension with
``-C cmake.define.SDREST_BUILD_SDCLI=ON``), the same synthetic SD1 model and
the same flags, with their default thread counts, alternating in one run so
machine noise hits both alike. The CLI's per-image time is the time it logs for
``generate_image``; ours is the wall time of ``txt2img`` (Python included).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

import sdrest
from sdrest.testing import synthetic

CLI_GENERATE = re.compile(r"generate_image completed in ([0-9.]+)s")
CLI_LOAD = re.compile(r"loading tensors completed, taking ([0-9.]+)s")


def find_cli() -> Path:
    """sd.cpp's CLI from the installed package, or $SDREST_SD_CLI."""
    for candidate in (os.environ.get("SDREST_SD_CLI"), Path(sdrest.__file__).parent / "_bin" / "sd-cli"):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    sys.exit("bench_native: sd-cli not found; install with -C cmake.define.SDREST_BUILD_SDCLI=ON")


def run_cli(cli: Path, model: Path, out: Path, size: int, steps: int,
            seed: int) -> tuple[float, float, float, float]:
    """(generation seconds and tensor-loading seconds as the CLI logs them, wall seconds,
    peak RSS MiB of the CLI process).

    The CLI's peak RSS is sampled every 10 ms: ``RUSAGE_CHILDREN`` would report this
    process's own peak, which a child inherits through fork/exec.
    """
    cmd = [str(cli), "-m", str(model), "-p", "a lovely cat", "-W", str(size), "-H", str(size),
           "--steps", str(steps), "-s", str(seed), "-o", str(out), "-v"]
    peak = 0
    with tempfile.TemporaryFile("w+") as log:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, text=True)
        watched = psutil.Process(proc.pid)
        while proc.poll() is None:
            with contextlib.suppress(psutil.Error):
                peak = max(peak, watched.memory_info().rss)
            time.sleep(0.01)
        wall = time.perf_counter() - start
        log.seek(0)
        output = log.read()
    if proc.returncode != 0:
        sys.exit(f"sd-cli failed:\n{output[-3000:]}")
    generate, load = CLI_GENERATE.search(output), CLI_LOAD.search(output)
    if not generate or not load:
        sys.exit("bench_native: the CLI did not log its generation and load times")
    return float(generate.group(1)), float(load.group(1)), wall, peak / 2**20


def main() -> int:
    """Run the benchmark and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=4)
    args = parser.parse_args()

    cli = find_cli()
    model = synthetic.sd1_checkpoint()
    start = time.perf_counter()
    sd = sdrest.StableDiffusion(model)
    load_seconds = time.perf_counter() - start
    sd.txt2img("warm-up", width=args.size, height=args.size, steps=1, seed=0)

    ours: list[float] = []
    theirs: list[float] = []
    cli_walls: list[float] = []
    cli_loads: list[float] = []
    cli_rss = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for pair in range(args.pairs):
            seed = 100 + pair
            runs = [("cli", None), ("ours", None)] if pair % 2 == 0 else [("ours", None), ("cli", None)]
            for who, _ in runs:
                if who == "cli":
                    seconds, load, wall, rss = run_cli(cli, model, Path(tmp) / "out.png", args.size, args.steps,
                                                       seed)
                    theirs.append(seconds)
                    cli_loads.append(load)
                    cli_walls.append(wall)
                    cli_rss = max(cli_rss, rss)
                else:
                    t0 = time.perf_counter()
                    sd.txt2img("a lovely cat", width=args.size, height=args.size, steps=args.steps, seed=seed)
                    ours.append(time.perf_counter() - t0)
    our_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    sd.close()

    ratios = [o / t for o, t in zip(ours, theirs)]
    print(f"sdrest vs sd-cli, synthetic SD1 (full size), {args.size}x{args.size}, {args.steps} steps, "
          f"euler_a, threads: sdrest {sd.n_threads}, sd-cli default; {args.pairs} pairs")
    print()
    print("| pair | sdrest s/image | sd-cli s/image | ratio |")
    print("| ---: | ---: | ---: | ---: |")
    for i, (o, t, r) in enumerate(zip(ours, theirs, ratios), 1):
        print(f"| {i} | {o:.3f} | {t:.3f} | {r:.3f} |")
    print(f"| median | {statistics.median(ours):.3f} | {statistics.median(theirs):.3f} | "
          f"{statistics.median(ratios):.3f} |")
    print()
    print("| measure | sdrest | sd-cli |")
    print("| --- | ---: | ---: |")
    print(f"| model load (s; sdrest: constructor, sd-cli: its 'loading tensors' line, median) | "
          f"{load_seconds:.2f} | {statistics.median(cli_loads):.2f} |")
    print(f"| process wall per image incl. load (s, median) | - | {statistics.median(cli_walls):.2f} |")
    print(f"| peak RSS (MiB; sd-cli sampled every 10 ms) | {our_rss:.0f} | {cli_rss:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
