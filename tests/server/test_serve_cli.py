"""``sdrest serve`` as an operator meets it: a warning for an empty models dir, one access-log line per
request (also in ``--log-file``), and a Ctrl-C that stops it quietly."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx
from server_live import until
from test_restart import free_port


def test_empty_models_dir_access_log_and_a_quiet_ctrl_c(tmp_path: Path, child_env: dict[str, str]) -> None:
    models = tmp_path / "models"
    models.mkdir()
    log_file = tmp_path / "logs" / "sdrest.log"
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "sdrest", "serve", "--models-dir", str(models), "--data-dir", str(tmp_path / "data"),
         "--port", str(port), "--log-file", str(log_file)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path,
        env={k: v for k, v in child_env.items() if not k.startswith("SDREST_") or "SYNTHETIC" in k})
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            def healthy() -> httpx.Response | None:
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                try:
                    return client.get("/api/health", headers={"X-Request-ID": "probe-1"})
                except httpx.TransportError:
                    return None

            answer = until(healthy, 120, "the server did not come up", interval=0.1)
            assert answer.headers["x-request-id"] == "probe-1"
            generated = client.get("/api/nowhere").headers["x-request-id"]
            assert len(generated) == 16
    finally:
        proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
        output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, output  # the shell's convention for an end by Ctrl-C
    assert "is empty: put checkpoints in" in output
    assert "Traceback" not in output and " ERROR " not in output and "interrupted" not in output, output
    assert "Finished server process" in output
    logged = log_file.read_text()
    assert "sdrest.access: GET /api/health 200 " in logged and "rid=probe-1" in logged
    assert "sdrest.access: GET /api/nowhere 404 " in logged and f"rid={generated}" in logged
    assert "worker-0 sdrest.jobs: ready" in logged  # the worker's lines reach the file too
