"""Who gets in and what they can reach: the class access code on POST /api/workspaces
(server/routers/workspaces.py), static files never served from outside static/ (traversal
in every spelling), and the cap on a safetensors upload's header (server/jobs.py).
"""

from __future__ import annotations

import asyncio
import json
import struct
from pathlib import Path
from urllib.parse import unquote

import httpx
import pytest

from server.app import create_app
from server.errors import status_of
from server.routers.workspaces import check_access_code
from server.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
CODE = "owl-42-river"
ASK = "Ask your teacher for the class access code"


# -- the class access code ----------------------------------------------------------------
def _workspaces(client) -> int:
    return client.app.state.playground.store.count_workspaces()


def test_without_a_code_anyone_may_start_a_workspace(make_client):
    for client in (make_client(), make_client(access_code="")):
        assert client.post("/api/workspaces").status_code == 201
        assert client.post("/api/workspaces", headers={"X-Access-Code": "x"}).status_code == 201


@pytest.mark.parametrize(
    ("given", "code"),
    [
        (None, "access_code_required"),
        ("", "access_code_required"),
        ("owl-42", "access_code_wrong"),  # a prefix
        ("OWL-42-RIVER", "access_code_wrong"),  # another case
        (CODE + " ", "access_code_wrong"),
        ("owl-42-river-and-more", "access_code_wrong"),
    ],
)
def test_missing_or_wrong_code_is_403_and_creates_nothing(make_client, api, given, code):
    client = make_client(access_code=CODE)
    headers = {} if given is None else {"X-Access-Code": given}
    r = client.post("/api/workspaces", headers=headers)
    err = api.error(r, 403, code)
    assert ASK in err["message"]
    assert CODE not in r.text  # the answer never leaks the code
    assert _workspaces(client) == 0


def test_the_right_code_opens_a_workspace_whose_token_then_suffices(make_client, api):
    client = make_client(access_code=CODE)
    r = client.post("/api/workspaces", headers={"X-Access-Code": CODE})
    assert r.status_code == 201, r.text
    auth = {"Authorization": f"Bearer {r.json()['token']}"}
    me = client.get("/api/workspaces/me", headers=auth)  # no code needed any more
    assert me.status_code == 200 and me.json()["id"] == r.json()["id"]
    created = client.post("/api/models", json={"preset": "linear_3_2"}, headers=auth)
    assert created.status_code == 201, created.text
    assert client.get("/api/catalog").status_code == 200  # public routes stay public
    assert _workspaces(client) == 1


def test_guessing_the_code_is_rate_limited(make_client, api):
    client = make_client(access_code=CODE, rate_limit_per_minute=3)
    statuses = [
        client.post("/api/workspaces", headers={"X-Access-Code": f"guess-{i}"}).status_code
        for i in range(4)
    ]
    assert statuses == [403, 403, 403, 429]
    api.error(client.post("/api/workspaces", headers={"X-Access-Code": CODE}), 429)


def guesses(server, count: int, forwarded: bool = True) -> list[int]:
    """``count`` wrong access codes sent to a live server, each with a fresh X-Forwarded-For."""
    with httpx.Client(base_url=server.url, timeout=120) as client:
        return [
            client.post(
                "/api/workspaces",
                headers={
                    "X-Access-Code": f"guess-{i}",
                    **({"X-Forwarded-For": f"10.0.{i // 256}.{i % 256}"} if forwarded else {}),
                },
            ).status_code
            for i in range(count)
        ]


def test_forwarded_headers_from_an_unnamed_address_do_not_escape_the_limit(live_server):
    """uvicorn trusted X-Forwarded-For from 127.0.0.1 by default: a client on the same host
    sent 300 guesses with fresh addresses, all 403, never 429."""
    server = live_server(access_code=CODE, rate_limit_per_minute=240)
    statuses = guesses(server, 300)
    assert set(statuses[:240]) == {403}  # the burst, then one more every 0.25 s
    assert set(statuses[240:]) <= {403, 429} and 429 in statuses


