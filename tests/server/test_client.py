"""The Python client (server/client/) against a real server on 127.0.0.1: every method used,
each answer compared with the raw REST response and with plain torch."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator

import httpx
import plotly.graph_objects as go
import pytest
import torch
from safetensors.torch import load as st_load
from shared_specs import DIGITS, MLP

from models.build import build
from models.datasets import DataRoots, get_sample
from models.presets import PRESETS
from models.tensors import decode
from server.child import ChildServer
from server.client import Client, Effect, Model, PlaygroundError, Run, Training

pytestmark = pytest.mark.slow

BIG = 2**31


@pytest.fixture(scope="module")
def server_url(tmp_path_factory) -> Iterator[str]:
    env = {
        "PLAYGROUND_RATE_LIMIT_PER_MINUTE": "0",
        "PLAYGROUND_VALIDATE_RATE_LIMIT_PER_MINUTE": "0",
    }
    with ChildServer(tmp_path_factory.mktemp("client") / "data", env=env, timeout=90) as srv:
        yield srv.url


@pytest.fixture
def pg(server_url) -> Iterator[Client]:
    with Client(server_url) as client:
        yield client


@pytest.fixture
def raw(pg) -> Iterator[httpx.Client]:
    """Plain httpx on the client's workspace: the REST answers to compare with."""
    pg.create_workspace()
    headers = {"Authorization": f"Bearer {pg.token}"}
    with httpx.Client(base_url=str(pg.http.base_url), headers=headers, timeout=60) as http:
        yield http


def t(payload: dict) -> torch.Tensor:
    return decode(payload, max_elements=BIG)


def lenet_oracle(x: torch.Tensor) -> dict[str, torch.Tensor]:
    model = build(PRESETS["lenet5"].spec, seed=0).model.eval()
    outs, h = {}, x
    with torch.no_grad():
        for layer in PRESETS["lenet5"].spec["layers"]:
            h = getattr(model, layer["name"])(h)
            outs[layer["name"]] = h
    return outs


def test_workspace_library_and_validate(pg, raw):
    ws = pg.workspace()
    assert ws == raw.get("/api/workspaces/me").json() and ws["id"] == pg.workspace_id
    assert pg.health()["status"] == raw.get("/healthz").json()["status"]
    assert pg.catalog() == raw.get("/api/catalog").json()
    assert pg.presets() == raw.get("/api/presets").json()["presets"]
    assert pg.preset("lenet5") == raw.get("/api/presets/lenet5").json()
    verdict = pg.validate(PRESETS["lenet5"].spec)
    assert verdict == raw.post("/api/validate", json={"spec": PRESETS["lenet5"].spec}).json()
    assert verdict["valid"] and verdict["total_params"] == sum(
        p.numel() for p in build(PRESETS["lenet5"].spec, seed=0).model.parameters()
    )
    bad = copy.deepcopy(MLP)
    bad["layers"][2]["args"]["in_features"] = 31
    verdict = pg.validate(bad)
    assert not verdict["valid"] and verdict["error"]["layer"] == "fc2"


def test_models_create_edit_code_summary_delete(pg, raw):
    lenet = pg.create_model(preset="lenet5", seed=0)
    fetched = raw.get(f"/api/models/{lenet.id}").json()
    assert isinstance(lenet, Model) and pg.model(lenet.id).data == fetched
    assert lenet.data == {**fetched, "preset": "lenet5"}  # GET does not say which preset
    assert [m["id"] for m in pg.models()] == [
        m["id"] for m in raw.get("/api/models").json()["models"]
    ]
    summary = lenet.summary()
    assert summary == raw.get(f"/api/models/{lenet.id}/summary").json()
    assert summary["module_tree"] == str(build(PRESETS["lenet5"].spec, seed=0).model)
    code = lenet.code()
    assert code == raw.get(f"/api/models/{lenet.id}/code").json()["code"]
    assert "class LeNet" in code and "nn.Conv2d(1, 6" in code.replace("in_channels=", "")

    html = lenet._repr_html_()  # the torchinfo-like table
    for row in summary["layers"]:
        assert f"{row['name']} ({row['type']})" in html
    assert f"{summary['total_params']:,}" in html and "Total params" in html

    mlp = pg.create_model(MLP, seed=1)
    wider = copy.deepcopy(MLP)
    wider["layers"][2]["args"]["out_features"] = 5
    edited = pg.edit_model(mlp.id, wider)
    assert edited.version == mlp.version + 1 and edited.data["reinitialized"] == ["fc2"]
    assert edited.data["kept"] == ["fc1", "relu"]
    assert torch.equal(pg.weights(mlp.id)["fc1.weight"], build(MLP, seed=1).model.fc1.weight)
    pg.delete_model(mlp.id)
    assert raw.get(f"/api/models/{mlp.id}").status_code == 404
    with pytest.raises(PlaygroundError) as err:
        pg.model(mlp.id)
    assert err.value.status == 404 and err.value.code == "model_not_found"


