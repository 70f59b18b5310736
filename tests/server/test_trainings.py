"""Trainings through the API: the same weights as the engine's Trainer (itself checked bit for
bit against plain torch loops in tests/models), the event stream and its resumption, pause,
one step, cancel, checkpoints (list, run at, restore), and the mistakes a user can make."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import torch
from safetensors.torch import load as st_load
from shared_specs import DIGITS, MLP

from models.build import build
from models.datasets import DataRoots
from models.limits import DEFAULT_LIMITS
from models.training import TrainConfig, Trainer, check_training

FINISHED = ("done", "failed", "cancelled", "interrupted")


def wait(api, model_id: str, tid: str, until=FINISHED, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        t = api.ok(api.get(f"/api/models/{model_id}/trainings/{tid}"))
        if t["status"] in until:
            return t
        time.sleep(0.02)
    raise AssertionError(f"training {tid} still {t['status']} after {timeout} s")


def start(api, model_id: str, **overrides: Any) -> dict:
    body = {**DIGITS, **overrides}
    return api.ok(api.post(f"/api/models/{model_id}/trainings", json=body), 202)


def events(api, model_id: str, tid: str, after: int | None = None) -> list[tuple[int, str, dict]]:
    """The whole stream (it ends with the training) as (id, event, data)."""
    headers = {} if after is None else {"Last-Event-ID": str(after)}
    out, event = [], {}
    with api.client.stream(
        "GET",
        f"/api/models/{model_id}/trainings/{tid}/events",
        headers={**api.headers, **headers},
    ) as r:
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if not line:
                if "data" in event:
                    out.append((int(event["id"]), event["event"], json.loads(event["data"])))
                event = {}
            elif not line.startswith(":"):
                key, _, value = line.partition(":")
                event[key] = value.lstrip(" ")
    return out


def engine_weights(spec: dict, seed: int, config: dict) -> dict[str, torch.Tensor]:
    """The oracle: the engine's Trainer in one go on a model built with the same seed."""
    built = build(spec, seed=seed)
    cfg = TrainConfig.model_validate(config)
    plan = check_training(
        built.inference.spec.model_dump(exclude_none=True), cfg, DataRoots(), DEFAULT_LIMITS
    )
    trainer = Trainer(built.model, plan, cfg, torch.device("cpu"), DataRoots())
    while not trainer.advance(3600).done:
        pass
    return {k: v.detach().clone() for k, v in built.model.state_dict().items()}


@pytest.fixture
def mlp(api) -> dict:
    return api.create(spec=MLP, seed=7)


def test_datasets_are_listed_with_their_facts(api):
    sets = {d["name"]: d for d in api.ok(api.get("/api/datasets"))["datasets"]}
    assert {"digits", "fashion_mnist", "circle", "xor", "gauss", "spiral", "pos_tagging"} <= set(
        sets
    )
    assert sets["digits"]["available"] is True
    assert sets["digits"]["task"] == "classification"
    one = api.ok(api.get("/api/datasets/digits"))
    assert one["name"] == "digits"
    api.error(api.get("/api/datasets/nope"), 404, "unknown_dataset")


def test_a_sample_is_the_datasets_own(api):
    from models.datasets import get_sample

    x, label = get_sample("digits", "test", 5)
    out = api.ok(api.get("/api/datasets/digits/samples/test/5"))
    assert out["label"] == label
    api.assert_same(out["tensor"], x)
    api.error(api.get("/api/datasets/digits/samples/test/100000"), 404, "sample_out_of_range")


def test_training_options_are_data(api):
    opts = api.ok(api.get("/api/training/options"))
    assert opts  # read by the UI: optimizers, losses, schedules
    text = json.dumps(opts)
    for name in ("SGD", "Adam", "CrossEntropyLoss"):
        assert name in text


def test_training_gives_the_engines_weights_bit_for_bit(api, mlp):
    t = start(api, mlp["id"])
    assert t["status"] in ("queued", "running")
    done = wait(api, mlp["id"], t["id"])
    assert done["status"] == "done", done
    assert done["step"] == done["total_steps"] == 40
    got = st_load(api.weights(mlp["id"]))
    want = engine_weights(MLP, 7, DIGITS)
    assert set(got) == set(want)
    for name, tensor in want.items():
        assert torch.equal(got[name], tensor), name
    model = api.ok(api.get(f"/api/models/{mlp['id']}"))
    assert model["version"] > mlp["version"]  # the trained weights are a new version


