"""Tokens, keys, passwords and cookies against a real server (``auth jwt``): every forged, stale or revoked
credential is refused with a JSON 401, and every good one works."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import warnings
from typing import Any

import httpx
import jwt
import pytest
from server_live import LiveServer, client_as, login, password_of

from sdrest.auth.tokens import derive_key, load_secret

ME = "/api/auth/validate"


def _key(live: LiveServer) -> bytes:
    """The server's token key (read from its data dir, as only someone with the server's files could)."""
    return derive_key(load_secret(live.state.config.data_dir, None), "jwt")


def _claims(name: str = "alice", role: str = "user", typ: str = "access", **extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"sub": name, "role": role, "iat": now, "exp": now + 600, "jti": f"j{now}{name}", "typ": typ,
            "fam": "forged", "ver": 0, **extra}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _refused(live: LiveServer, token: str, path: str = ME) -> dict[str, Any]:
    with client_as(live, token) as client:
        response = client.get(path)
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["www-authenticate"].startswith("Bearer")
    return response.json()["error"]


def test_a_login_gives_tokens_that_work(auth_server: LiveServer) -> None:
    tokens = login(auth_server, "alice")
    assert tokens["token_type"] == "bearer" and tokens["user"] == {"username": "alice", "role": "user"}
    assert tokens["expires_in"] == 15 * 60
    with client_as(auth_server, tokens["access_token"]) as client:
        me = client.get("/api/auth/me").json()
        assert me["username"] == "alice" and me["role"] == "user" and me["auth"] == "jwt"
        assert client.get(ME).json()["valid"] is True
        assert client.get("/api/v1/auth/profile").json()["username"] == "alice"
    claims = jwt.decode(tokens["access_token"], _key(auth_server), algorithms=["HS256"])
    assert {"sub", "role", "iat", "exp", "jti", "typ"} <= set(claims) and claims["typ"] == "access"


def test_wrong_password_and_unknown_user_get_the_same_answer(auth_server: LiveServer) -> None:
    wrong = auth_server.client.post("/api/auth/login", json={"username": "alice", "password": "not-hers-123"})
    unknown = auth_server.client.post("/api/auth/login", json={"username": "nobody", "password": "not-hers-123"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    with client_as(auth_server, login(auth_server, "admin")["access_token"]) as admin:
        entries = admin.get("/api/auth/audit", params={"limit": 50}).json()["entries"]
    failures = [e for e in entries if e["outcome"] == "failure" and e["method"] == "login"]
    assert {e["username"] for e in failures} >= {"alice", "nobody"}
    assert all(e["address"] == "127.0.0.1" for e in failures)
    assert "not-hers-123" not in json.dumps(entries)  # never a password


def test_the_seed_v1_login_path_works(auth_server: LiveServer) -> None:
    response = auth_server.client.post("/api/v1/auth/login", json={"username": "bob", "password": password_of("bob")})
    assert response.status_code == 200 and response.headers["cache-control"] == "no-store"


def test_no_credentials_is_401_and_public_routes_stay_open(auth_server: LiveServer) -> None:
    anonymous = auth_server.client
    for path in ("/api/models", "/api/queue/status", "/api/samplers", "/api/events"):
        response = anonymous.get(path)
        assert response.status_code == 401, path
        assert "authentication required" in response.json()["error"]["message"]
    for path in ("/api/health", "/api/version", "/api/status", "/api/openapi.json", "/api/docs"):
        assert anonymous.get(path).status_code == 200, path


def test_forged_signature_is_refused(auth_server: LiveServer) -> None:
    forged = jwt.encode(_claims(role="admin"), b"guessed secret" * 3, algorithm="HS256")
    assert "signature" in _refused(auth_server, forged)["message"]


def test_alg_none_is_refused(auth_server: LiveServer) -> None:
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    payload = _b64(json.dumps(_claims(role="admin")).encode())
    for token in (f"{header}.{payload}.", f"{header}.{payload}"):
        assert "algorithm" in _refused(auth_server, token)["message"] or "malformed" in _refused(auth_server,
                                                                                                  token)["message"]


def test_other_algorithms_with_the_right_key_are_refused(auth_server: LiveServer) -> None:
    key = _key(auth_server)
    with warnings.catch_warnings():  # pyjwt warns that 32 bytes are short for HS512: that is the forger's problem
        warnings.simplefilter("ignore")
        hs512 = jwt.encode(_claims(), key, algorithm="HS512")
    assert "algorithm" in _refused(auth_server, hs512)["message"]
    # RS256 in the header, HMAC-signed with the server's key (the classic key-confusion forgery)
    header = _b64(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
    payload = _b64(json.dumps(_claims(role="admin")).encode())
    signature = _b64(hmac.new(key, f"{header}.{payload}".encode(), hashlib.sha256).digest())
    assert "algorithm" in _refused(auth_server, f"{header}.{payload}.{signature}")["message"]
    # a real RS256 token
    from cryptography.hazmat.primitives.asymmetric import rsa

    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert "algorithm" in _refused(auth_server, jwt.encode(_claims(), private, algorithm="RS256"))["message"]


def test_expired_and_not_yet_valid_tokens_are_refused(auth_server: LiveServer) -> None:
    key = _key(auth_server)
    now = int(time.time())
    expired = jwt.encode(_claims(iat=now - 3600, exp=now - 60), key, algorithm="HS256")
    assert "expired" in _refused(auth_server, expired)["message"]
    early = jwt.encode(_claims(nbf=now + 600, iat=now), key, algorithm="HS256")
    assert "not valid yet" in _refused(auth_server, early)["message"]
    future_iat = jwt.encode(_claims(iat=now + 600), key, algorithm="HS256")
    assert "not valid yet" in _refused(auth_server, future_iat)["message"]


def test_a_validly_signed_token_must_match_the_user(auth_server: LiveServer) -> None:
    """Right key, right claims, but a login the server never made (its version and family are checked)."""
    key = _key(auth_server)
    assert _refused(auth_server, jwt.encode(_claims(name="ghost"), key, algorithm="HS256"))
    missing = {k: v for k, v in _claims().items() if k != "jti"}
    assert "jti" in _refused(auth_server, jwt.encode(missing, key, algorithm="HS256"))["message"]


def test_wrong_typ_is_refused(auth_server: LiveServer) -> None:
    tokens = login(auth_server, "alice")
    assert "access" in _refused(auth_server, tokens["refresh_token"])["message"]
    response = auth_server.client.post("/api/auth/refresh", json={"refresh_token": tokens["access_token"]})
    assert response.status_code == 401 and "refresh" in response.json()["error"]["message"]


def test_refresh_rotates_and_reuse_revokes_the_whole_login(auth_server: LiveServer) -> None:
    first = login(auth_server, "bob")
    second = auth_server.client.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200
    second_tokens = second.json()
    with client_as(auth_server, second_tokens["access_token"]) as client:
        assert client.get(ME).status_code == 200
    # the rotated-away token, used again: refused, and the login it belongs to ends
    again = auth_server.client.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert again.status_code == 401 and "used before" in again.json()["error"]["message"]
    assert "revoked" in _refused(auth_server, second_tokens["access_token"])["message"]
    stolen_successor = auth_server.client.post("/api/auth/refresh", json={"refresh_token": second_tokens["refresh_token"]})
    assert stolen_successor.status_code == 401
    # another login of the same user is untouched
    with client_as(auth_server, login(auth_server, "bob")["access_token"]) as client:
        assert client.get(ME).status_code == 200


def test_logout_revokes(auth_server: LiveServer) -> None:
    tokens = login(auth_server, "alice")
    with client_as(auth_server, tokens["access_token"]) as client:
        assert client.post("/api/auth/logout").json()["logged_out"] is True
    assert "revoked" in _refused(auth_server, tokens["access_token"])["message"]
    assert auth_server.client.post("/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]}).status_code == 401


def test_password_change_and_disabling_revoke_the_users_tokens(auth_server: LiveServer) -> None:
    admin = login(auth_server, "admin")["access_token"]
    with client_as(auth_server, admin) as root:
        assert root.post("/api/users", json={"username": "carol", "password": "carol-pass-1"}).status_code == 201
        carol = auth_server.client.post("/api/auth/login", json={"username": "carol", "password": "carol-pass-1"}).json()
        assert root.post("/api/users/carol/password", json={"password": "carol-pass-2"}).status_code == 200
        assert "revoked" in _refused(auth_server, carol["access_token"])["message"]
        assert auth_server.client.post("/api/auth/refresh", json={"refresh_token": carol["refresh_token"]}
                                       ).status_code == 401
        carol = auth_server.client.post("/api/auth/login", json={"username": "carol", "password": "carol-pass-2"}).json()
        with client_as(auth_server, carol["access_token"]) as client:
            key = client.post("/api/auth/keys", json={"label": "k"}).json()["key"]
        assert root.post("/api/users/carol", json={"disabled": True}).json()["disabled"] is True
        assert _refused(auth_server, carol["access_token"])
        assert _refused(auth_server, key)
        assert auth_server.client.post("/api/auth/login", json={"username": "carol", "password": "carol-pass-2"}
                                       ).status_code == 401
        assert root.delete("/api/users/carol").status_code == 200


def test_api_keys_bearer_header_and_basic(auth_server: LiveServer) -> None:
    with client_as(auth_server, login(auth_server, "alice")["access_token"]) as alice:
        created = alice.post("/api/auth/keys", json={"label": "script"})
        assert created.status_code == 201 and created.headers["cache-control"] == "no-store"
        key, key_id = created.json()["key"], created.json()["id"]
        listed = alice.get("/api/auth/keys").json()["keys"]
        assert [k["id"] for k in listed if k["id"] == key_id] and "key" not in listed[0]
    basic = base64.b64encode(f"apikey:{key}".encode()).decode()
    for headers in ({"Authorization": f"Bearer {key}"}, {"X-API-Key": key}, {"Authorization": f"Basic {basic}"}):
        response = auth_server.client.get(ME, headers=headers)
        assert response.status_code == 200 and response.json()["user"]["username"] == "alice", headers
    with client_as(auth_server, key) as alice:
        assert alice.delete(f"/api/auth/keys/{key_id}").status_code == 200
    assert "not valid" in _refused(auth_server, key)["message"]
    tampered = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    assert auth_server.client.get(ME, headers={"X-API-Key": tampered}).status_code == 401


def test_basic_with_a_password(auth_server: LiveServer) -> None:
    good = base64.b64encode(f"bob:{password_of('bob')}".encode()).decode()
    response = auth_server.client.get(ME, headers={"Authorization": f"Basic {good}"})
    assert response.status_code == 200 and response.json()["user"]["via"] == "basic"
    bad = base64.b64encode(b"bob:wrong-password").decode()
    assert auth_server.client.get(ME, headers={"Authorization": f"Basic {bad}"}).status_code == 401
    assert auth_server.client.get(ME, headers={"Authorization": "Basic !!!"}).status_code == 401
    assert auth_server.client.get(ME, headers={"Authorization": "Digest abc"}).status_code == 401


def test_session_cookie_needs_the_csrf_header_to_change_anything(auth_server: LiveServer) -> None:
    with httpx.Client(base_url=auth_server.url, timeout=30) as browser:
        response = browser.post("/api/auth/login", json={"username": "alice", "password": password_of("alice"),
                                                         "cookie": True})
        assert response.status_code == 200 and "access_token" not in response.json()
        cookies = response.headers.get_list("set-cookie")
        session = next(c for c in cookies if c.startswith("sdrest_session="))
        assert "HttpOnly" in session and "SameSite=Strict" in session
        csrf = response.json()["csrf_token"]
        assert browser.cookies["sdrest_csrf"] == csrf
        assert browser.get("/api/auth/me").json()["via"] == "cookie"
        body = {"prompt": "a cat", "steps": 1, "width": 64, "height": 64}
        refused = browser.post("/api/generate/text2img", json=body)
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "csrf"
        assert browser.post("/api/generate/text2img", json=body, headers={"X-CSRF-Token": "wrong"}).status_code == 403
        assert browser.post("/api/generate/text2img", json=body, headers={"X-CSRF-Token": csrf}).status_code == 202
        assert browser.post("/api/auth/logout", headers={"X-CSRF-Token": csrf}).status_code == 200
        assert browser.get("/api/auth/me").status_code == 401


@pytest.mark.parametrize("body", [{}, {"username": "alice"}, {"username": "", "password": "x"},
                                  {"username": "alice", "password": 5}, {"username": ["a"], "password": "x"}])
def test_malformed_logins_are_422(auth_server: LiveServer, body: dict[str, Any]) -> None:
    response = auth_server.client.post("/api/auth/login", json=body)
    assert response.status_code == 422 and response.json()["error"]["field"] in ("username", "password")
