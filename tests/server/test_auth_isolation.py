"""Users apart (``auth jwt``, a real server): another user's job is a 404 everywhere, a plain user is refused
every admin route, no path parameter reaches outside its folder, CORS answers only the listed origin."""

from __future__ import annotations

import http.client
import json
from typing import Any

import httpx
import pytest
from server_live import LiveServer, login, sse_events, until, wait_job

from sdrest.server.errors import ApiError
from sdrest.server.spec import ADMIN, PUBLIC, ApiRoute

UI_ORIGIN = "http://ui.example:3000"
AUTH_SETTINGS = {"cors_origins": UI_ORIGIN}
SMALL = {"prompt": "a lighthouse", "steps": 2, "width": 64, "height": 64}


@pytest.fixture(scope="module")
def alices_job(clients: dict[str, httpx.Client]) -> dict[str, Any]:
    """A finished job of alice's, with one output."""
    response = clients["alice"].post("/api/generate/text2img", json=SMALL)
    assert response.status_code == 202, response.text
    return wait_job(clients["alice"], response.json()["job_id"])


def _api_routes(live: LiveServer) -> list[ApiRoute]:
    return [r for r in live.app.routes if isinstance(r, ApiRoute)]


def _filled(route: ApiRoute, value: str = "x") -> str:
    path = route.path
    for name in route.param_convertors:
        path = path.replace(f"{{{name}:path}}", value).replace(f"{{{name}}}", value)
    return path


def test_another_users_job_is_404_everywhere(clients: dict[str, httpx.Client], alices_job: dict[str, Any]) -> None:
    alice, bob = clients["alice"], clients["bob"]
    job_id = alices_job["id"]
    name = alices_job["outputs"][0]["filename"]
    assert alice.get(f"/api/queue/job/{job_id}").status_code == 200
    for path in (f"/api/queue/job/{job_id}", f"/api/queue/job/{job_id}/events",
                 f"/api/queue/job/{job_id}/output/{name}", f"/api/v1/jobs/{job_id}/output/{name}",
                 f"/api/queue/job/{job_id}/output/{name}?thumb=1"):
        response = bob.get(path)
        assert response.status_code == 404, path
        assert response.json()["error"]["message"] == f"no job {job_id!r}"  # as if it did not exist
    assert bob.post("/api/queue/cancel", json={"job_id": job_id}).status_code == 404
    listed = bob.get("/api/queue/status").json()
    assert job_id not in json.dumps(listed["jobs"] + listed["recent"])
    assert job_id in json.dumps(alice.get("/api/queue/status").json()["recent"])
    assert clients["admin"].get(f"/api/queue/job/{job_id}").json()["owner"] == "alice"


def test_streams_and_status_show_others_only_as_counts(auth_server: LiveServer,
                                                       clients: dict[str, httpx.Client]) -> None:
    runner = auth_server.runner
    runner.hold.clear()
    runner.started.clear()
    try:
        bobs = clients["bob"].post("/api/generate/text2img", json=SMALL).json()["job_id"]
        assert runner.started.wait(10)
        status = auth_server.client.get("/api/status").json()  # anonymous
        assert bobs not in json.dumps(status) and status["queue"]["running"] == 1
        assert clients["alice"].get("/api/status").json()["running_jobs"] == []
        assert clients["bob"].get("/api/status").json()["running_jobs"] == [bobs]
        hello = sse_events(clients["alice"], "/api/events", lambda e: e["type"] == "hello")
        assert hello[-1]["running"] == [] and hello[-1]["counts"]["running"] == 1
    finally:
        runner.hold.set()
    wait_job(clients["bob"], bobs)
    alices = clients["alice"].post("/api/generate/text2img", json=SMALL).json()["job_id"]
    events = sse_events(clients["bob"], "/api/events",
                        lambda e: e["type"] == "counts" and e["counts"].get("succeeded", 0) >= 2)
    assert all(e.get("job_id") != alices for e in events)


