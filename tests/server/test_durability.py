"""Durability: a server in a subprocess takes saves, is killed with SIGKILL at random moments,
restarts on the same data directory, and every save it acknowledged reads back unchanged.

A client thread keeps saving into one workspace: it creates models from presets with a seed,
freezes and unfreezes parameters (PATCH), edits specs (PUT: a parameter-free layer added at
the end or taken away again, so every other layer keeps its weights and its frozen flags)
and uploads random weights (PUT); it deletes one now and then. For each model it keeps what
the server acknowledged: the spec, the frozen parameter names and a sha256 of every tensor
(name, dtype, shape, bytes). After each kill the server restarts and every acknowledged model
must read back with that spec, those frozen names and that checksum; the one request in
flight when the server died may have landed or not, nothing else. All traffic goes to 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from models.build import build, infer

pytestmark = pytest.mark.slow

KILLS = 10
ROOT = Path(__file__).resolve().parents[2]
PRESETS = ["linear_3_2", "tiny_model", "lenet5", "small_cnn", "lstm_tagger"]
MAX_MODELS = 10
EDIT_LAYER = {"name": "edit_relu", "type": "ReLU"}


def digest(tensors: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{list(t.shape)}|".encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


@dataclass(frozen=True)
class Saved:
    """What the server acknowledged for one model."""

    spec: dict[str, Any]
    frozen: frozenset[str]
    weights: str  # digest()
    version: int


class Server:
    """``python -m server`` on a free port of 127.0.0.1, with its log in the data dir."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.proc: subprocess.Popen | None = None
        self.url = ""
        self.starts = 0

    def start(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("PLAYGROUND_")}
        env.update(
            PLAYGROUND_HOST="127.0.0.1",
            PLAYGROUND_PORT=str(port),
            PLAYGROUND_DATA_DIR=str(self.data_dir),
            PLAYGROUND_LOG_LEVEL="warning",
            PLAYGROUND_RATE_LIMIT_PER_MINUTE="0",
            PLAYGROUND_VALIDATE_RATE_LIMIT_PER_MINUTE="0",
            PLAYGROUND_MAX_MODELS_PER_WORKSPACE=str(MAX_MODELS + 5),
            PLAYGROUND_TORCH_THREADS="1",
            PLAYGROUND_DEVICE=os.environ.get("PLAYGROUND_DEVICE", "cpu"),
        )
        self.starts += 1
        log = open(self.data_dir / f"server-{self.starts}.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "server"], cwd=ROOT, env=env, stdout=log, stderr=log
        )
        log.close()
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"the server exited: {self.log()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"the server did not start in 60 s: {self.log()}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None

    def log(self) -> str:
        return (self.data_dir / f"server-{self.starts}.log").read_text(errors="replace")[-3000:]


