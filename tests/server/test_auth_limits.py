"""Back-off after failed logins, and per-user limits on jobs and request rates (a real server, ``auth jwt``)."""

from __future__ import annotations

import time

import httpx
from server_live import LiveServer, client_as, login, password_of, until, wait_job

AUTH_SETTINGS = {"login_attempts": 3, "login_backoff_seconds": 1.0, "max_queued_per_user": 2,
                 "requests_per_minute": 4}
SMALL = {"prompt": "a kite", "steps": 1, "width": 64, "height": 64}


def _login(live: LiveServer, name: str, password: str) -> httpx.Response:
    return live.client.post("/api/auth/login", json={"username": name, "password": password})


def test_wrong_passwords_past_the_limit_get_429_then_success_after_the_window(auth_server: LiveServer) -> None:
    for _ in range(3):
        assert _login(auth_server, "alice", "wrong-password").status_code == 401
    blocked = _login(auth_server, "alice", password_of("alice"))  # even the right password waits
    assert blocked.status_code == 429
    assert blocked.json()["error"]["code"] == "too_many_attempts"
    retry_after = int(blocked.headers["retry-after"])
    assert 1 <= retry_after <= 2
    # the other users of the address are not blocked by alice's failures
    assert _login(auth_server, "bob", password_of("bob")).status_code == 200
    time.sleep(retry_after)  # the window itself is what is tested
    assert _login(auth_server, "alice", password_of("alice")).status_code == 200
    # a success starts the count again
    assert _login(auth_server, "alice", "wrong-password").status_code == 401
    assert _login(auth_server, "alice", password_of("alice")).status_code == 200


def test_failures_back_off_longer_each_time(auth_server: LiveServer) -> None:
    for _ in range(3):
        assert _login(auth_server, "bob", "wrong-password").status_code == 401
    first = int(_login(auth_server, "bob", "wrong-password").headers["retry-after"])
    time.sleep(first)
    assert _login(auth_server, "bob", "wrong-password").status_code == 401  # the fourth failure doubles it
    second = int(_login(auth_server, "bob", "wrong-password").headers["retry-after"])
    assert second >= 2 and second > first - 1
    time.sleep(second)
    assert _login(auth_server, "bob", password_of("bob")).status_code == 200


def test_basic_auth_is_throttled_too(auth_server: LiveServer) -> None:
    import base64

    bad = base64.b64encode(b"admin:wrong-password").decode()
    statuses = [auth_server.client.get("/api/models", headers={"Authorization": f"Basic {bad}"}).status_code
                for _ in range(4)]
    assert statuses == [401, 401, 401, 429]
    until(lambda: _login(auth_server, "admin", password_of("admin")).status_code == 200, 5,
          "the back-off did not end")


def test_a_user_may_have_only_so_many_unfinished_jobs(auth_server: LiveServer) -> None:
    runner = auth_server.runner
    runner.hold.clear()
    with client_as(auth_server, login(auth_server, "alice")["access_token"]) as alice, \
            client_as(auth_server, login(auth_server, "admin")["access_token"]) as admin:
        try:
            ids = [alice.post("/api/generate/text2img", json=SMALL).json()["job_id"] for _ in range(2)]
            third = alice.post("/api/generate/text2img", json=SMALL)
            assert third.status_code == 429 and third.json()["error"]["code"] == "too_many_jobs"
            assert int(third.headers["retry-after"]) >= 1
            assert admin.post("/api/generate/text2img", json=SMALL).status_code == 202  # admins are not limited
        finally:
            runner.hold.set()
        for job_id in ids:
            wait_job(alice, job_id)


def test_a_user_may_ask_only_so_often(auth_server: LiveServer) -> None:
    with client_as(auth_server, login(auth_server, "bob")["access_token"]) as bob:
        statuses = []
        for _ in range(5):
            response = bob.post("/api/generate/text2img", json=SMALL)
            statuses.append(response.status_code)
            if response.status_code == 202:
                wait_job(bob, response.json()["job_id"])
        assert statuses == [202] * 4 + [429]
        refused = bob.post("/api/generate/text2img", json=SMALL)
        assert refused.json()["error"]["code"] == "rate_limited" and 1 <= int(refused.headers["retry-after"]) <= 60