def test_errors_carry_code_message_layer_status(pg):
    bad = copy.deepcopy(MLP)
    bad["layers"][2]["args"]["in_features"] = 31
    with pytest.raises(PlaygroundError) as err:
        pg.create_model(bad)
    e = err.value
    assert (e.status, e.code, e.layer) == (422, "shape_mismatch", "fc2")
    assert "in_features" in e.message and str(e).startswith("422 shape_mismatch")
    with pytest.raises(ValueError, match="unknown effect"):
        pg.effect("nope")


def test_weights_in_and_out_as_safetensors(pg, raw):
    lenet = pg.create_model(preset="lenet5", seed=0)
    weights = lenet.weights()
    assert weights.keys() == st_load(raw.get(f"/api/models/{lenet.id}/weights").content).keys()
    expected = build(PRESETS["lenet5"].spec, seed=0).model.state_dict()
    for name, value in expected.items():
        assert torch.equal(weights[name], value), name
    changed = {k: v + 1 for k, v in weights.items()}
    loaded = lenet.load_weights(changed)
    assert loaded["tensors"] == len(changed) and loaded["version"] == lenet.version + 1
    for name, value in pg.weights(lenet.id).items():
        assert torch.equal(value, changed[name]), name
    with pytest.raises(PlaygroundError) as err:
        lenet.load_weights(b"not a safetensors file")
    assert err.value.status == 422


def test_run_gives_torch_tensors_exactly(pg, raw):
    lenet = pg.create_model(preset="lenet5", seed=0)
    x = torch.randn(1, 1, 32, 32, generator=torch.Generator().manual_seed(7))
    run = lenet.run({"x": x})
    assert isinstance(run, Run) and run.mode == "eval"
    oracle = lenet_oracle(x)
    device = pg.health()["device"]
    for name, value in oracle.items():
        if device == "cpu":
            assert torch.equal(run.activations[name], value), name
        else:
            torch.testing.assert_close(run.activations[name], value, rtol=1e-4, atol=1e-5)
    assert torch.equal(run.output, run.outputs["fc3"])
    assert run.numpy()["conv1"].shape == (1, 6, 28, 28)

    # the same run through REST: the same numbers and statistics
    body = {
        "inputs": {"x": {"kind": "tensor", "data": x.tolist()}},
        "encoding": "f32",
        "downsample": False,
    }
    rest = raw.post(f"/api/models/{lenet.id}/run", json=body).json()
    for name, act in rest["activations"].items():
        assert torch.equal(t(act["tensor"]), run.activations[name]), name
        assert run.stats(name) == act["stats"]

    fig = run.figure("conv1")
    assert isinstance(fig, go.Figure) and len(fig.data) == 6
    assert isinstance(run.figure("fc3"), go.Figure) and fig.data[0].type == "heatmap"
    html = run._repr_html_()
    assert all(name in html for name in oracle) and "fc3" in repr(run)

    # f16 and lists on request; a seeded random input; only some layers
    run16 = pg.run(
        lenet.id, {"x": {"kind": "random", "seed": 0}}, encoding="f16", capture=["conv1"]
    )
    assert (
        list(run16.activations) == ["conv1"] and run16.activations["conv1"].dtype == torch.float32
    )
    listed = pg.run(lenet.id, {"x": x}, encoding="list", stats=False, mode="train", seed=0)
    assert listed.stats("conv1") is None and torch.equal(listed.outputs["fc3"], run.outputs["fc3"])


def test_sequence_run_extras(pg):
    tagger = pg.create_model(preset="lstm_tagger", seed=0)
    run = tagger.run({"sentence": {"kind": "tokens", "text": "The dog ate the apple"}})
    lstm = next(name for name, a in run.data["activations"].items() if a["type"] == "LSTM")
    assert set(run.extras[lstm]) >= {"h_n", "c_n"}
    assert isinstance(run.figure(lstm), go.Figure)  # time × hidden


