"""A worker process killed with SIGKILL during a stream of saves and runs: the requests it held
are answered 503 with Retry-After, the process is started again, every save that was
acknowledged reads back, and the next requests succeed (``PLAYGROUND_WORKERS=2``)."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

pytestmark = pytest.mark.slow
ONES = {"inputs": {"x": {"kind": "constant", "value": 1.0}}}


def weights(i: int) -> bytes:
    """linear_3_2's weights, different for each ``i``."""
    return st_save(
        {"linear.weight": torch.full((2, 3), float(i)), "linear.bias": torch.full((2,), -i)}
    )


class Killer:
    """SIGKILLs ``pid`` on a thread of its own once ``go`` is set (by the request stream, after
    its third acknowledged save: a condition, not a timer); ``killed`` is set once it did."""

    def __init__(self, pid: int, wait_s: float) -> None:
        self.go, self.killed = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self._kill, args=(pid, wait_s), daemon=True)

    def _kill(self, pid: int, wait_s: float) -> None:
        if self.go.wait(wait_s):
            os.kill(pid, signal.SIGKILL)
            self.killed.set()


def test_a_killed_worker_loses_no_acknowledged_save(live_server, http):
    server = live_server(workers=2)
    token = http.post(f"{server.url}/api/workspaces").json()["token"]
    auth = {"Authorization": f"Bearer {token}"}
    r = http.post(f"{server.url}/api/models", json={"preset": "linear_3_2"}, headers=auth)
    assert r.status_code == 201, r.text
    model = f"{server.url}/api/models/{r.json()['id']}"
    spec_names = set(st_load(http.get(f"{model}/weights", headers=auth).content))
    assert spec_names == {"linear.weight", "linear.bias"}, spec_names
    before = http.get(f"{server.url}/healthz").json()["worker"]["workers"]
    victim = next(w for w in before if w["live_models"] == 1)  # the workspace's worker

    killer = Killer(victim["pid"], wait_s=60)
    statuses: list[int] = []
    acked: list[tuple[int, int]] = []  # (i, version) of each acknowledged upload
    i, after_kill = 1, 0
    deadline = time.monotonic() + 120
    killer.thread.start()
    try:
        while after_kill < 10:
            assert time.monotonic() < deadline, statuses
            r = http.put(
                f"{model}/weights",
                content=weights(i),
                headers={**auth, "content-type": "application/octet-stream"},
            )
            statuses.append(r.status_code)
            if r.status_code == 200:
                acked.append((i, r.json()["version"]))
                i += 1
                if len(acked) == 3:
                    killer.go.set()
            else:  # the same save again, once the worker is back
                assert r.status_code == 503, r.text
                assert r.json()["error"]["code"] in ("worker_lost", "busy"), r.text
                assert int(r.headers["retry-after"]) >= 1
                time.sleep(0.2)
            run = http.post(
                f"{model}/run",
                json=ONES,
                headers=auth,
            )
            statuses.append(run.status_code)
            assert run.status_code in (200, 503), run.text
            if killer.killed.is_set() and r.status_code == 200 and run.status_code == 200:
                after_kill += 1
    finally:
        killer.go.set()
        killer.thread.join()
    assert killer.killed.is_set()
    assert set(statuses) <= {200, 503}
    versions = [v for _, v in acked]
    assert versions == sorted(set(versions))  # each acknowledged save a newer version
    last, version = acked[-1]
    stored = st_load(http.get(f"{model}/weights", headers=auth).content)
    assert torch.equal(stored["linear.bias"], torch.full((2,), float(-last)))
    assert torch.equal(stored["linear.weight"], torch.full((2, 3), float(last)))
    assert http.get(model, headers=auth).json()["version"] == version
    out = http.post(f"{model}/run", json=ONES, headers=auth)
    assert out.status_code == 200  # served by the new process, built from the store
    after = http.get(f"{server.url}/healthz").json()["worker"]["workers"]
    again = after[victim["index"]]
    assert again["restarts"] == 1 and again["pid"] != victim["pid"] and again["alive"]