def test_a_named_proxy_forwards_each_students_address(live_server):
    server = live_server(access_code=CODE, rate_limit_per_minute=3, forwarded_allow_ips="127.0.0.1")
    assert set(guesses(server, 10)) == {403}  # ten students, each under the limit
    assert guesses(server, 4, forwarded=False) == [403, 403, 403, 429]  # the proxy itself


def test_python_m_server_hands_uvicorn_no_proxy_trust():
    from server.__main__ import config

    cfg = config(create_app(Settings(database_url="sqlite://")), Settings())
    assert cfg.proxy_headers is False


# -- cross-site workspace creation ----------------------------------------------------------
FOREIGN = "https://evil.example"


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": FOREIGN},
        {"Origin": "null"},  # a sandboxed page or a data: URL
        {"Origin": "http://testserver.evil.example"},
        {"Sec-Fetch-Site": "cross-site"},  # a browser that left Origin out
        {"Sec-Fetch-Site": "same-site"},
    ],
)
def test_a_page_of_another_site_cannot_create_a_workspace(client, api, headers):
    """A body-less POST from a foreign page (a plain form) answered 201: any site a student
    visited could fill the server's workspace quota."""
    before = _workspaces(client)
    err = api.error(client.post("/api/workspaces", headers=headers), 403, "cross_site_request")
    assert "PLAYGROUND_CORS_ORIGINS" in err["message"]
    assert _workspaces(client) == before


@pytest.mark.parametrize(
    "headers",
    [
        {},  # curl, the Python client: no browser headers at all
        {"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"},  # the playground's page
        {"Sec-Fetch-Site": "none"},  # typed into the address bar
    ],
)
def test_the_playground_itself_and_non_browsers_may(client, headers):
    assert client.post("/api/workspaces", headers=headers).status_code == 201