def test_parameters_values_and_freeze(pg, raw):
    mlp = pg.create_model(MLP, seed=2)
    table = mlp.parameters()
    assert table == raw.get(f"/api/models/{mlp.id}/parameters").json()
    expected = build(MLP, seed=2).model.state_dict()
    assert [r["name"] for r in table["rows"]] == list(expected)
    assert torch.equal(pg.parameter(mlp.id, "fc1.weight"), expected["fc1.weight"])
    out = pg.freeze(mlp.id, "fc1")
    assert sorted(out["changed"]) == ["fc1.bias", "fc1.weight"]
    assert out["totals"]["frozen"] == 64 * 32 + 32
    rows = {r["name"]: r for r in raw.get(f"/api/models/{mlp.id}/parameters").json()["rows"]}
    assert not rows["fc1.weight"]["requires_grad"] and rows["fc2.weight"]["requires_grad"]
    assert pg.freeze(mlp.id, "fc1", frozen=False)["totals"]["frozen"] == 0


def test_effects_with_figures(pg, raw):
    drop = pg.effect("dropout", preset="tutorial")
    assert isinstance(drop, Effect)
    assert drop.data == raw.post("/api/effects/dropout", json={"preset": "tutorial"}).json()
    x = drop.tensors["input"]
    torch.manual_seed(drop["seed"])
    layer = torch.nn.Dropout(drop["p"]).train()
    for i in range(len(drop["passes"])):
        assert torch.equal(drop.tensors[f"passes.{i}.output"], layer(x))
    assert isinstance(drop.figure(), go.Figure)

    acts = pg.effect("activations", functions=[{"type": "ReLU"}, {"type": "Tanh"}])
    xs = acts.tensors["curves.1.x"]
    torch.testing.assert_close(acts.tensors["curves.1.y"], torch.tanh(xs))
    assert len(acts.figure().data) == 2

    pool = pg.effect("pooling", preset="tutorial")
    expected = torch.nn.MaxPool2d(3)(pool.tensors["input"])
    assert torch.equal(pool.tensors["output"], expected)
    assert isinstance(pool.figure(), go.Figure)


def test_datasets_and_options(pg, raw):
    assert pg.datasets() == raw.get("/api/datasets").json()["datasets"]
    digits = pg.dataset("digits")
    assert digits == raw.get("/api/datasets/digits").json()
    x, label = pg.sample("digits", "train", 3)
    rest = raw.get("/api/datasets/digits/samples/train/3").json()
    assert torch.equal(x, t(rest["tensor"])) and label == rest["label"]
    engine_x, engine_label = get_sample("digits", "train", 3, roots=DataRoots())
    assert torch.equal(x, engine_x) and label == engine_label  # tests/models reads it as sklearn
    assert pg.training_options() == raw.get("/api/training/options").json()


def raw_events(raw: httpx.Client, url: str) -> list[dict]:
    out, fields = [], {}
    with raw.stream("GET", url) as r:
        for line in r.iter_lines():
            if not line:
                if "data" in fields:
                    out.append({"id": int(fields["id"]), **json.loads(fields["data"])})
                fields = {}
            elif not line.startswith(":"):
                k, _, v = line.partition(":")
                fields[k] = v.lstrip(" ")
    return out


def test_training_followed_to_the_end(pg, raw, capsys):
    mlp = pg.create_model(MLP, seed=0)
    training = mlp.train(DIGITS, follow=True)
    assert isinstance(training, Training) and training.status == "done"
    assert training.data["step"] == DIGITS["steps"]
    url = f"/api/models/{mlp.id}/trainings/{training.id}"
    assert training.data == raw.get(url).json()
    assert training.events == raw_events(raw, url + "/events")
    steps = [e["step"] for e in training.events if e["kind"] == "step"]
    assert steps == list(range(1, DIGITS["steps"] + 1))
    assert "40/40" in capsys.readouterr().err  # the tqdm bar reached the end

    # the model holds what the engine's trainer gives (the trainings tests check it bit for
    # bit against plain torch loops); here: the weights changed, the checkpoint at 0 did not
    first = pg.checkpoints(mlp.id, training.id)
    assert first == raw.get(url + "/checkpoints").json()["checkpoints"]
    assert first[0]["step"] == 0 and first[-1]["step"] == DIGITS["steps"]
    at0 = pg.checkpoint_weights(mlp.id, training.id, 0)
    initial = build(MLP, seed=0).model.state_dict()
    assert all(torch.equal(at0[k], initial[k]) for k in initial)
    final = mlp.weights()
    assert not torch.equal(final["fc1.weight"], initial["fc1.weight"])
    last = pg.checkpoint_weights(mlp.id, training.id, DIGITS["steps"])
    assert all(torch.equal(last[k], final[k]) for k in final)

    x = torch.randn(1, 64)
    at_start = pg.run(mlp.id, {"x": x}, checkpoint=(training.id, 0))
    model0 = build(MLP, seed=0).model.eval()
    with torch.no_grad():
        torch.testing.assert_close(at_start.output, model0(x), rtol=0, atol=1e-6)
    restored = pg.restore(mlp.id, training.id, 0)
    assert restored["model_id"] == mlp.id
    assert torch.equal(pg.weights(mlp.id)["fc1.weight"], initial["fc1.weight"])

    assert [tr.id for tr in pg.trainings(mlp.id)] == [training.id]
    fig = training.figure()
    assert isinstance(fig, go.Figure) and {d.name for d in fig.data} >= {"train loss", "test loss"}
    assert "done" in training._repr_html_() and training.id in repr(training)
    # the events again, through the plain iterator, after a given id
    assert [e.id for e in pg.events(mlp.id, training.id, after=10)] == [
        e["id"] for e in training.events if e["id"] > 10
    ]