def test_the_stream_has_every_step_and_resumes(api, mlp):
    t = start(api, mlp["id"])
    whole = events(api, mlp["id"], t["id"])
    ids = [i for i, _, _ in whole]
    assert ids == list(range(1, len(ids) + 1))  # numbered without gaps
    steps = [d["step"] for _, kind, d in whole if kind == "step"]
    assert steps == list(range(1, 41))
    assert [d["status"] for _, kind, d in whole if kind == "status"][-1] == "done"
    assert any(kind == "eval" for _, kind, _ in whole)
    tail = events(api, mlp["id"], t["id"], after=ids[10])
    assert tail == whole[11:]


def test_checkpoints_run_and_restore(api, mlp):
    initial = st_load(api.weights(mlp["id"]))
    t = start(api, mlp["id"])
    wait(api, mlp["id"], t["id"])
    base = f"/api/models/{mlp['id']}/trainings/{t['id']}"
    steps = [c["step"] for c in api.ok(api.get(f"{base}/checkpoints"))["checkpoints"]]
    assert steps[0] == 0 and steps[-1] == 40 and 1 in steps and 10 in steps
    run_at_0 = api.run(mlp["id"], checkpoint={"training": t["id"], "step": 0}, encoding="f32")
    assert run_at_0["checkpoint"] == {"training": t["id"], "step": 0}
    restored = api.ok(api.post(f"{base}/checkpoints/0/restore"))
    now = st_load(api.weights(mlp["id"]))
    for name, tensor in initial.items():
        assert torch.equal(now[name], tensor), name
    assert restored["version"] == api.ok(api.get(f"/api/models/{mlp['id']}"))["version"]
    run_now = api.run(mlp["id"], encoding="f32")
    assert run_now["outputs"] == run_at_0["outputs"]
    api.error(api.post(f"{base}/checkpoints/3/restore"), 404, "checkpoint_not_found")


def test_pause_step_resume_and_cancel(api, mlp):
    t = start(api, mlp["id"], steps=20_000, eval_every=10_000)
    base = f"/api/models/{mlp['id']}/trainings/{t['id']}"
    paused = api.ok(api.post(f"{base}/pause"))
    assert paused["status"] == "paused"
    api.error(api.put(f"/api/models/{mlp['id']}", json={"spec": MLP}), 409, "model_training")
    api.error(api.post(f"/api/models/{mlp['id']}/trainings", json=DIGITS), 409, "training_active")
    time.sleep(0.3)
    before = api.ok(api.get(base))["step"]
    time.sleep(0.3)
    assert api.ok(api.get(base))["step"] == before  # paused: no steps
    api.ok(api.post(f"{base}/step"))
    deadline = time.monotonic() + 30
    while api.ok(api.get(base))["step"] != before + 1:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    api.ok(api.post(f"{base}/resume"))
    cancelled = api.ok(api.post(f"{base}/cancel"))
    assert cancelled["status"] == "cancelled"
    steps = [c["step"] for c in api.ok(api.get(f"{base}/checkpoints"))["checkpoints"]]
    assert steps[-1] == cancelled["step"]  # the weights reached are kept as a checkpoint
    api.error(api.post(f"{base}/pause"), 409, "training_finished")
    # the model is free again
    api.ok(api.put(f"/api/models/{mlp['id']}", json={"spec": MLP}))


@pytest.mark.parametrize(
    ("change", "code", "field"),
    [
        ({"dataset": "nope"}, "unknown_dataset", "dataset"),
        ({"optimizer": {"name": "Nope"}}, None, "optimizer"),
        ({"optimizer": {"name": "sgd", "args": {"lr": 0}}}, None, "lr"),
        ({"batch_size": 10_000}, None, "batch"),
    ],
)
def test_mistakes_are_4xx_naming_the_field(api, mlp, change, code, field):
    r = api.post(f"/api/models/{mlp['id']}/trainings", json={**DIGITS, **change})
    assert 400 <= r.status_code < 500, r.text
    err = r.json()["error"]
    if code:
        assert err["code"] == code
    assert field in json.dumps(err).lower()


def test_a_shape_that_does_not_fit_says_what_to_change(api):
    lenet = api.create(preset="lenet5", seed=0)
    r = api.post(
        f"/api/models/{lenet['id']}/trainings",
        json={**DIGITS, "dataset": "fashion_mnist", "transforms": [{"kind": "scale"}]},
    )
    err = api.error(r, r.status_code)
    assert 400 <= r.status_code < 500
    assert "pad" in err["message"]


