"""Fixtures for the API tests: apps with small limits, and an ``Api`` helper per workspace.

Every app is driven through a starlette ``TestClient`` (an ``httpx.Client`` over the ASGI
app) used as a context manager, so the lifespan runs and the worker thread is shut down after
the test. ``PLAYGROUND_*`` variables still apply to whatever is not set here: run the suite
with ``PLAYGROUND_DEVICE=cuda`` to put the worker on a GPU.

The helpers live on ``Api`` (reached through fixtures) rather than in an importable module:
two ``conftest.py`` files under ``tests/`` share the module name ``conftest``.
"""

from __future__ import annotations

import base64
import functools
import itertools
import socket
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import httpx
import numpy as np
import pytest
import torch
import uvicorn
from fastapi import FastAPI

import server.jobs
import server.workers.context
from models import warmup
from server.__main__ import config
from server.app import create_app
from server.settings import Settings

with warnings.catch_warnings():
    # Starlette 1.x prefers the httpx2 package for its TestClient and warns once, on import,
    # when it falls back to httpx (which works the same); the suite treats warnings as errors.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

# Small enough to make the limits easy to reach, large enough for lenet5, lstm_tagger and mlp.
SMALL_LIMITS: dict[str, Any] = {
    "max_params": 2_000_000,
    "max_activation_bytes": 64 * 2**20,
    "max_flops": 2 * 10**9,
    "max_layers": 50,
    "max_input_elements": 1_000_000,
    "max_sequence_length": 512,
    "max_body_bytes": 2**20,
    "max_upload_bytes": 4 * 2**20,
    "max_models_per_workspace": 20,
    "max_workspaces": 1_000,
    # the sweeps send hundreds of requests a minute; test_security.py tests the limiter itself
    "rate_limit_per_minute": 0,
    "validate_rate_limit_per_minute": 0,
}
ERROR_KEYS = {"code", "message", "layer", "detail", "request_id"}  # request_id: 5xx


