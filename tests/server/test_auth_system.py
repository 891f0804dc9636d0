"""``auth pam`` and ``auth unix`` on a real server, against a real system account this module creates (root and
the shadow tools needed: CI runs as root; elsewhere these tests skip with the reason)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from server_live import FakeRunner, LiveServer, client_as, make_config

from sdrest.server.app import create_app
from sdrest.testing.accounts import SystemUser, admin, system_account

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="system users are checked on Linux")


@pytest.fixture(scope="module")
def account() -> Iterator[SystemUser]:
    """The real account, and a PAM service file for it (pam_unix without the failure delay)."""
    with system_account() as made:
        admin("chpasswd", stdin=f"{made.name}:{made.password}\n")
        yield made


@pytest.mark.parametrize("mode", ["unix", "pam"])
def test_a_system_user_logs_in_and_gets_a_row(mode: str, account: SystemUser, tmp_path: Path,
                                              fake_models: Path) -> None:
    settings = {"auth": mode, "pam_service": account.pam_service, "admin_users": account.name}
    with LiveServer(create_app(make_config(tmp_path, fake_models, **settings), runner=FakeRunner())) as live:
        wrong = live.client.post("/api/auth/login", json={"username": account.name, "password": "not-the-password"})
        assert wrong.status_code == 401
        unknown = live.client.post("/api/auth/login", json={"username": "sdrtnobody", "password": account.password})
        assert unknown.status_code == 401 and unknown.json() == wrong.json()
        tokens = live.client.post("/api/auth/login", json={"username": account.name, "password": account.password})
        assert tokens.status_code == 200, tokens.text
        assert tokens.json()["user"] == {"username": account.name, "role": "admin"}  # from admin_users
        with client_as(live, tokens.json()["access_token"]) as user:
            assert user.get("/api/users").json()["users"][0]["source"] == "system"
            assert user.post("/api/generate/text2img", json={"prompt": "a hill", "steps": 1, "width": 64,
                                                             "height": 64, "model": "fake"}).status_code == 202
        refused = live.client.post("/api/auth/login", json={"username": "root", "password": "x" * 8})
        assert refused.status_code == 401