def test_clear_cancels_only_the_callers_jobs(auth_server: LiveServer, clients: dict[str, httpx.Client]) -> None:
    runner = auth_server.runner
    runner.hold.clear()
    try:
        first = clients["alice"].post("/api/generate/text2img", json=SMALL).json()["job_id"]
        queued = clients["alice"].post("/api/generate/text2img", json=SMALL).json()["job_id"]
        assert clients["bob"].post("/api/queue/clear").json()["cleared"] == 0
        assert clients["alice"].get(f"/api/queue/job/{queued}").json()["status"] == "queued"
        assert clients["alice"].post("/api/queue/clear").json()["job_ids"] == [queued]
    finally:
        runner.hold.set()
    wait_job(clients["alice"], first)


def test_clear_mine_spares_an_admins_view_of_the_others(auth_server: LiveServer,
                                                         clients: dict[str, httpx.Client]) -> None:
    runner = auth_server.runner
    runner.hold.clear()
    try:
        first = clients["alice"].post("/api/generate/text2img", json=SMALL).json()["job_id"]
        alices = clients["alice"].post("/api/generate/text2img", json=SMALL).json()["job_id"]
        admins = clients["admin"].post("/api/generate/text2img", json=SMALL).json()["job_id"]
        assert clients["admin"].post("/api/queue/clear", json={"mine": "yes"}).status_code == 422
        assert clients["admin"].post("/api/queue/clear", json={"mine": True}).json()["job_ids"] == [admins]
        assert clients["alice"].get(f"/api/queue/job/{alices}").json()["status"] == "queued"
        assert clients["alice"].post("/api/queue/clear", json={"mine": True}).json()["job_ids"] == [alices]
    finally:
        runner.hold.set()
    wait_job(clients["alice"], first)


def test_signed_urls_open_an_output_without_credentials(auth_server: LiveServer, alices_job: dict[str, Any],
                                                        clients: dict[str, httpx.Client]) -> None:
    output = clients["alice"].get(f"/api/queue/job/{alices_job['id']}").json()["outputs"][0]
    anonymous = auth_server.client
    assert anonymous.get(output["url"]).status_code == 401
    signed = anonymous.get(output["signed_url"])
    assert signed.status_code == 200 and signed.headers["content-type"] == "image/png"
    assert anonymous.get(output["signed_url"] + "&thumb=1").headers["content-type"] == "image/webp"
    assert anonymous.get(output["signed_url"].replace("signature=", "signature=x")).status_code == 401
    other_file = output["signed_url"].replace(output["filename"], "001.png", 1)
    assert anonymous.get(other_file).status_code == 401
    expired = output["signed_url"].replace("expires=", "expires=1")
    assert anonymous.get(expired).status_code == 401


def test_a_plain_user_is_refused_every_admin_route(auth_server: LiveServer, clients: dict[str, httpx.Client]) -> None:
    admin_routes = [r for r in _api_routes(auth_server) if r.access == ADMIN]
    assert len(admin_routes) >= 15
    for route in admin_routes:
        for method in sorted(route.methods - {"HEAD"}):
            response = clients["bob"].request(method, _filled(route), json={})
            assert response.status_code == 403, (method, route.path, response.text)
            if route.error_format is not None:  # a dialect's route answers in its dialect's shape
                expected = route.error_format(ApiError(403, "only an admin may do this", code="forbidden"))
                assert response.json() == json.loads(expected.body), (method, route.path)
            else:
                assert response.json()["error"]["code"] == "forbidden"


def test_every_route_but_the_public_ones_needs_credentials(auth_server: LiveServer) -> None:
    for route in _api_routes(auth_server):
        if route.access == PUBLIC:
            continue
        for method in sorted(route.methods - {"HEAD"}):
            response = auth_server.client.request(method, _filled(route), json={})
            assert response.status_code == 401, (method, route.path, response.status_code)


