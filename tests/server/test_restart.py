"""kill -9 mid-generation, start again: every job accounted for, every output readable; a clean stop re-queues."""

from __future__ import annotations

import io
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
from PIL import Image
from server_live import until, wait_job

from sdrest.jobs.outputs import parse_a1111_parameters
from sdrest.jobs.store import JobStore

TINY = {"prompt": "a lovely cat", "width": 64, "height": 64, "steps": 1, "seed": 3, "model": "sd1"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServeProcess:
    """``python -m sdrest serve`` in a subprocess."""

    def __init__(self, models: Path, data: Path, log: Path, env: dict[str, str], *extra: str) -> None:
        self.port = free_port()
        self.log = log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sdrest", "serve", "--models-dir", str(models), "--data-dir", str(data),
             "--port", str(self.port), "--log-level", "warning", *extra],
            stdout=self.log, stderr=subprocess.STDOUT, cwd=log.parent,
            env={k: v for k, v in env.items() if not k.startswith("SDREST_") or "SYNTHETIC" in k})
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=60)
        try:
            until(self._healthy, 120, "the server did not come up", interval=0.1)
        except BaseException:
            self.close(signal.SIGKILL)
            raise

    def _healthy(self) -> bool:
        assert self.proc.poll() is None, "the server exited"
        try:
            return self.client.get("/api/health").status_code == 200
        except httpx.TransportError:
            return False

    def close(self, sig: int) -> int:
        self.client.close()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(60)
        self.log.close()
        return code


def read_output(client: httpx.Client, job: dict) -> Image.Image:
    response = client.get(job["outputs"][0]["url"])
    assert response.status_code == 200
    image = Image.open(io.BytesIO(response.content))
    image.load()
    return image


def test_kill_9_then_restart_and_clean_stop(tmp_path: Path, synthetic_models: Path, child_env: dict[str, str]) -> None:
    data = tmp_path / "data"
    log = tmp_path / "server.log"
    server = ServeProcess(synthetic_models, data, log, child_env)
    try:
        done = server.client.post("/api/generate/text2img", json=TINY).json()["job_id"]
        assert wait_job(server.client, done, 300)["status"] == "succeeded"
        long = server.client.post("/api/generate/text2img", json={**TINY, "steps": 200}).json()["job_id"]
        waiting = server.client.post("/api/generate/upscale", json={
            "image": _png_b64(), "esrgan_model": "esrgan_x4"}).json()["job_id"]
        until(lambda: server.client.get(f"/api/queue/job/{long}").json()["step"] >= 1, 300,
              "the long job never stepped", interval=0.1)
    finally:
        assert server.close(signal.SIGKILL) == -signal.SIGKILL

    # a third attempt allowed, so the clean stop below re-queues the job instead of failing it
    server = ServeProcess(synthetic_models, data, log, child_env, "--max-attempts", "3")
    try:
        client = server.client
        finished = client.get(f"/api/queue/job/{done}").json()
        assert finished["status"] == "succeeded"
        meta = parse_a1111_parameters(read_output(client, finished).info["parameters"])
        assert meta["Seed"] == "3" and meta["Model"] == "sd1"
        interrupted = client.get(f"/api/queue/job/{long}").json()
        assert interrupted["status"] in ("queued", "running") and interrupted["attempts"] >= 1
        # the re-queued job runs first (it kept its place); stop cleanly while it runs
        until(lambda: client.get(f"/api/queue/job/{long}").json()["status"] == "running", 300,
              "the re-queued job did not run again", interval=0.1)
    finally:
        # uvicorn shuts down gracefully, then re-raises the signal: the exit status is SIGTERM's
        assert server.close(signal.SIGTERM) in (0, -signal.SIGTERM)

    store = JobStore(data / "jobs.sqlite3")
    try:
        after = store.get(long)
        # a clean stop re-queued it (a kill would have left it "running" in the database)
        assert after is not None and after.status == "queued" and after.attempts == 2
        assert store.get(waiting).status == "queued"
        assert store.get(done).status == "succeeded"
        assert (data / "outputs" / done / "000.png").is_file()
    finally:
        store.close()


def _png_b64() -> str:
    import base64

    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (1, 2, 3)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def test_restart_endpoint_reexecutes_the_server(tmp_path: Path, child_env: dict[str, str]) -> None:
    models = tmp_path / "models"
    (models / "checkpoints").mkdir(parents=True)
    server = ServeProcess(models, tmp_path / "data", tmp_path / "server.log", child_env)
    try:
        pid = server.client.get("/api/system").json()["platform"]["pid"]
        up = server.client.get("/api/status").json()["uptime_seconds"]
        until(lambda: server.client.get("/api/status").json()["uptime_seconds"] > up + 0.2, 10, "no uptime")
        before = server.client.get("/api/status").json()["uptime_seconds"]
        assert server.client.post("/api/system/restart").json() == {"status": "restarting"}

        def restarted() -> bool:
            try:
                return server.client.get("/api/status").json()["uptime_seconds"] < before
            except httpx.TransportError:
                return False

        until(restarted, 60, "the server did not come back", interval=0.1)
        assert server.client.get("/api/system").json()["platform"]["pid"] == pid  # re-executed in place
    finally:
        server.close(signal.SIGTERM)