def test_pause_step_resume_cancel(pg):
    mlp = pg.create_model(MLP, seed=0)
    training = pg.train(mlp.id, {**DIGITS, "steps": 100_000, "eval_every": None})
    paused = pg.pause(mlp.id, training.id)
    assert paused.status == "paused"
    time.sleep(0.3)  # the slice under way finishes and is recorded
    before = pg.training(mlp.id, training.id).data["step"]
    pg.step(mlp.id, training.id)
    deadline = time.monotonic() + 30
    while pg.training(mlp.id, training.id).data["step"] != before + 1:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert pg.resume(mlp.id, training.id).status == "running"
    cancelled = pg.cancel(mlp.id, training.id)
    assert cancelled.status == "cancelled" and cancelled.refresh().status == "cancelled"
    with pytest.raises(PlaygroundError) as err:
        pg.training(mlp.id, "nope")
    assert err.value.code == "training_not_found" and err.value.status == 404


class Dropping(httpx.BaseTransport):
    """A transport that cuts each of the first ``cuts`` event streams after ``limit`` bytes."""

    def __init__(self, limit: int, cuts: int) -> None:
        self.inner = httpx.HTTPTransport()
        self.limit, self.cuts, self.opened = limit, cuts, []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if not request.url.path.endswith("/events"):
            return response
        self.opened.append(request.headers.get("last-event-id"))
        if self.cuts == 0:
            return response
        self.cuts -= 1
        stream, limit = response.stream, self.limit

        class Cut(httpx.SyncByteStream):
            def __iter__(self):
                sent = 0
                for chunk in stream:
                    yield chunk[: limit - sent]
                    sent += len(chunk)
                    if sent >= limit:
                        raise httpx.ReadError("connection dropped", request=request)

            def close(self) -> None:
                stream.close()

        return httpx.Response(response.status_code, headers=response.headers, stream=Cut())

    def close(self) -> None:
        self.inner.close()


def test_follow_resumes_with_last_event_id(server_url, raw):
    transport = Dropping(limit=700, cuts=3)
    http = httpx.Client(base_url=server_url, transport=transport, timeout=60)
    with Client(http=http, token=raw.headers["Authorization"].split()[1]) as pg:
        mlp = pg.create_model(MLP, seed=0)
        training = pg.train(mlp.id, DIGITS)
        pg.follow(training, progress=False)
        url = f"/api/models/{mlp.id}/trainings/{training.id}/events"
        assert training.events == raw_events(raw, url)  # none lost, none twice
    assert transport.opened[0] == "0" and len(transport.opened) == 4
    resumed = [int(i) for i in transport.opened[1:]]
    assert resumed == sorted(resumed) and resumed[0] > 0


def test_handles_refresh_and_follow(pg):
    mlp = pg.create_model(MLP, seed=0)
    assert mlp.refresh().data == pg.model(mlp.id).data
    training = mlp.train({**DIGITS, "steps": 5, "eval_every": None})
    assert training.follow(progress=False).status == "done"
    assert [e["step"] for e in training.events if e["kind"] == "step"] == [1, 2, 3, 4, 5]


def test_an_access_code_over_any_httpx_client(make_client):
    app_client = make_client(access_code="owl-42")  # in-process: the ASGI app, no socket
    with pytest.raises(PlaygroundError) as err:
        Client(http=app_client).create_workspace()
    assert (err.value.status, err.value.code) == (403, "access_code_required")
    assert err.value.request_id  # the X-Request-ID header
    pg = Client(http=app_client, access_code="owl-42")
    assert pg.create_model(preset="linear_3_2", seed=0).name
    assert pg.workspace()["models"] == 1