class Saver:
    """The client: random saves, the acknowledged state, and the one request in flight."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.headers: dict[str, str] = {}
        self.acked: dict[str, Saved] = {}  # model id -> its last acknowledged state
        self.deleted: set[str] = set()
        self.pending: tuple[str, Any] | None = None  # (kind, model id or preset) in flight
        self.pending_state: Saved | None = None
        self.acks = 0
        self.unexpected: list[str] = []
        self._params: dict[str, list[str]] = {}

    def drive(self, url: str) -> None:
        """Save until the server goes away."""
        with httpx.Client(base_url=url, timeout=30) as c:
            while True:
                try:
                    self._one(c)
                except httpx.TransportError:
                    return  # killed mid-request: self.pending may or may not have landed
                self.pending, self.pending_state = None, None

    def _one(self, c: httpx.Client) -> None:
        if not self.headers:
            self.pending = ("workspace", None)
            token = self._ok(c.post("/api/workspaces"), 201)["token"]
            self.headers = {"Authorization": f"Bearer {token}"}
            return
        ids = sorted(self.acked)
        roll = self.rng.random()
        if not ids or (roll < 0.25 and len(ids) < MAX_MODELS):
            self._create(c)
        elif roll < 0.3:
            self._delete(c, self.rng.choice(ids))
        elif roll < 0.5:
            self._freeze(c, self.rng.choice(ids))
        elif roll < 0.65:
            self._edit(c, self.rng.choice(ids))
        else:
            self._upload(c, self.rng.choice(ids))

    def _ok(self, r: httpx.Response, status: int = 200) -> Any:
        if r.status_code != status:
            self.unexpected.append(f"{r.request.method} {r.request.url.path}: {r.text[:300]}")
            raise httpx.TransportError("unexpected answer")  # ends this run of the client
        self.acks += 1
        return r.json() if r.content else None

    def _create(self, c: httpx.Client) -> None:
        preset, seed = self.rng.choice(PRESETS), self.rng.randrange(2**31)
        self.pending = ("create", preset)
        body = self._ok(
            c.post("/api/models", json={"preset": preset, "seed": seed}, **self._h), 201
        )
        self.acked[body["id"]] = seeded(body)

    def _delete(self, c: httpx.Client, model_id: str) -> None:
        self.pending = ("delete", model_id)
        self._ok(c.delete(f"/api/models/{model_id}", **self._h), 204)
        del self.acked[model_id]
        self.deleted.add(model_id)

    def _freeze(self, c: httpx.Client, model_id: str) -> None:
        old = self.acked[model_id]
        name = self.rng.choice(param_names(old.spec))
        flag = name in old.frozen  # unfreeze a frozen one, freeze the others
        frozen = old.frozen - {name} if flag else old.frozen | {name}
        self.pending, self.pending_state = ("freeze", model_id), replace(old, frozen=frozen)
        url = f"/api/models/{model_id}/parameters/{name}"
        self._ok(c.patch(url, json={"requires_grad": flag}, **self._h))
        self.acked[model_id] = replace(old, frozen=frozen, version=old.version + 1)

    def _edit(self, c: httpx.Client, model_id: str) -> None:
        old = self.acked[model_id]
        layers = old.spec["layers"]
        if layers[-1]["name"] == EDIT_LAYER["name"]:
            spec = {**old.spec, "layers": layers[:-1]}
        else:
            spec = {**old.spec, "layers": [*layers, EDIT_LAYER]}
        spec.pop("outputs", None)  # the model's output: the last layer's, whichever it is
        resolved = infer(spec).spec.model_dump(exclude_none=True)  # as the server stores it
        self.pending, self.pending_state = ("edit", model_id), replace(old, spec=resolved)
        body = self._ok(c.put(f"/api/models/{model_id}", json={"spec": spec}, **self._h))
        assert body["reinitialized"] == [], body  # every layer kept: weights, frozen flags
        self.acked[model_id] = replace(old, spec=body["spec"], version=body["version"])

    def _upload(self, c: httpx.Client, model_id: str) -> None:
        old = self.acked[model_id]
        tensors = {}
        for name, t in build(old.spec).model.state_dict().items():
            if t.is_floating_point():
                tensors[name] = torch.rand(t.shape, dtype=t.dtype, generator=self._gen())
            else:
                tensors[name] = torch.randint(
                    0, 1000, t.shape, dtype=t.dtype, generator=self._gen()
                )
        new = replace(old, weights=digest(tensors))
        self.pending, self.pending_state = ("upload", model_id), new
        url = f"/api/models/{model_id}/weights"
        headers = {**self.headers, "content-type": "application/octet-stream"}
        body = self._ok(c.put(url, content=st_save(tensors), headers=headers))
        self.acked[model_id] = replace(new, version=body["version"])

    def _gen(self) -> torch.Generator:
        return torch.Generator().manual_seed(self.rng.randrange(2**63))

    @property
    def _h(self) -> dict[str, Any]:
        return {"headers": self.headers}


def param_names(spec: dict[str, Any]) -> list[str]:
    return [n for n, _ in build(spec).model.named_parameters()]


def seeded(model: dict[str, Any]) -> Saved:
    """A model as created: the weights its seed gives, nothing frozen."""
    weights = digest(build(model["spec"], seed=model["seed"]).model.state_dict())
    return Saved(model["spec"], frozenset(), weights, model["version"])


def read_back(c: httpx.Client, headers: dict[str, str], model_id: str) -> Saved | None:
    r = c.get(f"/api/models/{model_id}", headers=headers)
    if r.status_code == 404:
        return None
    assert r.status_code == 200, r.text
    model = r.json()
    table = c.get(f"/api/models/{model_id}/parameters", headers=headers).json()
    frozen = frozenset(row["name"] for row in table["rows"] if not row["requires_grad"])
    weights = c.get(f"/api/models/{model_id}/weights", headers=headers)
    assert weights.status_code == 200, weights.text
    return Saved(model["spec"], frozen, digest(st_load(weights.content)), model["version"])


def same(got: Saved | None, want: Saved | None) -> bool:
    if got is None or want is None:
        return got is want
    return (got.spec, got.frozen, got.weights) == (want.spec, want.frozen, want.weights)


def verify(server: Server, saver: Saver) -> int:
    """Every acknowledged save reads back; the request in flight landed whole or not at all.
    Adopts what the in-flight request did; returns how many models were checked."""
    kind, target = saver.pending or ("", None)
    with httpx.Client(base_url=server.url, timeout=30) as c:
        if not saver.headers:
            return 0
        listed = c.get("/api/models", headers=saver.headers)
        assert listed.status_code == 200, listed.text
        ids = {m["id"] for m in listed.json()["models"]}
        extra = ids - set(saver.acked)
        assert not extra & saver.deleted, f"deleted models came back: {extra & saver.deleted}"
        if kind == "create" and extra:  # the create in flight landed: adopt it
            assert len(extra) == 1, extra
            (new_id,) = extra
            saver.acked[new_id] = seeded(c.get(f"/api/models/{new_id}", **saver._h).json())
        else:
            assert not extra, f"models nobody acknowledged: {extra}"
        for model_id, want in sorted(saver.acked.items()):
            got = read_back(c, saver.headers, model_id)
            if kind == "delete" and target == model_id and got is None:
                del saver.acked[model_id]  # the delete in flight landed
                saver.deleted.add(model_id)
                continue
            if target == model_id and same(got, saver.pending_state):
                saver.acked[model_id] = got  # the change in flight landed
                continue
            assert got is not None, f"model {model_id} was lost"
            assert same(got, want), f"model {model_id}: acknowledged {want}, read back {got}"
            assert got.version >= want.version
    saver.pending = saver.pending_state = None
    return len(saver.acked)


def wait_for(condition: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)


def test_acknowledged_saves_survive_sigkill(tmp_path):
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    server, saver = Server(tmp_path), Saver(rng)
    checked, kills = [], 0
    try:
        server.start()
        for _ in range(KILLS):
            client = threading.Thread(target=saver.drive, args=(server.url,), daemon=True)
            acks = saver.acks
            client.start()
            wait_for(lambda a=acks, t=client: saver.acks >= a + 3 or not t.is_alive(), 60)
            time.sleep(rng.uniform(0.0, 0.6))  # a random moment: mid-request most likely
            server.kill()
            kills += 1
            client.join(30)
            assert not client.is_alive(), "the client hangs on a dead server"
            assert saver.unexpected == [], f"seed {seed}: {saver.unexpected}"
            server.start()
            checked.append(verify(server, saver))
    finally:
        server.kill()
    assert kills == KILLS
    assert saver.acks >= 3 * KILLS, f"seed {seed}: too few saves acknowledged ({saver.acks})"
    print(f"durability: {kills} kills, {saver.acks} saves acknowledged, models verified {checked}")
