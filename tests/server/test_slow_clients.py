"""Slow and broken clients against a real server (uvicorn on 127.0.0.1, configured as
``python -m server`` configures it), over raw sockets: a request's headers and its body
each have ``PLAYGROUND_REQUEST_TIMEOUT_SECONDS`` to arrive, and what uvicorn answers by
itself carries the one error body and the security headers."""

from __future__ import annotations

import json
import socket
import time

import pytest

TIMEOUT_S = 1.0  # the servers' deadline here; the sockets wait up to 20 s for an answer


def connect(server) -> socket.socket:
    sock = socket.create_connection(server.address, timeout=20)
    return sock


def read_all(sock: socket.socket) -> bytes:
    """Everything until the server closes the connection (b"" if it closes at once)."""
    chunks = []
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def read_response(sock: socket.socket) -> bytes:
    """One whole response on a kept-alive connection: its headers, then Content-Length bytes
    of body (a recv may return the headers alone; the body must not be left for the next)."""
    raw = b""
    while b"\r\n\r\n" not in raw:
        chunk = sock.recv(65536)
        assert chunk, f"the connection closed mid-response: {raw!r}"
        raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "the connection closed mid-body"
        body += chunk
    return raw


def parse(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    return status, headers, body


@pytest.fixture
def server(live_server):
    return live_server(request_timeout_seconds=TIMEOUT_S)


def test_a_body_sent_too_slowly_gets_a_408_and_the_connection_closes(server) -> None:
    """200 half-sent requests were held for 30 s and none closed."""
    sock = connect(server)
    body = b'{"spec": {"inputs": {"x": {"shape": [1, 3]}}, "layers": []}}'
    sock.sendall(
        b"POST /api/validate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body) + body[:10]
    )
    started = time.monotonic()
    status, headers, answer = parse(read_all(sock))  # read_all: the server closed it
    assert time.monotonic() - started < 15
    assert status == 408
    assert headers["content-type"] == "application/json"
    assert headers["x-content-type-options"] == "nosniff"
    assert json.loads(answer)["error"]["code"] == "body_timeout"
    sock.close()


def test_an_upload_sent_too_slowly_gets_a_408_and_frees_its_slot(http, server) -> None:
    token = http.post(f"{server.url}/api/workspaces").json()["token"]
    auth = {"Authorization": f"Bearer {token}"}
    model = http.post(f"{server.url}/api/models", json={"preset": "linear_3_2"}, headers=auth)
    sock = connect(server)
    sock.sendall(
        f"PUT /api/models/{model.json()['id']}/weights HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/octet-stream\r\n"
        "Content-Length: 1000\r\n\r\nabc".encode()
    )
    status, _, answer = parse(read_all(sock))
    assert status == 408, answer
    assert json.loads(answer)["error"]["code"] == "body_timeout"
    sock.close()
    assert server.server.config.app.state.playground.uploads.taken == 0


def test_headers_sent_too_slowly_close_the_connection(server) -> None:
    """uvicorn's keep-alive timer covers only silence: a byte of headers held it forever."""
    sock = connect(server)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    started = time.monotonic()
    assert read_all(sock) == b""
    assert time.monotonic() - started < 15
    sock.close()


def test_many_half_sent_requests_are_all_closed(http, server) -> None:
    socks = [connect(server) for _ in range(50)]
    for i, sock in enumerate(socks):
        if i % 2:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        else:
            sock.sendall(
                b"POST /api/validate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: 100\r\n\r\n{"
            )
    closed = [read_all(sock) for sock in socks]  # each returns once its connection is closed
    assert len(closed) == 50
    for sock in socks:
        sock.close()
    # the server still answers
    assert http.get(f"{server.url}/healthz").status_code == 200


def test_a_request_in_time_is_unaffected_by_the_deadlines(server) -> None:
    with connect(server) as sock:  # closed also when an assertion fails
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        first = read_response(sock)
        assert first.startswith(b"HTTP/1.1 200")
        time.sleep(TIMEOUT_S * 0.5)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert read_all(sock).startswith(b"HTTP/1.1 200")


@pytest.mark.parametrize(
    "garbage",
    [
        b"GARBAGE\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
        b"POST /api/validate HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
    ],
)
def test_uvicorns_own_400_is_the_error_body_with_the_security_headers(server, garbage) -> None:
    sock = connect(server)
    sock.sendall(garbage)
    status, headers, body = parse(read_all(sock))
    assert status == 400
    assert headers["content-type"] == "application/json"
    assert headers["x-frame-options"] == "DENY"
    assert "content-security-policy" in headers
    assert json.loads(body)["error"]["code"] == "bad_request"
    sock.close()
