"""Readiness (server/readiness.py): /healthz says "starting" (503, Retry-After) while torch
warms up in the background, then "ok"; requests are served meanwhile; a failed warm-up is
logged and the server becomes ready all the same."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from models import warmup
from models.presets import PRESETS


def _wait_ready(client, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = client.get("/healthz")
        if r.status_code == 200:
            return r
        time.sleep(0.01)
    raise AssertionError("never ready")


@pytest.fixture
def cold(monkeypatch) -> threading.Event:
    """A process that is not warm yet, whose warm-up waits for the event returned."""
    release = threading.Event()
    calls = []

    def slow_warm_up() -> None:
        calls.append(1)
        assert release.wait(30)

    monkeypatch.setattr(warmup, "is_warm", lambda: False)
    monkeypatch.setattr(warmup, "warm_up", slow_warm_up)
    release.calls = calls  # type: ignore[attr-defined]
    return release


def test_healthz_says_starting_then_ready(cold, make_client) -> None:
    client = make_client()
    r = client.get("/healthz")
    assert r.status_code == 503
    assert r.headers["retry-after"] == "1"
    assert r.json()["status"] == "starting" and "worker" in r.json()
    # served meanwhile: a validation does not wait for the warm-up
    spec = {
        "inputs": {"x": {"shape": [1, 4]}},
        "layers": [{"name": "fc", "type": "Linear", "args": {"in_features": 4, "out_features": 2}}],
    }
    v = client.post("/api/validate", json={"spec": spec})
    assert v.status_code == 200, v.text
    cold.set()
    ready = _wait_ready(client)
    assert ready.json()["status"] == "ok" and "retry-after" not in ready.headers
    assert cold.calls == [1]  # type: ignore[attr-defined]


def test_a_failed_warm_up_is_logged_and_the_server_ready(monkeypatch, make_client, caplog):
    def broken() -> None:
        raise RuntimeError("no warm-up today")

    monkeypatch.setattr(warmup, "is_warm", lambda: False)
    monkeypatch.setattr(warmup, "warm_up", broken)
    with caplog.at_level(logging.ERROR, logger="playground"):
        client = make_client()
        assert _wait_ready(client).json()["status"] == "ok"
    assert "warming up failed" in caplog.text


def test_a_warm_process_is_ready_at_once(make_client) -> None:
    assert warmup.is_warm()  # the suite warms up once (conftest.py)
    r = make_client().get("/healthz")
    assert r.status_code == 200 and r.json()["status"] == "ok"


def test_the_starting_answer_is_documented(client) -> None:
    responses = client.get("/openapi.json").json()["paths"]["/healthz"]["get"]["responses"]
    assert "Retry-After" in responses["503"]["headers"]


def test_the_python_client_reads_starting(cold, live_server) -> None:
    from server.client import Client

    srv = live_server()
    with Client(srv.url) as pg:
        assert pg.health()["status"] == "starting"
        cold.set()
        deadline = time.monotonic() + 30
        while pg.health()["status"] != "ok":
            assert time.monotonic() < deadline
            time.sleep(0.01)


def test_the_warm_up_validates_every_preset_through_the_app(cold, make_client) -> None:
    """Once ready, every preset's verdict is remembered (the validate route ran for each,
    paying its first-call costs), and the start-up's own requests used no client's quota."""
    client = make_client(validate_rate_limit_per_minute=2, max_params=100_000_000)
    cold.set()
    _wait_ready(client)
    verdicts = client.app.state.playground.verdicts
    for name, preset in PRESETS.items():
        verdict = verdicts.get(verdicts.key(preset.spec))
        assert verdict is not None and verdict["valid"], name
    spec = PRESETS["linear_3_2"].spec
    assert [client.post("/api/validate", json={"spec": spec}).status_code for _ in range(2)] == [
        200,
        200,
    ]


def test_a_preset_over_the_limits_is_no_warning(cold, make_client, caplog) -> None:
    """A server whose limits leave out some presets (the transformer's 44 M parameters, the
    deeper ones' layer counts) starts without a warning: the teacher chose those limits."""
    with caplog.at_level(logging.INFO, logger="playground"):
        client = make_client(max_params=1_000_000, max_layers=8)
        cold.set()
        _wait_ready(client)
    verdicts = client.app.state.playground.verdicts
    transformer = verdicts.get(verdicts.key(PRESETS["transformer"].spec))
    assert transformer is None or not transformer["valid"]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