TRAVERSALS = ["..", "../..", "../../../../etc/passwd", "%2e%2e", "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
              "..%2f..%2fauth.sqlite3", "..%5c..%5cauth.sqlite3", "....//....//etc/passwd", "%252e%252e%252f",
              "/etc/passwd", "%2fetc%2fpasswd", "x%00.png", "..%00", "~root", "%c0%ae%c0%ae%c0%af", "\\..\\.."]


def _raw(live: LiveServer, method: str, path: str, token: str) -> tuple[int, bytes]:
    """A request whose target goes out exactly as written (no client normalises its dots)."""
    conn = http.client.HTTPConnection("127.0.0.1", live.port, timeout=30)
    try:
        conn.request(method, path, body=b"{}" if method != "GET" else None,
                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_no_path_parameter_reaches_outside_its_folder(auth_server: LiveServer) -> None:
    token = login(auth_server, "admin")["access_token"]
    routes = [r for r in _api_routes(auth_server) if r.param_convertors]
    assert len(routes) >= 8
    secret = (auth_server.state.config.data_dir / "auth-secret").read_text().encode()
    for route in routes:
        for method in sorted(route.methods - {"HEAD"}):
            for attack in TRAVERSALS:
                status, body = _raw(auth_server, method, _filled(route, attack), token)
                assert 400 <= status < 500, (method, route.path, attack, status, body[:200])
                assert b"root:" not in body and secret not in body and b"SQLite format" not in body


def test_cors_answers_only_the_listed_origin(auth_server: LiveServer) -> None:
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization,content-type"}
    listed = auth_server.client.options("/api/generate/text2img", headers={"Origin": UI_ORIGIN, **preflight})
    assert listed.status_code == 200
    assert listed.headers["access-control-allow-origin"] == UI_ORIGIN
    assert listed.headers["access-control-allow-credentials"] == "true"
    for origin in ("http://evil.example", "null", "http://ui.example:3001", UI_ORIGIN + ".evil.example"):
        refused = auth_server.client.options("/api/generate/text2img", headers={"Origin": origin, **preflight})
        assert refused.status_code >= 400 and "access-control-allow-origin" not in refused.headers, origin
        simple = auth_server.client.get("/api/health", headers={"Origin": origin})
        assert simple.headers.get("access-control-allow-origin") in (None, UI_ORIGIN) and \
            simple.headers.get("access-control-allow-origin") != "*"
        assert "access-control-allow-origin" not in simple.headers
    token = login(auth_server, "alice")["access_token"]
    cross = auth_server.client.post("/api/generate/text2img", json=SMALL,
                                    headers={"Origin": UI_ORIGIN, "Authorization": f"Bearer {token}"})
    assert cross.status_code == 202 and cross.headers["access-control-allow-origin"] == UI_ORIGIN
    evil = auth_server.client.post("/api/generate/text2img", json=SMALL,
                                   headers={"Origin": "http://evil.example", "Authorization": f"Bearer {token}"})
    assert evil.status_code == 403
    until(lambda: auth_server.client.get("/api/status").json()["queue"]["queued"] == 0, 30, "the queue did not drain")


def test_security_headers_on_every_response(auth_server: LiveServer) -> None:
    for path, kind in (("/api/health", "data"), ("/api/models", "data"), ("/api/docs", "page")):
        headers = auth_server.client.get(path).headers
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "no-referrer"
        assert headers["x-request-id"]
        policy = headers["content-security-policy"]
        assert "frame-ancestors 'none'" in policy
        assert ("default-src 'none'" in policy) == (kind == "data")
        if kind == "page":
            assert "script-src 'self' 'sha256-" in policy and "unsafe-eval" not in policy
    echoed = auth_server.client.get("/api/health", headers={"X-Request-ID": "client-42"})
    assert echoed.headers["x-request-id"] == "client-42"
