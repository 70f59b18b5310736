"""Workspaces (server/routers/workspaces.py): creation, tokens, /me, and isolation.

That every model route answers 401 without a valid token and 404 to another workspace's
token is in test_errors.py.
"""

from __future__ import annotations

import pytest


def test_create_workspace_gives_id_and_token(client):
    r = client.post("/api/workspaces")
    assert r.status_code == 201
    body = r.json()
    assert set(body) == {"id", "token"}
    assert len(body["token"]) >= 32  # secrets.token_urlsafe(32): 43 characters
    other = client.post("/api/workspaces").json()
    assert other["id"] != body["id"] and other["token"] != body["token"]


def test_me_reports_models_and_limits(api, client):
    ws = api.ok(api.get("/api/workspaces/me"))
    assert ws["models"] == 0
    assert ws["limits"]["max_params"] == 2_000_000
    assert ws["limits"]["max_models_per_workspace"] == 20
    assert ws["limits"]["max_body_bytes"] == 2**20
    api.create(preset="linear_3_2")
    assert api.ok(api.get("/api/workspaces/me"))["models"] == 1


def test_me_needs_a_token(client, api):
    api.error(client.get("/api/workspaces/me"), 401, "unauthorized")
    bad = {"Authorization": "Bearer not-a-token"}
    api.error(client.get("/api/workspaces/me", headers=bad), 401, "unauthorized")


def test_token_opens_only_its_workspace(api):
    other = api.other()
    me = api.ok(api.get("/api/workspaces/me"))
    them = api.ok(other.get("/api/workspaces/me"))
    assert me["id"] != them["id"]


def test_listing_shows_only_own_models(api):
    other = api.other()
    mine = {api.create(preset="lenet5", seed=0)["id"], api.create(preset="mlp", seed=1)["id"]}
    theirs = {other.create(preset="linear_3_2")["id"]}
    listed = api.ok(api.get("/api/models"))
    assert {m["id"] for m in listed["models"]} == mine
    assert {m["id"] for m in other.ok(other.get("/api/models"))["models"]} == theirs


@pytest.mark.parametrize(
    ("method", "url"),
    [("GET", "/api/models"), ("POST", "/api/models"), ("GET", "/api/workspaces/me")],
)
def test_workspace_routes_need_a_token(api, method, url):
    kwargs = {"json": {"preset": "lenet5"}} if method == "POST" else {}
    api.error(api.client.request(method, url, **kwargs), 401, "unauthorized")


def test_unknown_model_id_is_404(api):
    for suffix in ("", "/summary", "/parameters", "/weights", "/code"):
        api.error(api.get(f"/api/models/0123456789abcdef{suffix}"), 404, "model_not_found")
