"""No absolute server path reaches a client: settings, status, model statistics, folders, job errors."""

from __future__ import annotations

from pathlib import Path

from server_live import FakeRunner, LiveServer, wait_job

TXT2IMG = {"prompt": "a cat", "width": 64, "height": 64, "steps": 1, "seed": 1, "model": "fake"}


def test_no_absolute_paths_in_answers(fake_server: LiveServer, fake_runner: FakeRunner, tmp_path: Path) -> None:
    client = fake_server.client
    models_dir = str(fake_server.state.config.models_dir)
    data_dir = str(fake_server.state.config.data_dir)
    fake_runner.fail_next = f"cannot open {models_dir}/checkpoints/fake.safetensors from {data_dir}/inputs/x.png"
    job_id = client.post("/api/generate/text2img", json=TXT2IMG).json()["job_id"]
    job = wait_job(client, job_id)
    assert job["status"] == "failed"
    assert job["error"] == "RuntimeError: cannot open checkpoints/fake.safetensors from inputs/x.png"
    assert wait_job(client, client.post("/api/generate/text2img", json=TXT2IMG).json()["job_id"])["status"] \
        == "succeeded"
    for path in ("/api/config", "/api/status", "/api/models/stats", "/api/models/directories", "/api/models",
                 f"/api/queue/job/{job_id}", "/api/queue/status", "/api/system"):
        text = client.get(path).text
        assert str(tmp_path) not in text, (path, text)
    assert client.get("/api/config").json()["models_dir"] == "models"
