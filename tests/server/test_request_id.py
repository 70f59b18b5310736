"""Every response carries an ``X-Request-ID`` (the caller's when sane, else a new one), and
every 5xx body carries it too, the error shape otherwise unchanged."""

from __future__ import annotations

import pytest

from server.worker import Busy


def test_every_response_has_its_own_id(client):
    ids = {client.get(path).headers["x-request-id"] for path in ("/healthz", "/", "/nope")}
    assert len(ids) == 3 and all(len(i) == 32 for i in ids)
    r = client.get("/nope")
    assert r.status_code == 404 and "request_id" not in r.json()["error"]  # 4xx: header only


@pytest.mark.parametrize(
    ("given", "kept"),
    [("abc-123", True), ("a" * 64, True), ("a" * 65, False), ("two words", False), ("", False)],
)
def test_a_sane_incoming_id_is_kept(client, given, kept):
    r = client.get("/healthz", headers={"X-Request-ID": given})
    assert (r.headers["x-request-id"] == given) is kept
    assert r.headers.get_list("x-request-id") == [r.headers["x-request-id"]]


def test_a_503_body_carries_the_id(make_client):
    client = make_client()

    @client.app.get("/api/busy")
    def busy() -> None:
        raise Busy("busy", "The cpu is busy. Try again in 3 s.", 3)

    r = client.get("/api/busy", headers={"X-Request-ID": "req-7"})
    assert r.status_code == 503 and r.headers["retry-after"] == "3"
    assert r.json() == {
        "error": {
            "code": "busy",
            "message": "The cpu is busy. Try again in 3 s.",
            "detail": {"retry_after_s": 3},
            "request_id": "req-7",
        }
    }
    assert int(r.headers["content-length"]) == len(r.content)
