"""A page on another site cannot make a browser change anything on a server on localhost."""

from __future__ import annotations

import pytest
from server_live import LiveServer


@pytest.mark.parametrize("headers", [
    {"Origin": "https://evil.example"},
    {"Origin": "null"},
    {"Origin": "http://127.0.0.1.evil.example:8080"},
    {"Sec-Fetch-Site": "cross-site"},
])
def test_unsafe_cross_site_requests_are_refused(fake_server: LiveServer, headers: dict[str, str]) -> None:
    for path in ("/api/queue/clear", "/api/models/refresh", "/api/system/restart"):
        response = fake_server.client.post(path, headers=headers)
        assert response.status_code == 403, (path, response.text)
        assert response.json()["error"]["code"] == "cross_site"
    assert fake_server.client.get("/api/health", headers=headers).status_code == 200  # reading is harmless
    assert fake_server.client.get("/api/health").json()["status"] == "ok"  # and nothing restarted


def test_same_origin_and_non_browser_requests_pass(fake_server: LiveServer) -> None:
    own = f"http://127.0.0.1:{fake_server.port}"
    for headers in ({"Origin": own}, {"Origin": f"http://localhost:{fake_server.port}", "Sec-Fetch-Site": "same-site"},
                    {}):
        assert fake_server.client.post("/api/queue/clear", headers=headers).status_code == 200
