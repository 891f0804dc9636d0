"""The UI's files as the server serves them: redirects, types, the page policy, and no way out of the folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from server_live import AUTH_USERS, FakeRunner, LiveServer, add_users, make_config

from sdrest.config import load_config
from sdrest.server.app import create_app
from sdrest.server.webui import PACKAGED_UI, ui_file


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server with auth on (the UI's files stay public) and a stand-in runner."""
    tmp = tmp_path_factory.mktemp("webui")
    (tmp / "models").mkdir()
    config = make_config(tmp, tmp / "models", auth="jwt")
    add_users(config.data_dir, AUTH_USERS)
    with LiveServer(create_app(config, runner=FakeRunner())) as server:
        yield server


def test_root_and_ui_redirect_to_the_ui(live: LiveServer) -> None:
    for path in ("/", "/ui"):
        response = live.client.get(path, follow_redirects=False)
        assert response.status_code == 307
        assert response.headers["location"] == "/ui/"


def test_the_page_is_public_html_under_the_page_policy(live: LiveServer) -> None:
    response = live.client.get("/ui/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "default-src 'self'" in policy
    assert '<script type="module" src="js/main.js">' in response.text
    assert "<script>" not in response.text  # no inline script: the policy would block it


def test_every_file_the_page_names_is_served_with_its_type(live: LiveServer) -> None:
    types = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml", ".html": "text/html"}
    files = [p for p in PACKAGED_UI.rglob("*") if p.is_file()]
    assert len(files) >= 10
    for path in files:
        relative = path.relative_to(PACKAGED_UI).as_posix()
        response = live.client.get(f"/ui/{relative}")
        assert response.status_code == 200, relative
        assert response.headers["content-type"].startswith(types[path.suffix]), relative
        assert response.headers["cache-control"] == "no-cache"
        assert response.content == path.read_bytes()


def test_modules_import_only_modules_of_the_ui(live: LiveServer) -> None:
    """No CDN and no third-party code: every import is a relative path to a file that is served."""
    import re

    for path in (PACKAGED_UI / "js").rglob("*.js"):
        for target in re.findall(r"^import .* from '([^']+)';$", path.read_text(), flags=re.M):
            assert target.startswith("./") or target.startswith("../"), (path.name, target)
            assert (path.parent / target).resolve().is_file(), (path.name, target)


@pytest.mark.parametrize("path", ["/ui/../pyproject.toml", "/ui/%2e%2e/%2e%2e/pyproject.toml", "/ui/..%2f..%2fconfig.py",
                                  "/ui/js/../../server/app.py", "/ui/.hidden", "/ui/missing.js", "/ui/js/",
                                  "/ui/%00.js", "/ui/..%5c..%5cconfig.py"])
def test_no_path_reaches_outside_the_folder(live: LiveServer, path: str) -> None:
    response = live.client.get(path)
    assert response.status_code == 404, path
    assert response.json()["error"]["code"] == "not_found"


def test_ui_file_refuses_links_out_of_the_folder(tmp_path: Path) -> None:
    (tmp_path / "ui").mkdir()
    (tmp_path / "secret.js").write_text("secret")
    (tmp_path / "ui" / "link.js").symlink_to(tmp_path / "secret.js")
    (tmp_path / "ui" / "app.js").write_text("ok")
    (tmp_path / "ui" / "notes.txt").write_text("not a UI file type")
    assert ui_file(tmp_path / "ui", "app.js") == (tmp_path / "ui" / "app.js").resolve()
    assert ui_file(tmp_path / "ui", "link.js") is None
    assert ui_file(tmp_path / "ui", "notes.txt") is None
    assert ui_file(tmp_path / "ui", "") is None  # no index.html there


def test_ui_dir_overrides_the_packaged_files(tmp_path: Path) -> None:
    ui = tmp_path / "ui"
    ui.mkdir()
    (ui / "index.html").write_text("<!doctype html><title>mine</title>")
    config = load_config({"ui_dir": str(ui), "data_dir": str(tmp_path / "data")}, environ={})
    assert config.ui_dir == ui.resolve()
    with LiveServer(create_app(config, runner=FakeRunner())) as live:
        assert live.client.get("/ui/").text == "<!doctype html><title>mine</title>"
        assert live.client.get("/ui/app.css").status_code == 404


def test_a_ui_dir_without_index_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="ui_dir: .* holds no index.html"):
        load_config({"ui_dir": str(tmp_path), "data_dir": str(tmp_path / "data")}, environ={})


def test_status_says_whether_to_show_a_login_form(live: LiveServer) -> None:
    anonymous = httpx.get(f"{live.url}/api/status")
    assert anonymous.status_code == 200
    assert anonymous.json()["auth"] == {"mode": "jwt", "login": True}
