"""``PLAYGROUND_WORKERS``: the API a user sees gives the same answers, bit for bit, whether the
jobs run in the server's process (embedded, the default) or in two worker processes; each
workspace is pinned to one process (rendezvous hashing); /healthz reports every worker."""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

import pytest
import torch
from safetensors.torch import save as st_save
from shared_specs import DIGITS, MLP

from server.workers.pinned import rendezvous

pytestmark = pytest.mark.slow

VOLATILE = {
    "id",
    "created",
    "updated",
    "elapsed_ms",
    "compute_ms",
    "model_id",
    "started",
    "finished",
}


def plain(value: Any) -> Any:
    """``value`` without what differs between two identical sessions (ids, times)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def scenario(api) -> dict[str, Any]:
    """Create, run, edit keeping weights, weights out and in, parameters, freeze, an effect on
    a model's layer and a short training: every answer, less ids and times."""
    out: dict[str, Any] = {}
    lenet = api.create(preset="lenet5", seed=0)
    mid = lenet["id"]
    out["create"] = plain(lenet)
    body = {"inputs": {"x": {"kind": "random", "seed": 1}}, "encoding": "f32"}
    out["run"] = plain(api.run(mid, **body))
    spec = {**lenet["spec"], "layers": [*lenet["spec"]["layers"], {"name": "out", "type": "ReLU"}]}
    out["edit"] = plain(api.ok(api.put(f"/api/models/{mid}", json={"spec": spec})))
    out["weights"] = hashlib.sha256(api.weights(mid)).hexdigest()
    gen = torch.Generator().manual_seed(5)
    table = api.ok(api.get(f"/api/models/{mid}/parameters"))
    new = {r["name"]: torch.randn(r["shape"], generator=gen) for r in table["rows"]}
    out["upload"] = plain(api.ok(api.put_weights(mid, st_save(new))))
    out["run_after_upload"] = plain(api.run(mid, **body))
    out["freeze"] = plain(
        api.ok(api.patch(f"/api/models/{mid}/parameters/conv1", json={"requires_grad": False}))
    )
    out["parameters"] = plain(api.ok(api.get(f"/api/models/{mid}/parameters")))
    effect = {"model_id": mid, "layer": "fc3", "encoding": "list"}
    out["effect"] = plain(api.ok(api.post("/api/effects/linear", json=effect)))
    mlp = api.create(spec=MLP, seed=7)
    t = api.ok(api.post(f"/api/models/{mlp['id']}/trainings", json=DIGITS), 202)
    deadline = time.monotonic() + 120
    while (done := api.ok(api.get(f"/api/models/{mlp['id']}/trainings/{t['id']}")))[
        "status"
    ] not in ("done", "failed", "cancelled", "interrupted"):
        assert time.monotonic() < deadline, done
        time.sleep(0.05)
    out["training"] = plain({k: done[k] for k in ("status", "step", "latest")})
    out["trained"] = hashlib.sha256(api.weights(mlp["id"])).hexdigest()
    return out


def test_two_worker_processes_answer_as_the_embedded_worker(make_api):
    embedded = scenario(make_api())
    api = make_api(workers=2)
    assert scenario(api) == embedded
    health = api.ok(api.get("/healthz"))["worker"]
    assert health["processes"] == 2 and len(health["workers"]) == 2
    assert all(w["alive"] and w["pid"] and w["device"] == "cpu" for w in health["workers"])
    assert health["live_models"] >= 1 and health["jobs_done"] > 0


def test_a_workspace_stays_on_one_worker(make_api):
    api = make_api(workers=2)
    state = api.client.app.state.playground
    workers = state.worker.stats()["workers"]
    for i in range(3):
        ws = api.other() if i else api
        model = ws.create(preset="linear_3_2", seed=i)
        ws.run(model["id"])
    live = [w["live_models"] for w in state.worker.stats()["workers"]]
    assert sum(live) == 3 and len(workers) == 2


def test_rendezvous_is_stable_and_spreads():
    ids = [f"{i:032x}" for i in range(2000)]
    two = [rendezvous(i, 2) for i in ids]
    assert two == [rendezvous(i, 2) for i in ids]
    assert 800 < two.count(0) < 1200
    three = [rendezvous(i, 3) for i in ids]
    moved = sum(a != b for a, b in zip(two, three, strict=True))
    assert all(b == 2 for a, b in zip(two, three, strict=True) if a != b)  # only to the new one
    assert moved < 900


def test_the_servers_record_cache_forgets_what_a_worker_saved(make_api):
    """A worker process saves a model; the server's record cache (which routes read the
    model from) must not keep serving the version before."""
    api = make_api(workers=2)
    records = api.client.app.state.playground.store.records
    model = api.create(preset="linear_3_2", seed=0)
    url = f"/api/models/{model['id']}"
    assert api.ok(api.get(url))["version"] == 1  # read through the cache: version 1 there
    api.ok(api.patch(f"{url}/parameters/linear", json={"requires_grad": False}))
    cached = [r for (_, mid), r in list(records._records.items()) if mid == model["id"]]
    assert all(r.version == 2 for r in cached), cached
    assert api.ok(api.get(url))["version"] == 2
    frozen = api.ok(api.get(f"{url}/parameters"))["totals"]["frozen"]
    assert frozen == 8  # linear.weight (2×3) and linear.bias (2)


def test_a_run_crosses_as_the_json_the_route_sends():
    """A worker process (or a Ray actor) renders a run's answer to its JSON bytes; the route
    sends those bytes as they are: the same body as the embedded worker's dict gives."""
    from server.ops.messages import Read, Run
    from server.routers.runs import RunJSONResponse
    from server.workers.wire import for_the_wire

    result = {"outputs": {"y": {"data": "AAA=", "shape": [1]}}, "stats": {"mean": None}}
    sent = for_the_wire(Run("w", "m", 1, request=None), result)
    assert isinstance(sent, bytes) and json.loads(sent) == result
    assert RunJSONResponse(sent).body == RunJSONResponse(result).body
    assert for_the_wire(Read("w", "m", 1), result) is result  # anything else: as it is
