"""``sdrest serve`` as a process whose own interpreter cannot import ``sdrest._native``: its workers do the
native work, their lines reach its log, a crashed job is never run again, and SIGTERM ends streams and
waiting requests with the job's state and leaves no job running."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
from server_live import until, wait_job
from test_crash_proof import LONG_PROMPT
from test_restart import TINY, free_port

from sdrest.jobs.store import JobStore

#: Starts ``sdrest serve`` with ``sdrest._native`` made unimportable in this interpreter (not in its children).
BLOCKED_SERVE = """
import sys

class BlockNative:
    def find_spec(self, name, path=None, target=None):
        if name == "sdrest._native":
            raise ImportError("the API process must not import sdrest._native")
        return None

sys.meta_path.insert(0, BlockNative())
from sdrest.cli import main
sys.exit(main(sys.argv[1:]))
"""


class BlockedServer:
    """The server process, started with the blocker; its output goes to ``log``."""

    def __init__(self, models: Path, data: Path, log: Path, env: dict[str, str]) -> None:
        self.port = free_port()
        self.log = log
        self.out = log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", BLOCKED_SERVE, "serve", "--models-dir", str(models), "--data-dir", str(data),
             "--port", str(self.port), "--log-level", "info", "--cancel-grace-seconds", "3"],
            stdout=self.out, stderr=subprocess.STDOUT, cwd=log.parent,
            env={k: v for k, v in env.items() if not k.startswith("SDREST_") or "SYNTHETIC" in k})
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=60)
        until(self._healthy, 180, f"the server did not come up:\n{self._log_text}", interval=0.1)

    def _log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def _healthy(self) -> bool:
        assert self.proc.poll() is None, f"the server exited:\n{self._log_text()}"
        try:
            return self.client.get("/api/health").status_code == 200
        except httpx.TransportError:
            return False

    def stop(self, sig: int = signal.SIGTERM) -> int:
        self.client.close()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(90)
        self.out.close()
        return code


def submit(server: BlockedServer, **overrides: Any) -> str:
    response = server.client.post("/api/generate/text2img", json={**TINY, **overrides})
    assert response.status_code == 202, response.text
    return response.json()["job_id"]


def read_sse_until_end(url: str, job_id: str, events: list[dict], opened: threading.Event) -> None:
    with httpx.Client(base_url=url, timeout=120) as client, \
            client.stream("GET", f"/api/queue/job/{job_id}/events") as response:
        opened.set()
        for line in response.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[len("data: "):]))


def test_api_without_native_crash_then_sigterm_then_restart(tmp_path: Path, synthetic_models: Path,
                                                            child_env: dict[str, str]) -> None:
    data = tmp_path / "data"
    log = tmp_path / "server.log"
    server = BlockedServer(synthetic_models, data, log, child_env)
    try:
        client = server.client
        # the names and versions come from the worker
        assert "euler_a" in client.get("/api/samplers").json()["samplers"]
        assert client.get("/api/version").json()["sdcpp"]
        assert wait_job(client, submit(server), 300)["status"] == "succeeded"
        # a crash of the worker fails the job it ran, with the signal named
        crashed = submit(server, steps=400)
        until(lambda: client.get(f"/api/queue/job/{crashed}").json()["step"] >= 1, 300, "no step")
        os.kill(client.get("/api/status").json()["workers"][0]["pid"], signal.SIGSEGV)
        job = wait_job(client, crashed, 60)
        assert job["status"] == "failed" and job["error"] == "the worker died with SIGSEGV during sampling"

        # the next job runs on a new worker, which keeps its model for the next one
        assert wait_job(client, submit(server), 300)["status"] == "succeeded"

        # SIGTERM while a job is in text conditioning (it cannot stop there), an SSE stream follows it
        # and a request waits for another
        long = submit(server, prompt=LONG_PROMPT)
        until(lambda: client.get(f"/api/queue/job/{long}").json()["status"] == "running", 300, "not running")
        events: list[dict] = []
        opened = threading.Event()
        stream = threading.Thread(target=read_sse_until_end, args=(f"http://127.0.0.1:{server.port}", long, events,
                                                                    opened), daemon=True)
        stream.start()
        assert opened.wait(30)
        waited: dict[str, Any] = {}

        def wait_request() -> None:
            with httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=120) as other:
                response = other.post("/api/generate/text2img?wait=true", json={**TINY, "steps": 400})
                waited["status"], waited["body"] = response.status_code, response.json()

        waiter = threading.Thread(target=wait_request, daemon=True)
        waiter.start()
        until(lambda: client.get("/api/queue/status").json()["queue_size"] >= 1, 30, "the waiting job was not queued")
    finally:
        code = server.stop(signal.SIGTERM)
    stream.join(30)
    waiter.join(30)
    assert code in (0, -signal.SIGTERM), log.read_text()
    assert not stream.is_alive() and events[-1]["type"] == "server" and events[-1]["status"] == "stopping"
    assert waited["status"] == 202 and waited["body"]["status"] == "queued", waited
    text = log.read_text(errors="replace")
    assert "worker-0 " in text and "SIGSEGV" in text  # the worker's lines and its death, in the server's log
    assert "worker-0 did not stop within 3 s; killing it" in text  # stuck in conditioning: killed at the stop
    assert "Traceback" not in text.split("SIGSEGV")[0]  # nothing alarming before the crash
    store = JobStore(data / "jobs.sqlite3")
    try:
        assert store.counts()["running"] == 0  # no job left running
        assert store.get(long).status == "queued" and store.get(long).attempts == 1
    finally:
        store.close()

    server = BlockedServer(synthetic_models, data, log, child_env)
    try:
        client = server.client
        until(lambda: client.get(f"/api/queue/job/{long}").json()["status"] == "running", 300,
              "the interrupted job did not run again")
        assert client.get(f"/api/queue/job/{long}").json()["attempts"] == 2
        again = client.get(f"/api/queue/job/{crashed}").json()
        assert again["status"] == "failed" and again["attempts"] == 1  # the crashing job never runs again
    finally:
        server.stop()
