"""Benchmark: scale-out through Redis. Throughput with 1, 2 and 3 worker hosts, the broker's added latency per job
(submit to start, finish to visible), and the dispatch overhead of 1000 no-op jobs.

    python benchmarks/bench_scale.py [--jobs 12] [--latency-jobs 8] [--noop-jobs 1000] [--steps 4]

Needs ``redis-server`` (apt-get install redis-server) and redis-py (pip install ".[broker]"); starts its own
Redis on a loopback port. Everything is real but the network (one machine, loopback): the API node (uvicorn
in this process), ``sdrest worker`` processes with the synthetic SD1 model (``--n-threads 1`` each, so per-core
figures are per worker), SQLite, Redis streams.

1. **Throughput**: ``--jobs`` txt2img jobs (64x64, ``--steps`` steps) through 1, 2 and 3 workers, after each worker
   has loaded the model; jobs per minute, the ratio to one worker, and per core.
2. **Latency, real jobs**: ``--latency-jobs`` jobs one after another on one worker, embedded (a local worker
   process) and through the broker (a worker host): submit to the "running" event a client sees, and the whole
   job, medians (the whole job's time is mostly sd.cpp's, and noisy).
3. **The machinery alone**: jobs that do nothing, on one worker thread, on the embedded queue and through the
   broker: submit to start and end of run to outcome accepted, one after another (25x ``--latency-jobs``,
   medians), and the time per job with ``--noop-jobs`` queued at once. The differences are what the broker adds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "server"), str(ROOT / "tests" / "broker")]  # the live-server helpers
if any((ROOT / "sdrest").glob("_native*.so")):  # a checkout with its module built in place: measure its code
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from broker_live import Cluster, RedisServer  # noqa: E402
from server_live import LiveServer, make_config, wait_job  # noqa: E402

from sdrest.jobs.events import EventBus  # noqa: E402
from sdrest.jobs.metrics import Metrics  # noqa: E402
from sdrest.jobs.models import ModelCache  # noqa: E402
from sdrest.jobs.queue import LocalQueue  # noqa: E402
from sdrest.jobs.store import JobStore  # noqa: E402
from sdrest.jobs.tasks import TaskResult  # noqa: E402
from sdrest.jobs.worker import Worker  # noqa: E402
from sdrest.server.app import create_app  # noqa: E402
from sdrest.testing.synthetic import populate_models_dir  # noqa: E402


def submit(client: httpx.Client, steps: int, seed: int) -> str:
    """Queue one small txt2img; its id."""
    response = client.post("/api/generate/text2img", json={"prompt": "a lighthouse at dusk", "width": 64,
                                                           "height": 64, "steps": steps, "seed": seed})
    response.raise_for_status()
    return str(response.json()["job_id"])


def throughput(folder: Path, models: Path, workers: int, jobs: int, steps: int) -> float:
    """Jobs per minute through ``workers`` worker hosts, the model already loaded on each."""
    folder.mkdir(parents=True)
    cluster = Cluster(folder, models)
    try:
        cluster.start(workers)
        assert cluster.api is not None
        client = cluster.api.client
        for job_id in [submit(client, steps, i) for i in range(workers)]:  # one each: every worker loads the model
            wait_job(client, job_id, 600)
        started = time.monotonic()
        ids = [submit(client, steps, 100 + i) for i in range(jobs)]
        for job_id in ids:
            assert wait_job(client, job_id, 900)["status"] == "succeeded"
        return jobs / (time.monotonic() - started) * 60
    finally:
        cluster.stop()


class EventClock:
    """Follows ``/api/events`` on a thread; when each job was first seen running, and when it ended."""

    def __init__(self, url: str) -> None:
        self.running: dict[str, float] = {}
        self.final: dict[str, float] = {}
        self.changed = threading.Condition()
        self.client = httpx.Client(base_url=url, timeout=None)
        self.thread = threading.Thread(target=self._follow, daemon=True)
        self.thread.start()

    def _follow(self) -> None:
        try:
            self._read()
        except httpx.HTTPError:  # the server stopped at the end of the run
            pass

    def _read(self) -> None:
        with self.client.stream("GET", "/api/events") as response:
            for line in response.iter_lines():
                if not line.startswith("data: "):
                    continue
                now, event = time.monotonic(), json.loads(line[6:])
                job_id = event.get("job_id")
                with self.changed:
                    if event.get("type") == "state" and event.get("status") == "running":
                        self.running.setdefault(job_id, now)
                    elif event.get("type") == "state" and event.get("status") in ("succeeded", "failed", "cancelled"):
                        self.final[job_id] = now
                    self.changed.notify_all()

    def wait_final(self, job_id: str, timeout: float = 600) -> None:
        """Until ``job_id`` has ended."""
        with self.changed:
            if not self.changed.wait_for(lambda: job_id in self.final, timeout):
                raise TimeoutError(job_id)


def latencies(api: LiveServer, jobs: int, steps: int) -> tuple[float, float]:
    """Medians, in ms, of submit-to-running and submit-to-final over ``jobs`` sequential jobs (after a warm-up)."""
    clock = EventClock(api.url)
    time.sleep(0.5)  # the stream is open before the first job
    wait_job(api.client, submit(api.client, steps, 0), 600)  # loads the model
    starts, totals = [], []
    for i in range(jobs):
        sent = time.monotonic()
        job_id = submit(api.client, steps, 1 + i)
        clock.wait_final(job_id)
        starts.append((clock.running[job_id] - sent) * 1000)
        totals.append((clock.final[job_id] - sent) * 1000)
    return statistics.median(starts), statistics.median(totals)


def embedded_latency(folder: Path, models: Path, jobs: int, steps: int) -> tuple[float, float]:
    """:func:`latencies` with one local worker process and no broker."""
    config = make_config(folder, models, workers=1, n_threads=1)
    with LiveServer(create_app(config)) as api:
        return latencies(api, jobs, steps)


def broker_latency(folder: Path, models: Path, jobs: int, steps: int) -> tuple[float, float]:
    """:func:`latencies` with one worker host behind Redis."""
    folder.mkdir(parents=True)
    cluster = Cluster(folder, models)
    try:
        cluster.start(1)
        assert cluster.api is not None
        return latencies(cluster.api, jobs, steps)
    finally:
        cluster.stop()


class NoopBench:
    """One worker thread running jobs that do nothing, on the embedded queue or through ``broker``: what is left
    is the machinery's own cost."""

    def __init__(self, folder: Path, broker: str | None) -> None:
        self.store = JobStore(folder / "jobs.sqlite3")
        self.queue = LocalQueue(self.store, EventBus(), Metrics(), limit=100_000)
        self.ran: dict[str, tuple[float, float]] = {}  # job id -> (start, end) of its run
        self.visible: dict[str, float] = {}  # job id -> when the API node accepted its outcome
        self.done = threading.Semaphore(0)
        self.queue.add_finish_hook(self._finished)
        worker_queue: Any = self.queue
        self.dispatcher = self.remote = None
        if broker is not None:
            from sdrest.broker.dispatcher import Dispatcher
            from sdrest.broker.remote import RemoteQueue
            from sdrest.broker.wire import Keys, connect

            keys = Keys(f"bench{os.getpid()}")
            self.remote = RemoteQueue(connect(broker), keys, scratch=folder / "scratch", models_dir=None)
            self.remote.start(["noop.0"])
            self.dispatcher = Dispatcher(self.queue, connect(broker), keys, data_dir=folder, models_dir=None)
            self.dispatcher.start()
            worker_queue = self.remote
        self.worker = Worker("noop.0", worker_queue, ModelCache(n_threads=1, idle_seconds=0, memory_budget_mb=0),
                             outputs_dir=folder / "outputs", inputs_dir=folder / "inputs", runner=self._run)
        worker_queue.report("noop.0", {"alive": True, "capabilities": {"samplers": []}, "loaded": []})
        self.thread = threading.Thread(target=self.worker.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 60
        while not any(w.alive and w.capabilities for w in self.queue.workers()):  # the dispatcher has seen it
            if time.monotonic() > deadline:
                raise TimeoutError("the worker did not join")
            time.sleep(0.01)

    def _run(self, kind: str, params: dict[str, Any], ctx: Any) -> TaskResult:
        now = time.monotonic()
        self.ran[ctx.job_id] = (now, now)
        return TaskResult()

    def _finished(self, job: Any, status: str, result: dict[str, Any]) -> None:
        self.visible[job.id] = time.monotonic()
        self.done.release()

    def _wait(self, count: int) -> None:
        for _ in range(count):
            if not self.done.acquire(timeout=120):
                raise TimeoutError("no-op jobs did not finish")

    def per_job_ms(self, jobs: int) -> float:
        """Milliseconds per job with ``jobs`` queued at once."""
        started = time.monotonic()
        for _ in range(jobs):
            self.queue.submit("hash", {"models": []})
        self._wait(jobs)
        return (time.monotonic() - started) / jobs * 1000

    def latencies_ms(self, jobs: int) -> tuple[float, float]:
        """Medians over ``jobs`` jobs one after another: submit to start, and end of run to outcome accepted."""
        starts, ends = [], []
        for _ in range(jobs):
            sent = time.monotonic()
            job = self.queue.submit("hash", {"models": []})
            self._wait(1)
            began, ended = self.ran[job.id]
            starts.append((began - sent) * 1000)
            ends.append((self.visible[job.id] - ended) * 1000)
        return statistics.median(starts), statistics.median(ends)

    def close(self) -> None:
        """Stop the worker (and the broker's parts)."""
        self.worker.request_stop()
        self.queue.close()
        if self.dispatcher is not None and self.remote is not None:
            self.dispatcher.stop()
            self.remote.close()
        self.thread.join(10)
        self.store.close()


def main() -> int:
    """Run the three measurements and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=12, help="jobs per throughput run")
    parser.add_argument("--latency-jobs", type=int, default=8, help="sequential jobs per latency run")
    parser.add_argument("--noop-jobs", type=int, default=1000, help="no-op jobs per dispatch run")
    parser.add_argument("--steps", type=int, default=4, help="sampling steps per job")
    parser.add_argument("--workers", default="1,2,3", help="worker counts for the throughput runs")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        root = Path(tmp)
        models = root / "models"
        populate_models_dir(models, ["sd1_checkpoint", "esrgan"])
        print(f"# scale-out: {cores} CPU cores, synthetic SD1 at 64x64, {args.steps} steps, --n-threads 1 per worker\n")
        print("| workers | jobs/min | vs 1 worker | jobs/min per core used |")
        print("| ---: | ---: | ---: | ---: |")
        base = 0.0
        for count in (int(n) for n in args.workers.split(",")):
            rate = throughput(root / f"throughput{count}", models, count, args.jobs, args.steps)
            base = base or rate
            print(f"| {count} | {rate:.1f} | {rate / base:.2f}x | {rate / min(count, cores):.1f} |", flush=True)
        print("\n| one worker, real jobs | submit to running event (ms) | whole job, median (ms) |")
        print("| --- | ---: | ---: |")
        local = embedded_latency(root / "latency-local", models, args.latency_jobs, args.steps)
        print(f"| embedded (local worker process) | {local[0]:.1f} | {local[1]:.0f} |", flush=True)
        remote = broker_latency(root / "latency-broker", models, args.latency_jobs, args.steps)
        print(f"| through Redis (worker host) | {remote[0]:.1f} | {remote[1]:.0f} |", flush=True)
        redis_server = RedisServer(root)
        redis_server.start()
        try:
            rows = []
            for label, broker in (("embedded queue", None), ("through Redis", redis_server.url)):
                (root / label).mkdir()
                bench = NoopBench(root / label, broker)
                try:
                    rows.append((label, bench.latencies_ms(args.latency_jobs * 25), bench.per_job_ms(args.noop_jobs)))
                finally:
                    bench.close()
            print(f"\n| no-op jobs, one worker thread | submit to start (ms) | end to outcome accepted (ms) "
                  f"| {args.noop_jobs} queued at once: ms per job | jobs/s |")
            print("| --- | ---: | ---: | ---: | ---: |")
            for label, (start, end), per_job in rows:
                print(f"| {label} | {start:.2f} | {end:.2f} | {per_job:.2f} | {1000 / per_job:.0f} |")
            (_, (s0, e0), p0), (_, (s1, e1), p1) = rows
            print(f"| the broker adds | {s1 - s0:+.2f} | {e1 - e0:+.2f} | {p1 - p0:+.2f} | |", flush=True)
        finally:
            redis_server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
