"""gzip of JSON answers (server/compression.py): big JSON compressed for clients that ask,
the same JSON once inflated; small answers, other clients, static files (ETag, 304) and the
training event stream (events as they happen, never held back) left as they are."""

from __future__ import annotations

import gzip
import json

import httpx
from shared_specs import DIGITS, MLP

from server.compression import MIN_BYTES, gzip_bytes

GZIP = {"Accept-Encoding": "gzip"}
IDENTITY = {"Accept-Encoding": "identity"}


def _raw(client, method: str, url: str, **kw) -> tuple[httpx.Response, bytes]:
    """The response and its bytes as they came on the wire (not inflated)."""
    with client.stream(method, url, **kw) as r:
        return r, b"".join(r.iter_raw())


def test_the_pages_lenet_run_is_gzipped_under_20_kb(api, lenet):
    url = f"/api/models/{lenet['id']}/run"
    body = {"encoding": "u8"}  # what the page asks (static/js/app.js)
    r, wire = _raw(api.client, "POST", url, json=body, headers={**api.headers, **GZIP})
    assert r.status_code == 200
    assert (
        r.headers["content-encoding"] == "gzip" and "accept-encoding" in r.headers["vary"].lower()
    )
    assert int(r.headers["content-length"]) == len(wire) <= 20_000  # issue 17's target
    plain, same = _raw(api.client, "POST", url, json=body, headers={**api.headers, **IDENTITY})
    assert "content-encoding" not in plain.headers and len(same) > 1.5 * len(wire)
    got, want = json.loads(gzip.decompress(wire)), json.loads(same)
    for timed in (got, want):
        del timed["elapsed_ms"], timed["compute_ms"]
    assert got == want


def test_small_answers_and_clients_without_gzip_get_plain_json(api, lenet):
    r, wire = _raw(api.client, "GET", "/healthz", headers=GZIP)
    assert len(wire) < MIN_BYTES and "content-encoding" not in r.headers
    assert json.loads(wire)["status"]
    url = f"/api/models/{lenet['id']}/run"
    for headers in ({}, IDENTITY, {"Accept-Encoding": "br"}):
        r, wire = _raw(api.client, "POST", url, json={}, headers={**api.headers, **headers})
        if "gzip" not in r.request.headers.get("accept-encoding", ""):
            assert "content-encoding" not in r.headers
            assert json.loads(wire)["mode"] == "eval"


def test_errors_stay_json_whatever_their_size(api):
    r = api.post("/api/models", json={"spec": {"name": "x", "layers": "no"}}, headers=GZIP)
    assert r.status_code == 422 and r.json()["error"]["code"]


def test_static_files_keep_their_etag_and_304_and_are_not_recompressed(client):
    r, wire = _raw(client, "GET", "/static/js/app.js", headers=GZIP)
    assert r.status_code == 200 and "content-encoding" not in r.headers
    assert int(r.headers["content-length"]) == len(wire)
    etag = r.headers["etag"]
    again = client.get("/static/js/app.js", headers={**GZIP, "If-None-Match": etag})
    assert again.status_code == 304 and again.headers["etag"] == etag


def test_gzip_bytes_is_a_gzip_member():
    body = json.dumps({"x": list(range(1000))}).encode()
    assert gzip.decompress(gzip_bytes(body)) == body
    assert gzip_bytes(body)[:2] == b"\x1f\x8b"


def test_training_events_arrive_while_the_training_runs(live_server):
    """The SSE stream with a gzip-accepting client: uncompressed, and the first event comes
    while the training is still running (nothing waits for a buffer to fill or the end)."""
    server = live_server()
    with httpx.Client(base_url=server.url, timeout=60) as client:
        token = client.post("/api/workspaces").json()["token"]
        auth = {"Authorization": f"Bearer {token}"}
        model = client.post("/api/models", json={"spec": MLP, "seed": 0}, headers=auth).json()
        body = {**DIGITS, "steps": 200_000, "eval_every": 100_000}
        base = f"/api/models/{model['id']}/trainings"
        t = client.post(base, json=body, headers=auth)
        assert t.status_code == 202, t.text
        base = f"{base}/{t.json()['id']}"
        with client.stream("GET", f"{base}/events", headers={**auth, **GZIP}) as r:
            assert r.headers["content-type"].startswith("text/event-stream")
            assert "content-encoding" not in r.headers
            first = next(line for line in r.iter_lines() if line.startswith("data:"))
            assert json.loads(first.removeprefix("data:"))
            assert client.get(base, headers=auth).json()["status"] == "running"
        assert client.post(f"{base}/cancel", headers=auth).json()["status"] == "cancelled"
