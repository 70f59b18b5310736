"""Bursts against a small real server (uvicorn on 127.0.0.1, a job queue of one): many
requests at once are each answered, none with a 5xx other than the documented 503 ``busy``
(with ``Retry-After``) when the device's queue is full, and uploads beyond their slots get
their own 503; the server stays healthy after."""

from __future__ import annotations

import json
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

BURST = 40


def raw_request(method: str, path: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in {**headers, "Content-Length": str(len(body))}.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (x.split(":", 1) for x in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def burst(server, requests: list[bytes]) -> list[tuple[int, dict[str, str], bytes]]:
    """Connect one socket per request, then send them all at once; every answer."""
    socks = [socket.create_connection(server.address, timeout=60) for _ in requests]
    for sock, request in zip(socks, requests, strict=True):
        sock.sendall(request)
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(answer, socks))
    for sock in socks:
        sock.close()
    return answers


@pytest.fixture
def small(http, live_server):
    server = live_server(job_queue_size=1, max_concurrent_uploads=1)
    token = http.post(f"{server.url}/api/workspaces").json()["token"]
    auth = {"Authorization": f"Bearer {token}"}
    r = http.post(f"{server.url}/api/models", json={"preset": "lenet5", "seed": 0}, headers=auth)
    assert r.status_code == 201, r.text
    return server, auth, r.json()["id"]


def test_a_burst_of_runs_gets_answers_and_503s_with_retry_after(http, small) -> None:
    server, auth, model = small
    body = json.dumps({"capture": "all", "stats": True}).encode()
    headers = {**auth, "Content-Type": "application/json"}
    answers = burst(
        server, [raw_request("POST", f"/api/models/{model}/run", headers, body)] * BURST
    )
    statuses = [status for status, _, _ in answers]
    assert set(statuses) <= {200, 503}, statuses
    assert 200 in statuses and 503 in statuses, statuses  # one runs, one waits, the rest: 503
    print(
        f"burst of {BURST} runs, queue 1: {statuses.count(200)} × 200, {statuses.count(503)} × 503"
    )
    for status, headers_, body_ in answers:
        if status == 503:
            assert int(headers_["retry-after"]) >= 1
            assert json.loads(body_)["error"]["code"] == "busy"
            assert headers_["x-content-type-options"] == "nosniff"
    assert http.get(f"{server.url}/healthz").json()["worker"]["jobs_queued"] == 0


def test_a_burst_of_mixed_requests_has_no_server_error(http, small) -> None:
    server, auth, model = small
    json_headers = {**auth, "Content-Type": "application/json"}
    spec = {
        "inputs": {"x": {"shape": [1, 3]}},
        "layers": [{"name": "fc", "type": "Linear", "args": {"in_features": 3, "out_features": 2}}],
    }
    kinds = [
        raw_request("GET", "/healthz", {}),
        raw_request("GET", f"/api/models/{model}", auth),
        raw_request("GET", f"/api/models/{model}/summary", auth),
        raw_request("POST", "/api/validate", json_headers, json.dumps({"spec": spec}).encode()),
        raw_request("POST", f"/api/models/{model}/run", json_headers, b"{}"),
        raw_request("POST", "/api/effects/pooling", json_headers, b'{"preset": "tutorial"}'),
        raw_request("GET", "/api/catalog", {}),
        raw_request("POST", "/api/validate", json_headers, b"[" * 100 + b"]" * 100),
    ]
    answers = burst(server, [kinds[i % len(kinds)] for i in range(BURST * 2)])
    statuses = [status for status, _, _ in answers]
    assert all(status < 500 or status == 503 for status in statuses), statuses
    assert statuses.count(200) >= len(kinds)  # the cheap GETs never queue
    counts = {status: statuses.count(status) for status in sorted(set(statuses))}
    print(f"mixed burst of {len(statuses)}: {counts}")
    assert http.get(f"{server.url}/healthz").status_code == 200


def test_uploads_beyond_their_slots_get_503_while_one_streams(http, small) -> None:
    """One upload slot: while one body streams in, the next upload is refused at once."""
    server, auth, model = small
    data = http.get(f"{server.url}/api/models/{model}/weights", headers=auth).content
    headers = {**auth, "Content-Type": "application/octet-stream"}
    path = f"/api/models/{model}/weights"
    first = socket.create_connection(server.address, timeout=60)
    request = raw_request("PUT", path, headers, data)
    first.sendall(request[: len(request) - len(data) // 2])  # half the body
    uploads = server.server.config.app.state.playground.uploads
    deadline = time.monotonic() + 30
    while uploads.taken < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert uploads.taken == 1
    # the headers alone: the refusal comes before the body is read (a client that sent the
    # whole body may see the connection reset under its answer, as with any early answer)
    [(status, headers_, body)] = burst(server, [request[: len(request) - len(data)]])
    assert status == 503 and int(headers_["retry-after"]) >= 1
    assert json.loads(body)["error"]["code"] == "uploads_busy"
    first.sendall(request[len(request) - len(data) // 2 :])  # the rest: it lands
    status, _, body = answer(first)
    first.close()
    assert status == 200, body
    assert uploads.taken == 0
    again = st_load(http.get(f"{server.url}{path}", headers=auth).content)
    assert st_save(again) == st_save(st_load(data))