class Api:
    """One workspace on one app: its client, its auth headers, and the assertions."""

    OCTET: ClassVar[dict[str, str]] = {"content-type": "application/octet-stream"}

    def __init__(self, client: httpx.Client, headers: dict[str, str] | None = None) -> None:
        self.client = client
        self.headers = headers if headers is not None else self._new_workspace()

    def _new_workspace(self) -> dict[str, str]:
        r = self.client.post("/api/workspaces")
        assert r.status_code == 201, r.text
        return {"Authorization": f"Bearer {r.json()['token']}"}

    def other(self) -> Api:
        """Another workspace on the same app."""
        return Api(self.client)

    @functools.cached_property
    def device(self) -> str:
        """The worker's device type (cpu or cuda), from /healthz."""
        return torch.device(self.client.get("/healthz").json()["device"]).type

    # -- requests (``headers`` carry the token; extra headers may be added) ------------------
    def request(self, method: str, url: str, headers: dict | None = None, **kw) -> httpx.Response:
        return self.client.request(method, url, headers={**self.headers, **(headers or {})}, **kw)

    def get(self, url: str, **kw) -> httpx.Response:
        return self.request("GET", url, **kw)

    def post(self, url: str, **kw) -> httpx.Response:
        return self.request("POST", url, **kw)

    def put(self, url: str, **kw) -> httpx.Response:
        return self.request("PUT", url, **kw)

    def patch(self, url: str, **kw) -> httpx.Response:
        return self.request("PATCH", url, **kw)

    def delete(self, url: str, **kw) -> httpx.Response:
        return self.request("DELETE", url, **kw)

    def ok(self, r: httpx.Response, status: int = 200) -> Any:
        assert r.status_code == status, r.text
        return r.json() if r.content else None

    def create(self, **body: Any) -> dict[str, Any]:
        """POST /api/models; the created model."""
        return self.ok(self.post("/api/models", json=body), 201)

    def run(self, model_id: str, **body: Any) -> dict[str, Any]:
        """POST /api/models/{id}/run; the result."""
        return self.ok(self.post(f"/api/models/{model_id}/run", json=body))

    def weights(self, model_id: str) -> bytes:
        r = self.get(f"/api/models/{model_id}/weights")
        assert r.status_code == 200, r.text
        return r.content

    def put_weights(self, model_id: str, data: bytes) -> httpx.Response:
        return self.put(f"/api/models/{model_id}/weights", content=data, headers=self.OCTET)

    # -- assertions ------------------------------------------------------------------------
    @staticmethod
    def error(r: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
        """``r`` is ``status`` with the API's one error body; returns ``body["error"]``."""
        assert r.status_code == status, r.text
        assert r.headers["content-type"].startswith("application/json")
        body = r.json()
        assert set(body) == {"error"}, body
        err = body["error"]
        assert {"code", "message"} <= set(err) <= ERROR_KEYS, err
        assert isinstance(err["code"], str) and err["code"]
        assert isinstance(err["message"], str) and err["message"]
        if code is not None:
            assert err["code"] == code, err
        return err

    @staticmethod
    def decode(payload: dict[str, Any]) -> np.ndarray:
        """A tensor payload as float32 numpy (f16/f32 bytes read with ``np.frombuffer``)."""
        if payload["encoding"] == "list":
            return np.asarray(payload["data"], dtype=np.float32).reshape(payload["shape"])
        dtype = {"f16": "<f2", "f32": "<f4"}[payload["encoding"]]
        raw = base64.b64decode(payload["data"])
        return np.frombuffer(raw, dtype=dtype).reshape(payload["shape"]).astype(np.float32)

    def assert_same(self, payload: dict[str, Any], expected: torch.Tensor) -> None:
        """The payload holds the oracle's values: bit for bit when the worker is on the CPU
        (f16: the oracle rounded to float16 as the API does), within float tolerance on a GPU.
        """
        got = self.decode(payload)
        want = expected.detach().cpu()
        want = (want.half() if payload["encoding"] == "f16" else want).float().numpy()
        assert got.shape == want.shape
        if self.device == "cpu":
            np.testing.assert_array_equal(got, want)
        else:
            rtol = 1e-2 if payload["encoding"] == "f16" else 1e-4
            np.testing.assert_allclose(got, want, rtol=rtol, atol=1e-4)


@pytest.fixture(scope="session", autouse=True)
def _warm() -> None:
    """Torch warmed up once, before any app: every app is then ready at once, as a server is
    when its start-up is done (server/readiness.py; test_readiness.py tests the starting)."""
    warmup.warm_up()


@pytest.fixture
def make_app(tmp_path) -> Callable[..., FastAPI]:
    """A factory: ``make_app(max_params=220)`` is a fresh app with those settings (the small
    limits otherwise). Its lifespan is the caller's to run."""
    made = itertools.count()

    def make(**overrides: Any) -> FastAPI:
        values = {**SMALL_LIMITS, "data_dir": tmp_path / f"data{next(made)}", **overrides}
        return create_app(Settings(**values))

    return make


@pytest.fixture
def make_client(make_app) -> Iterator[Callable[..., TestClient]]:
    """A factory: ``make_client(max_params=220)`` is a client of a fresh app with those
    settings, its lifespan running until the test ends."""
    opened: list[TestClient] = []

    def make(raise_server_exceptions: bool = True, **overrides: Any) -> TestClient:
        client = TestClient(make_app(**overrides), raise_server_exceptions=raise_server_exceptions)
        client.__enter__()
        opened.append(client)
        return client

    yield make
    for client in reversed(opened):
        client.__exit__(None, None, None)


@pytest.fixture
def make_api(make_client) -> Callable[..., Api]:
    """A factory: ``make_api(max_layers=3)`` is a fresh workspace on a fresh app."""
    return lambda **overrides: Api(make_client(**overrides))


@pytest.fixture
def client(make_client) -> TestClient:
    """A client of a fresh app with the small limits."""
    return make_client()


@pytest.fixture
def api(client) -> Api:
    """A fresh workspace on ``client``'s app."""
    return Api(client)


@pytest.fixture
def workspace(api) -> dict[str, str]:
    """The auth headers of ``api``'s workspace."""
    return api.headers


@pytest.fixture
def lenet(api) -> dict[str, Any]:
    """LeNet-5 built from its preset with seed 0, in ``api``'s workspace."""
    return api.create(preset="lenet5", seed=0)


@pytest.fixture
def builds(monkeypatch) -> list:
    """Counts the real (non-meta) model builds, in the worker and in the jobs: a request
    refused before allocation leaves it empty."""
    calls: list = []
    for module in (server.workers.context, server.jobs):
        real = module.build

        def spy(*args, _real=real, **kwargs):
            calls.append(args)
            return _real(*args, **kwargs)

        monkeypatch.setattr(module, "build", spy)
    return calls


class LiveServer:
    """The app under uvicorn, configured as ``python -m server`` configures it, in a thread
    of the test's process, on a free port of 127.0.0.1 (for what needs real sockets)."""

    def __init__(self, settings: Settings) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.settings = settings.model_copy(update={"host": "127.0.0.1", "port": port})
        self.url = f"http://127.0.0.1:{port}"
        self.address = ("127.0.0.1", port)
        self.server = uvicorn.Server(config(create_app(self.settings), self.settings))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise AssertionError("the live server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    """A client for live servers, patient with a loaded machine (httpx waits 5 s by default)."""
    with httpx.Client(timeout=120) as client:
        yield client


@pytest.fixture
def live_server(tmp_path) -> Iterator[Callable[..., LiveServer]]:
    """A factory: ``live_server(request_timeout_seconds=1)`` is a started server with those
    settings (the small limits otherwise), stopped after the test."""
    started: list[LiveServer] = []
    made = itertools.count()

    def start(**overrides: Any) -> LiveServer:
        values = {**SMALL_LIMITS, "data_dir": tmp_path / f"live{next(made)}", **overrides}
        values.setdefault("log_level", "warning")
        live = LiveServer(Settings(**values))
        started.append(live)
        return live.start()

    yield start
    for live in reversed(started):
        live.stop()
