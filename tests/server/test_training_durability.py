"""A training survives a SIGKILL of its server: every checkpoint the stream announced reads
back byte for byte after the restart, the training reads ``interrupted``, and the model is
free again (a new training starts)."""

from __future__ import annotations

import json
import os
import signal

import httpx
import pytest
from shared_specs import MLP
from test_durability import Server  # the subprocess server of the save-durability test

pytestmark = pytest.mark.slow

CONFIG = {
    "dataset": "digits",
    "transforms": [{"kind": "scale"}, {"kind": "flatten"}],
    "optimizer": {"name": "adam", "args": {"lr": 0.001}},
    "loss": {"name": "CrossEntropyLoss"},
    "batch_size": 16,
    "steps": 200_000,
    "seed": 0,
    "eval_every": 100_000,
}


def announced_checkpoints(c: httpx.Client, url: str, auth: dict, wanted: int) -> list[int]:
    """Follow the stream until ``wanted`` checkpoints were announced; their steps."""
    steps: list[int] = []
    with c.stream("GET", url, headers=auth, timeout=60) as r:
        event = {}
        for line in r.iter_lines():
            if line.startswith("event:"):
                event["event"] = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                event["data"] = json.loads(line.split(":", 1)[1])
            elif not line and event:
                if event.get("event") == "checkpoint":
                    steps.append(event["data"]["step"])
                    if len(steps) >= wanted:
                        return steps
                event = {}
    raise AssertionError(f"the stream ended after checkpoints {steps}")


def test_a_killed_training_keeps_its_checkpoints(tmp_path):
    server = Server(tmp_path)
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as c:
            token = c.post("/api/workspaces", json={}).raise_for_status().json()["token"]
            auth = {"Authorization": f"Bearer {token}"}
            model = c.post("/api/models", json={"spec": MLP, "seed": 1}, headers=auth)
            mid = model.raise_for_status().json()["id"]
            version = model.json()["version"]
            base = f"/api/models/{mid}/trainings"
            tid = c.post(base, json=CONFIG, headers=auth).raise_for_status().json()["id"]
            steps = announced_checkpoints(c, f"{base}/{tid}/events", auth, wanted=6)
            saved = {
                s: c.get(f"{base}/{tid}/checkpoints/{s}/weights", headers=auth).content
                for s in steps
            }
        os.kill(server.proc.pid, signal.SIGKILL)
        server.proc.wait(10)
        server.proc = None
        server.start()
        with httpx.Client(base_url=server.url, timeout=30) as c:
            t = c.get(f"{base}/{tid}", headers=auth).raise_for_status().json()
            assert t["status"] == "interrupted"
            assert t["step"] >= steps[-1]
            listed = c.get(f"{base}/{tid}/checkpoints", headers=auth).json()["checkpoints"]
            assert set(saved) <= {ck["step"] for ck in listed}
            for step, data in saved.items():
                again = c.get(f"{base}/{tid}/checkpoints/{step}/weights", headers=auth)
                assert again.content == data, step
            # the model is as it was before the training (the trained weights were never
            # committed), and it can train again
            assert c.get(f"/api/models/{mid}", headers=auth).json()["version"] == version
            again = c.post(base, json={**CONFIG, "steps": 5}, headers=auth)
            assert again.status_code == 202, again.text
    finally:
        server.kill()
