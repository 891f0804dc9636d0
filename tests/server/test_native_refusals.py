"""Parameters that crash sd.cpp are refused with a 422 naming the field, before anything is queued."""

from __future__ import annotations

from server_live import LiveServer, wait_job

BASE = {"prompt": "x", "width": 64, "height": 64, "model": "fake"}


def test_gits_with_one_step_is_refused(fake_server: LiveServer) -> None:
    """The probe's request (it segfaulted the server) answers 422 naming ``steps``; nothing is queued."""
    response = fake_server.client.post("/api/generate/text2img", json={**BASE, "steps": 1, "scheduler": "gits"})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["field"] == "steps" and error["code"] == "invalid"
    assert "gits" in error["message"] and "at least 2 steps" in error["message"]
    counts = fake_server.client.get("/api/queue/status").json()["counts"]
    assert counts["queued"] == 0 and counts.get("running", 0) == 0


def test_gits_with_two_steps_and_one_step_elsewhere_are_accepted(fake_server: LiveServer) -> None:
    """The refusal is about that combination only."""
    for change in ({"steps": 2, "scheduler": "gits"}, {"steps": 1, "scheduler": "karras"}, {"steps": 1}):
        response = fake_server.client.post("/api/generate/text2img", json={**BASE, **change})
        assert response.status_code == 202, (change, response.text)
        assert wait_job(fake_server.client, response.json()["job_id"])["status"] == "succeeded"
