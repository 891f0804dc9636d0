"""A synchronous call (``?wait=true``) whose client goes away cancels its job: nobody is left to take the images."""

from __future__ import annotations

import json
import socket

from server_live import FakeRunner, LiveServer, wait_job


def test_a_waiting_client_that_leaves_cancels_its_job(fake_server: LiveServer, fake_runner: FakeRunner) -> None:
    fake_runner.hold.clear()
    body = json.dumps({"prompt": "a bell", "steps": 2, "width": 64, "height": 64, "model": "fake"}).encode()
    with socket.create_connection(("127.0.0.1", fake_server.port), timeout=10) as sock:
        sock.sendall(b"POST /api/generate/text2img?wait=true HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Content-Type: application/json\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        assert fake_runner.started.wait(10)
    (job_id,) = fake_runner.ran
    assert wait_job(fake_server.client, job_id, timeout=30)["status"] == "cancelled"
