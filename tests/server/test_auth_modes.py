"""The auth modes side by side: none, api-key, optional (guests), and jwt before its first admin exists."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from server_live import AUTH_USERS, FakeRunner, LiveServer, add_users, client_as, make_config, password_of, wait_job

from sdrest.auth.store import AuthStore
from sdrest.cli import main
from sdrest.server.app import create_app

SMALL = {"prompt": "a boat", "steps": 1, "width": 64, "height": 64, "model": "fake"}


def _server(tmp_path: Path, models: Path, users: dict[str, str] | None = None, **settings: object) -> LiveServer:
    config = make_config(tmp_path, models, **settings)
    if users:
        add_users(config.data_dir, users)
    return LiveServer(create_app(config, runner=FakeRunner()))


@pytest.fixture
def api_key_server(tmp_path: Path, fake_models: Path) -> Iterator[LiveServer]:
    with _server(tmp_path, fake_models, AUTH_USERS, auth="api-key") as live:
        yield live


def test_auth_none_is_everyone_as_admin_and_has_no_login(tmp_path: Path, fake_models: Path) -> None:
    with _server(tmp_path, fake_models) as live:
        me = live.client.get("/api/auth/me").json()
        assert me["role"] == "admin" and me["auth"] == "none" and me["login"] is False
        refused = live.client.post("/api/auth/login", json={"username": "a", "password": "b"})
        assert refused.status_code == 400 and "auth none" in refused.json()["error"]["message"]
        job = live.client.post("/api/generate/text2img", json=SMALL).json()
        assert "signed_url" not in wait_job(live.client, job["job_id"])["outputs"][0]


def test_auth_none_refuses_a_network_address_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["serve", "--host", "0.0.0.0", "--data-dir", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1
    assert "without authentication" in err[0] and "--allow-unauthenticated-network" in err[0]


def test_the_deprecated_flags_still_choose_the_mode(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # --port 70000 stops it after the flags were read, before anything starts
    code = main(["serve", "--enable-pam-auth", "--host", "0.0.0.0", "--port", "70000", "--data-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code != 0
    assert "--enable-pam-auth is deprecated; use --auth pam" in err
    assert "port: must be 0..65535" in err  # not the refusal to serve without auth: pam was chosen


def test_auth_api_key_takes_keys_only(api_key_server: LiveServer) -> None:
    live = api_key_server
    refused = live.client.post("/api/auth/login", json={"username": "alice", "password": password_of("alice")})
    assert refused.status_code == 400 and "API key" in refused.json()["error"]["message"]
    store = AuthStore(live.state.config.data_dir / "auth.sqlite3")
    try:
        _, key = store.add_key("alice", "test")
    finally:
        store.close()
    with client_as(live, key) as alice:
        assert alice.get("/api/auth/me").json()["username"] == "alice"
        job_id = alice.post("/api/generate/text2img", json=SMALL).json()["job_id"]
        assert wait_job(alice, job_id)["owner"] == "alice"
    with client_as(live, "eyJhbGciOiJIUzI1NiJ9.e30.x") as token_user:
        assert "API keys only" in token_user.get("/api/models").json()["error"]["message"]


def test_auth_optional_gives_each_guest_their_own_jobs(tmp_path: Path, fake_models: Path) -> None:
    with _server(tmp_path, fake_models, AUTH_USERS, auth="optional") as live, \
            httpx.Client(base_url=live.url, timeout=30) as guest, httpx.Client(base_url=live.url, timeout=30) as other:
        me = guest.get("/api/auth/me").json()
        assert me["guest"] is True and me["role"] == "user"
        cookie = guest.cookies["sdrest_guest"]
        job_id = guest.post("/api/generate/text2img", json=SMALL).json()["job_id"]
        assert wait_job(guest, job_id)["status"] == "succeeded"
        assert guest.cookies["sdrest_guest"] == cookie  # the same guest all along
        assert other.get(f"/api/queue/job/{job_id}").status_code == 404
        assert other.get("/api/queue/status").json()["recent"] == []
        assert guest.get("/api/users").status_code == 403
        assert guest.post("/api/auth/keys", json={"label": "x"}).status_code == 403
        forged_cookie = cookie[:-1] + ("1" if cookie.endswith("0") else "0")  # one hex digit of the MAC changed
        forged = httpx.Client(base_url=live.url, timeout=30, cookies={"sdrest_guest": forged_cookie})
        with forged:
            assert forged.get(f"/api/queue/job/{job_id}").status_code == 404
        tokens = live.client.post("/api/auth/login", json={"username": "alice", "password": password_of("alice")})
        with client_as(live, tokens.json()["access_token"]) as alice:
            assert alice.get(f"/api/queue/job/{job_id}").status_code == 404
            assert alice.get("/api/auth/me").json()["guest"] is False


def test_auth_jwt_without_an_admin_refuses_until_one_is_made(tmp_path: Path, fake_models: Path,
                                                             monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    with _server(tmp_path, fake_models, auth="jwt") as live:
        refused = live.client.get("/api/models")
        assert refused.status_code == 503 and refused.json()["error"]["code"] == "no_admin"
        assert "sdrest users add NAME --role admin" in refused.json()["error"]["message"]
        assert live.client.get("/api/health").status_code == 200
        # made from the terminal while the server runs
        data_dir = str(live.state.config.data_dir)
        monkeypatch.setattr("sys.stdin", io.StringIO("first-admin-pass\n"))
        assert main(["users", "add", "root", "--role", "admin", "--password-stdin", "--data-dir", data_dir]) == 0
        assert "added admin root" in capsys.readouterr().out
        tokens = live.client.post("/api/auth/login", json={"username": "root", "password": "first-admin-pass"})
        assert tokens.status_code == 200
        with client_as(live, tokens.json()["access_token"]) as root:
            assert root.get("/api/models").status_code == 200
        assert live.client.get("/api/models").status_code == 401