def test_an_origin_cors_allows_may(make_client):
    client = make_client(cors_origins=[FOREIGN])
    r = client.post("/api/workspaces", headers={"Origin": FOREIGN, "Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 201, r.text


def test_codes_compare_as_bytes_in_constant_time():
    check_access_code(None, None)
    check_access_code("héron-7", "héron-7")  # non-ASCII: hmac.compare_digest on str would raise
    with pytest.raises(Exception, match=ASK) as info:
        check_access_code("héron-7", "heron-7")
    assert status_of(info.value) == 403


def test_openapi_documents_the_header_and_the_403(client):
    op = client.get("/openapi.json").json()["paths"]["/api/workspaces"]["post"]
    params = {p["name"]: p for p in op.get("parameters", [])}
    assert params["X-Access-Code"]["in"] == "header"
    assert params["X-Access-Code"].get("required", False) is False
    assert "403" in op["responses"]


# -- static files stay inside static/ -----------------------------------------------------
def asgi_get(app, raw_path: str) -> tuple[int, bytes]:
    """GET ``raw_path`` exactly as sent on the wire (no client-side normalisation of '..');
    the scope's path is percent-decoded once, as uvicorn does."""

    async def call() -> list[dict]:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": unquote(raw_path),
            "raw_path": raw_path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(b"host", b"testserver")],
            "client": ("127.0.0.1", 50000),
            "server": ("testserver", 80),
        }
        sent: list[dict] = []
        done = asyncio.Event()
        requests = iter([{"type": "http.request", "body": b"", "more_body": False}])

        async def receive() -> dict:
            request = next(requests, None)
            if request is None:  # then the client stays until the answer is complete
                await done.wait()
                return {"type": "http.disconnect"}
            return request

        async def send(message: dict) -> None:
            sent.append(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                done.set()

        await app(scope, receive, send)
        return sent

    messages = asyncio.run(call())
    status = next(m["status"] for m in messages if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    return status, body


OUTSIDE = {  # files outside static/ and a phrase of each
    "pyproject.toml": b"[project]",
    "server/app.py": b"def create_app",
}
TRAVERSALS = [
    "/static/../{f}",
    "/static/js/../../{f}",
    "/static/./../{f}",
    "/static/%2e%2e/{f}",
    "/static/%2e%2e%2f{f}",
    "/static/..%2f{f}",
    "/static/%2E%2E%2F{f}",
    "/static/js/%2e%2e/%2e%2e/{f}",
    "/static/..%5c{f}",
    "/static/..\\{f}",
    "/static/%252e%252e%252f{f}",  # double-encoded: decoded once, it is a file name
    "/static/%252e%252e/{f}",
    "/static/....//{f}",
    "/static/" + "../" * 8 + "{f}",
]
ABSOLUTE = [
    "/static//etc/passwd",
    "/static/%2fetc%2fpasswd",
    "/static/%2Fetc/passwd",
    "/static/../../../../../../etc/passwd",
    "/static/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/static/" + str(ROOT / "pyproject.toml"),
    "/static/file:///etc/passwd",
]


@pytest.mark.parametrize("pattern", TRAVERSALS)
def test_traversal_out_of_static_is_404(client, pattern):
    for name, phrase in OUTSIDE.items():
        assert (ROOT / name).read_bytes().find(phrase) >= 0  # the file is there to be stolen
        status, body = asgi_get(client.app, pattern.format(f=name))
        assert status == 404, (pattern, body[:80])
        assert phrase not in body


@pytest.mark.parametrize("path", ABSOLUTE)
def test_absolute_paths_are_404(client, path):
    status, body = asgi_get(client.app, path)
    assert status == 404, (path, body[:80])
    assert b"root:" not in body and b"[project]" not in body


@pytest.mark.parametrize(
    "pattern", ["/static/%2e%2e/{f}", "/static/..%2f{f}", "/static//etc/passwd"]
)
def test_traversal_through_the_http_client_is_404(client, pattern):
    """The same through the ordinary test client (httpx keeps %-escapes as they are)."""
    r = client.get(pattern.format(f="pyproject.toml"))
    assert r.status_code == 404
    assert b"[project]" not in r.content and b"root:" not in r.content


def test_files_inside_static_are_still_served(client):
    want = (ROOT / "static/css/base.css").read_bytes()
    for path in ("/static/css/base.css", "/static/js/../css/base.css", "/static/css/%62ase.css"):
        status, body = asgi_get(client.app, path)
        assert (status, body) == (200, want), path


# -- the cap on a safetensors header ------------------------------------------------------
def with_header_size(data: bytes, size: int) -> bytes:
    """The same safetensors file with its JSON header padded (in __metadata__) to ``size``."""
    (old,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + old])
    header["__metadata__"] = {**header.get("__metadata__", {}), "pad": ""}
    pad = size - len(json.dumps(header).encode())
    assert pad >= 0
    header["__metadata__"]["pad"] = "x" * pad
    raw = json.dumps(header).encode()
    assert len(raw) == size
    return struct.pack("<Q", size) + raw + data[8 + old :]


def test_safetensors_header_cap_comes_from_the_settings(make_api):
    api = make_api(max_safetensors_header_bytes=1024)
    model = api.create(preset="linear_3_2", seed=0)
    other = api.create(preset="linear_3_2", seed=1)
    before = api.weights(model["id"])
    theirs = api.weights(other["id"])
    assert theirs != before
    over = with_header_size(theirs, 1032)  # one 8-byte step over the cap
    err = api.error(api.put_weights(model["id"], over), 422, "bad_weights")
    assert "1,032" in err["message"] and "1,024" in err["message"]
    huge = struct.pack("<Q", 2**40) + b'{"a": 1}'
    err = api.error(api.put_weights(model["id"], huge), 422, "bad_weights")
    assert f"{2**40:,}" in err["message"]
    assert api.weights(model["id"]) == before  # nothing changed
    assert api.ok(api.get(f"/api/models/{model['id']}"))["version"] == model["version"]
    at_cap = with_header_size(theirs, 1024)  # exactly the cap: accepted and loaded
    loaded = api.ok(api.put_weights(model["id"], at_cap))
    assert loaded["version"] == model["version"] + 1
    assert api.weights(model["id"]) == theirs


def test_a_larger_cap_admits_a_larger_header(make_api):
    api = make_api(max_safetensors_header_bytes=4096)
    model = api.create(preset="linear_3_2", seed=0)
    data = with_header_size(api.weights(model["id"]), 2048)
    assert api.put_weights(model["id"], data).status_code == 200
