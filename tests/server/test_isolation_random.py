"""Isolation under random traffic: workspaces act at random and never touch each other's models.

Three workspaces on one app take random steps (a Hypothesis ``RuleBasedStateMachine``):
create a model (a preset or a small spec), replace its spec, freeze or unfreeze a
parameter, run it, upload new weights to it, delete it, and attack: call every model route
with another workspace's model id (read, list, replace, delete, summary, code, run,
parameters, one parameter, freeze, download and upload weights, and the effects lab's
Linear on that model). After every step the invariants hold:

- every attack answered 404 ``model_not_found``;
- each workspace lists exactly its own models (the ids the test created and did not
  delete), at the versions the test last saw;
- each model's weights, downloaded by its owner, have the checksum the test last saw, so an
  attack changed nothing; uploads read back with the values that were sent.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import torch
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

WORKSPACES = 3
MAX_OWN = 3  # models per workspace at a time: keeps the invariant checks cheap
PRESETS = {"linear_3_2": "linear", "tiny_model": "linear1"}  # preset -> its first Linear


def small_spec(hidden: int) -> dict[str, Any]:
    return {
        "name": "Small",
        "inputs": {"x": {"shape": [1, 3]}},
        "layers": [
            {"name": "fc", "type": "Linear", "args": {"in_features": 3, "out_features": hidden}},
            {"name": "act", "type": "Tanh"},
        ],
    }


@dataclass
class Seen:
    """What the owner last saw of one model."""

    owner: int
    version: int
    checksum: str
    linear: str  # the name of a Linear layer of the model


def attacks(mid: str, layer: str, weights: bytes) -> list[tuple[str, str, dict[str, Any]]]:
    """Every route that names a model, aimed at ``mid``, with plausible bodies."""
    base = f"/api/models/{mid}"
    octet = {"content-type": "application/octet-stream"}
    return [
        ("GET", base, {}),
        ("PUT", base, {"json": {"spec": small_spec(2)}}),
        ("GET", f"{base}/summary", {}),
        ("GET", f"{base}/code", {}),
        ("POST", f"{base}/run", {"json": {}}),
        ("GET", f"{base}/parameters", {}),
        ("GET", f"{base}/parameters/{layer}.weight", {}),
        ("PATCH", f"{base}/parameters/{layer}", {"json": {"requires_grad": False}}),
        ("GET", f"{base}/weights", {}),
        ("PUT", f"{base}/weights", {"content": weights, "headers": octet}),
        ("POST", "/api/effects/linear", {"json": {"model_id": mid, "layer": layer}}),
        ("DELETE", base, {}),
    ]


class Isolation(RuleBasedStateMachine):
    """Random steps of several workspaces; ``root`` (an ``Api``) is set by the test."""

    root: Any = None

    def __init__(self) -> None:
        super().__init__()
        self.ws = [self.root.other() for _ in range(WORKSPACES)]
        self.seen: dict[str, Seen] = {}

    # -- helpers ---------------------------------------------------------------------------
    def own(self, i: int) -> list[str]:
        return sorted(mid for mid, s in self.seen.items() if s.owner == i)

    def checksum(self, i: int, mid: str) -> str:
        return hashlib.sha256(self.ws[i].weights(mid)).hexdigest()

    def refresh(self, i: int, mid: str, version: int | None = None) -> None:
        """Record the owner's view after one of its own steps."""
        api = self.ws[i]
        if version is None:
            version = api.ok(api.get(f"/api/models/{mid}"))["version"]
        self.seen[mid].version = version
        self.seen[mid].checksum = self.checksum(i, mid)

    def draw_own(self, data: st.DataObject) -> tuple[int, str]:
        i = data.draw(st.sampled_from([i for i in range(WORKSPACES) if self.own(i)]))
        return i, data.draw(st.sampled_from(self.own(i)))

    def any_own(self) -> bool:
        return bool(self.seen)

    # -- steps -----------------------------------------------------------------------------
    @rule(
        i=st.integers(0, WORKSPACES - 1),
        source=st.one_of(st.sampled_from(sorted(PRESETS)), st.integers(1, 8)),
        seed=st.integers(0, 2**31),
    )
    def create(self, i: int, source: str | int, seed: int) -> None:
        if len(self.own(i)) >= MAX_OWN:
            return
        api = self.ws[i]
        if isinstance(source, str):
            model = api.create(preset=source, seed=seed)
            linear = PRESETS[source]
        else:
            model = api.create(spec=small_spec(source), seed=seed)
            linear = "fc"
        mid = model["id"]
        assert mid not in self.seen
        self.seen[mid] = Seen(i, model["version"], self.checksum(i, mid), linear)

    @precondition(any_own)
    @rule(data=st.data(), hidden=st.integers(1, 8))
    def edit(self, data: st.DataObject, hidden: int) -> None:
        i, mid = self.draw_own(data)
        api = self.ws[i]
        model = api.ok(api.put(f"/api/models/{mid}", json={"spec": small_spec(hidden)}))
        self.seen[mid].linear = "fc"
        self.refresh(i, mid, model["version"])

    @precondition(any_own)
    @rule(data=st.data(), requires_grad=st.booleans())
    def freeze(self, data: st.DataObject, requires_grad: bool) -> None:
        i, mid = self.draw_own(data)
        api = self.ws[i]
        name = f"{self.seen[mid].linear}.weight"
        r = api.patch(f"/api/models/{mid}/parameters/{name}", json={"requires_grad": requires_grad})
        assert api.ok(r)["changed"] in ([], [name])
        table = api.ok(api.get(f"/api/models/{mid}/parameters"))
        assert {row["name"]: row["requires_grad"] for row in table["rows"]}[name] is requires_grad
        self.refresh(i, mid)

    @precondition(any_own)
    @rule(data=st.data(), seed=st.integers(0, 1000))
    def run(self, data: st.DataObject, seed: int) -> None:
        i, mid = self.draw_own(data)
        x = {"kind": "random", "distribution": "normal", "seed": seed}
        inputs = {"x": x}
        result = self.ws[i].run(mid, inputs=inputs, capture="none")
        assert result["mode"] == "eval" and result["outputs"]
        self.refresh(i, mid)

    @precondition(any_own)
    @rule(data=st.data(), seed=st.integers(0, 1000))
    def upload(self, data: st.DataObject, seed: int) -> None:
        """New weights for an own model; they read back as sent."""
        i, mid = self.draw_own(data)
        api = self.ws[i]
        tensors = load_safetensors(api.weights(mid))
        gen = torch.Generator().manual_seed(seed)
        new = {k: torch.randn(v.shape, generator=gen).to(v.dtype) for k, v in tensors.items()}
        body = api.ok(api.put_weights(mid, save_safetensors(new)))
        assert body["tensors"] == len(new)
        back = load_safetensors(api.weights(mid))
        assert back.keys() == new.keys()
        assert all(torch.equal(back[k], new[k]) for k in new)
        self.refresh(i, mid, body["version"])

    @precondition(any_own)
    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        i, mid = self.draw_own(data)
        api = self.ws[i]
        assert api.delete(f"/api/models/{mid}").status_code == 204
        del self.seen[mid]
        api.error(api.get(f"/api/models/{mid}"), 404, "model_not_found")

    @precondition(any_own)
    @rule(data=st.data())
    def attack(self, data: st.DataObject) -> None:
        """Workspace i aims every model route at another workspace's model: 404 on each."""
        mid = data.draw(st.sampled_from(sorted(self.seen)))
        victim = self.seen[mid].owner
        i = data.draw(st.sampled_from([i for i in range(WORKSPACES) if i != victim]))
        owner = self.ws[victim]
        weights = owner.weights(mid)  # the victim's own file: valid for that model
        for method, url, kw in attacks(mid, self.seen[mid].linear, weights):
            r = self.ws[i].request(method, url, **kw)
            self.ws[i].error(r, 404, "model_not_found")
            assert mid not in r.text.replace(f"'{mid}'", "")  # names it only as asked
        listed = {m["id"] for m in self.ws[i].ok(self.ws[i].get("/api/models"))["models"]}
        assert mid not in listed

    # -- invariants ------------------------------------------------------------------------
    @invariant()
    def each_lists_exactly_its_own(self) -> None:
        for i, api in enumerate(self.ws):
            listed = api.ok(api.get("/api/models"))["models"]
            assert sorted(m["id"] for m in listed) == self.own(i)
            for m in listed:
                assert m["version"] == self.seen[m["id"]].version, m
            assert api.ok(api.get("/api/workspaces/me"))["models"] == len(self.own(i))

    @invariant()
    def no_model_changed_behind_its_owner(self) -> None:
        for mid, seen in self.seen.items():
            assert self.checksum(seen.owner, mid) == seen.checksum, mid


def test_workspaces_acting_at_random_stay_isolated(api) -> None:
    Isolation.root = api
    run_state_machine_as_test(
        Isolation,
        settings=settings(
            max_examples=12,
            stateful_step_count=25,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        ),
    )
