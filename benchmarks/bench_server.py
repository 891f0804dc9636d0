"""Server overhead, side by side in one run.

    python benchmarks/bench_server.py [--models-dir DIR] [--size 256] [--steps 2] [--runs 3]

1. request-to-image time through ``sdrest serve`` (``?wait=true``, images back as base64; the native
   work in the server's worker process, across the process boundary) against the same generation by
   a direct library call in this process (target ratio <= 1.03 at 256 px);
2. p50/p99 latency of ``/api/status`` and ``/api/queue/status`` at a steady request rate
   while a generation runs (the event loop must not stall behind the GIL);
3. overhead per queued job: submit latency, and the worker's gap between one job's end
   and the next one's start.

Without ``--models-dir`` it lays out the synthetic models (``sdrest.testing.synthetic``).
"""

from __future__ import annotations

import argparse
import itertools
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

# Measure the sdrest of this checkout on both sides (not another one installed in site-packages).
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def direct_call(sd, size: int, steps: int, seed: int) -> float:
    """Seconds for one txt2img by the library (the same arguments the server's worker passes)."""
    started = time.perf_counter()
    result = sd.txt2img("a lovely cat", width=size, height=size, steps=steps, seed=seed, sampler="euler")
    result.images[0].tobytes()
    return time.perf_counter() - started


def direct_runs(checkpoint: Path, args: argparse.Namespace) -> list[float]:
    """Load the model, warm up, time ``args.runs`` generations, free the model."""
    import sdrest

    with sdrest.StableDiffusion(checkpoint) as sd:
        direct_call(sd, args.size, args.steps, 0)
        return [direct_call(sd, args.size, args.steps, run) for run in range(args.runs)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models-dir", type=Path)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rate", type=float, default=20.0, help="status requests per second while generating")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="sdrest-bench-"))
    models = args.models_dir
    if models is None:
        from sdrest.testing import synthetic

        models = tmp / "models"
        synthetic.populate_models_dir(models, ["sd1_checkpoint"])
    checkpoint = next((models / "checkpoints").glob("*.safetensors"))
    body = {"prompt": "a lovely cat", "width": args.size, "height": args.size, "steps": args.steps,
            "model": checkpoint.stem, "sampling_method": "euler"}

    import sdrest

    print("loading the model in-process for the direct calls ...", flush=True)
    sd = sdrest.StableDiffusion(checkpoint)
    direct_call(sd, args.size, args.steps, 0)  # warm-up
    direct_times: list[float] = []

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "sdrest", "serve", "--models-dir", str(models), "--data-dir",
                             str(tmp / "data"), "--port", str(port), "--log-level", "warning"], cwd=ROOT)
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=600)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if client.get("/api/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("the server did not start")
            time.sleep(0.1)
        print("server: warm-up (model hash and load) ...", flush=True)
        assert client.post("/api/generate/text2img?wait=true", json={**body, "seed": 1}).json()["status"] == "succeeded"
        server_times = []
        print(f"server: {args.runs} x the same through HTTP (?wait=true) ...", flush=True)
        for run in range(args.runs):
            started = time.perf_counter()
            answer = client.post("/api/generate/text2img?wait=true", json={**body, "seed": run}).json()
            server_times.append(time.perf_counter() - started)
            assert answer["status"] == "succeeded" and answer["images"][0]["data"]

        # status latency while a long generation runs
        long = client.post("/api/generate/text2img", json={**body, "steps": max(args.steps * 10, 20)}).json()
        while client.get(f"/api/queue/job/{long['job_id']}").json()["status"] != "running":
            time.sleep(0.05)
        latencies: dict[str, list[float]] = {"/api/status": [], "/api/queue/status": []}
        stop = threading.Event()

        def probe(path: str) -> None:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as c:
                interval = 1.0 / args.rate
                next_at = time.perf_counter()
                while not stop.is_set():
                    started = time.perf_counter()
                    c.get(path).raise_for_status()
                    latencies[path].append(time.perf_counter() - started)
                    next_at += interval
                    time.sleep(max(0.0, next_at - time.perf_counter()))

        probes = [threading.Thread(target=probe, args=(p,)) for p in latencies]
        for t in probes:
            t.start()
        while client.get(f"/api/queue/job/{long['job_id']}").json()["status"] == "running":
            time.sleep(0.2)
        stop.set()
        for t in probes:
            t.join()

        # per-job overhead: submit latency and the worker's gap between jobs
        submits = []
        ids = []
        for i in range(5):
            started = time.perf_counter()
            ids.append(client.post("/api/generate/text2img", json={**body, "steps": 1, "seed": i}).json()["job_id"])
            submits.append(time.perf_counter() - started)
        jobs = []
        for job_id in ids:
            while (job := client.get(f"/api/queue/job/{job_id}").json())["status"] not in ("succeeded", "failed"):
                time.sleep(0.05)
            jobs.append(job)
        gaps = [b["started_at"] - a["finished_at"] for a, b in itertools.pairwise(jobs)]
    finally:
        client.close()
        proc.terminate()
        proc.wait(60)

    print("direct library again ...", flush=True)
    direct_times += direct_runs(checkpoint, args)
    d, s = statistics.median(direct_times), statistics.median(server_times)
    print()
    print("| measure | value |")
    print("| --- | --- |")
    print(f"| direct txt2img median ({args.size}px, {args.steps} steps) | {d * 1000:.0f} ms |")
    print(f"| server request-to-image median | {s * 1000:.0f} ms |")
    print(f"| ratio server / direct (target <= 1.03) | {s / d:.3f} |")
    for path, values in latencies.items():
        print(f"| {path} during generation: p50 / p99 (n={len(values)}) | "
              f"{percentile(values, 50) * 1000:.1f} / {percentile(values, 99) * 1000:.1f} ms |")
    print(f"| submit (POST -> 202) median | {statistics.median(submits) * 1000:.1f} ms |")
    print(f"| worker gap between queued jobs, median | {statistics.median(gaps) * 1000:.1f} ms |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