def test_fashion_mnist_missing_is_a_4xx_with_the_install_hint(make_api, tmp_path):
    api = make_api(fashion_mnist_dir=tmp_path / "none")
    sets = {d["name"]: d for d in api.ok(api.get("/api/datasets"))["datasets"]}
    assert sets["fashion_mnist"]["available"] is False
    assert "dataset-fashion-mnist" in sets["fashion_mnist"]["unavailable_reason"]
    lenet = api.create(preset="lenet5", seed=0)
    r = api.post(
        f"/api/models/{lenet['id']}/trainings",
        json={
            **DIGITS,
            "dataset": "fashion_mnist",
            "transforms": [{"kind": "scale"}, {"kind": "pad", "size": 32}],
        },
    )
    assert 400 <= r.status_code < 500, r.text
    assert "dataset-fashion-mnist" in r.json()["error"]["message"]


def test_other_workspaces_see_no_training(api, mlp):
    t = start(api, mlp["id"])
    other = api.other()
    r = other.get(f"/api/models/{mlp['id']}/trainings/{t['id']}")
    assert r.status_code == 404
    wait(api, mlp["id"], t["id"])


def test_the_exported_script_reproduces_the_training(api, mlp, tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    t = start(api, mlp["id"])
    wait(api, mlp["id"], t["id"])
    base = f"/api/models/{mlp['id']}/trainings/{t['id']}"
    r = api.get(f"{base}/script")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/x-python")
    script = tmp_path / "train.py"
    script.write_text(r.text)
    init = tmp_path / "init.safetensors"
    init.write_bytes(api.get(f"{base}/checkpoints/0/weights").content)
    out = tmp_path / "out.safetensors"
    root = Path(__file__).resolve().parents[2]
    subprocess.run(
        [sys.executable, str(script), str(init), str(out)], cwd=root, check=True, timeout=300
    )
    want = st_load(api.weights(mlp["id"]))
    got = st_load(out.read_bytes())
    assert set(got) == set(want)
    for name, tensor in want.items():
        assert torch.equal(got[name], tensor), name


def test_a_run_takes_a_dataset_sample_with_its_label(api):
    from models.datasets import apply_transforms, get_sample

    lenet = api.create(preset="lenet5", seed=0)
    transforms = [{"kind": "scale"}, {"kind": "pad", "size": 32}]
    maker = {
        "kind": "dataset",
        "dataset": "fashion_mnist",
        "split": "test",
        "index": 3,
        "transforms": transforms,
    }
    out = api.run(lenet["id"], inputs={"x": maker}, encoding="f32")
    x, label = get_sample("fashion_mnist", "test", 3)
    assert out["inputs"]["x"]["label"] == label
    from pydantic import TypeAdapter

    from models.datasets import DATASETS, Transform

    parsed = TypeAdapter(list[Transform]).validate_python(transforms)
    want = apply_transforms(x[None], parsed, value_range=DATASETS["fashion_mnist"].value_range)
    api.assert_same(out["inputs"]["x"]["tensor"], want)


def test_the_parameter_table_at_a_checkpoint_is_the_checkpoints(api, mlp):
    from models.introspect import parameter_table

    api.ok(api.patch(f"/api/models/{mlp['id']}/parameters/fc1.bias", json={"requires_grad": False}))
    t = start(api, mlp["id"])
    wait(api, mlp["id"], t["id"])
    base = f"/api/models/{mlp['id']}/parameters"
    at = api.ok(api.get(base, params={"training": t["id"], "step": 1}))
    assert at["checkpoint"] == {"training": t["id"], "step": 1}
    built = build(MLP, seed=7)
    weights = api.get(f"/api/models/{mlp['id']}/trainings/{t['id']}/checkpoints/1/weights")
    built.model.load_state_dict(st_load(weights.content))
    built.model.fc1.bias.requires_grad_(False)  # the model's own flags, not the copy's
    want = parameter_table(built.model)
    assert at["rows"] == json.loads(json.dumps(want["rows"]))
    assert at["rows"] != api.ok(api.get(base))["rows"]  # trained since step 1
    api.error(api.get(base, params={"training": t["id"]}), 422)
    api.error(api.get(base, params={"training": "nope", "step": 1}), 404, "training_not_found")
    api.error(api.get(base, params={"training": t["id"], "step": 3}), 404, "checkpoint_not_found")
