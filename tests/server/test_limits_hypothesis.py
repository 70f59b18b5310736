"""Hypothesis-generated specs around every cost limit (server/settings.py -> models/limits.py).

Each limit gets an app where it is tiny (``max_params=1000``, ...) and every other cost limit
is far away, and a one-number family of specs whose cost grows with that number ``v``. Around
the largest accepted ``v`` (one below, at, one above), and at 0, −1, −limit, 2^31−1, 2^31 and
2^63−1, plus whatever Hypothesis draws, one oracle decides:

- ``v`` is not a size at all (< 1, or over 2^31−1, the most a size may be): 422, nothing built;
- the cost computed here by hand is over the limit: 413 ``limit_exceeded`` naming that
  limit's setting, with the hand-computed cost as ``actual``, and nothing built (the check
  runs on the meta device, before any allocation);
- otherwise the model is created (201), built once, and runs (200) with the expected output
  shape.

Costs by hand: Linear(i, o) has i·o + o parameters and 2·i·o FLOPs per row; an elementwise
layer on n float32 values holds 4n bytes of input and 4n of output.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from models.presets import PRESETS

MAX_SIZE = 2**31 - 1  # the largest size a spec may name; larger ones are invalid (422)
FAR = 10**15  # the limits not under test: never the first to trip
FAR_LIMITS: dict[str, Any] = {
    "max_params": FAR,
    "max_activation_bytes": FAR,
    "max_flops": FAR,
    "max_layers": 200,
    "max_input_elements": FAR,
    "max_sequence_length": MAX_SIZE,
    "max_work": FAR,
    "job_timeout_s": float(FAR),
}
HYPOTHESIS = settings(
    max_examples=25,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def edges(last_ok: int, limit: int) -> list[int]:
    """The values every family is tried at, whatever Hypothesis draws besides."""
    return [last_ok - 1, last_ok, last_ok + 1, 0, -1, -limit, MAX_SIZE, 2**31, 2**63 - 1]


def around(last_ok: int) -> st.SearchStrategy[int]:
    return st.one_of(
        st.integers(max(1, last_ok - 8), last_ok + 8),
        st.integers(-(2**64), 2**64),
        st.integers(1, 4 * last_ok),
    )


def at_edges(last_ok: int, limit: int) -> Callable:
    def decorate(test: Callable) -> Callable:
        for value in reversed(edges(last_ok, limit)):
            test = example(value)(test)
        return test

    return decorate


@dataclass
class Family:
    """Specs whose cost under one limit grows with ``v``."""

    setting: str  # the Settings field, e.g. max_params
    limit: int
    spec: Callable[[int], dict]
    cost: Callable[[int], int]
    out_shape: Callable[[int], list[int]]
    output: str
    run_body: Callable[[int], dict] = field(default=lambda v: {"capture": "none"})

    @property
    def last_ok(self) -> int:
        """The largest accepted ``v`` (every cost here grows with ``v``)."""
        v = 1
        while self.cost(v + 1) <= self.limit:
            v += 1
        return v

    def app_settings(self) -> dict[str, Any]:
        return {**FAR_LIMITS, self.setting: self.limit}


def check(api, builds: list, family: Family, v: int) -> None:
    """One spec of the family: refused as the oracle says, or created and run."""
    before = len(builds)
    r = api.post("/api/models", json={"spec": family.spec(v)})
    if not 1 <= v <= MAX_SIZE:
        api.error(r, 422)
        assert len(builds) == before
        return
    if family.cost(v) > family.limit:
        err = api.error(r, 413, "limit_exceeded")
        assert err["detail"]["setting"] == f"PLAYGROUND_{family.setting.upper()}", err
        assert err["detail"]["actual"] == family.cost(v), err
        assert err["detail"]["limit"] == family.limit, err
        assert len(builds) == before, "refused after a real build"
        return
    model = api.ok(r, 201)
    assert len(builds) == before + 1
    result = api.run(model["id"], **family.run_body(v))
    assert result["outputs"][family.output]["shape"] == family.out_shape(v)
    assert api.delete(f"/api/models/{model['id']}").status_code == 204


def explore(api, builds: list, family: Family) -> None:
    """``check`` at the family's edges, then at values hypothesis draws around them."""

    @HYPOTHESIS
    @at_edges(family.last_ok, family.limit)
    @given(around(family.last_ok))
    def probe(v: int) -> None:
        check(api, builds, family, v)

    probe()


def linear(i: int, o: int, shape: list[int]) -> dict:
    return {
        "inputs": {"x": {"shape": shape}},
        "layers": [{"name": "fc", "type": "Linear", "args": {"in_features": i, "out_features": o}}],
    }


def relu(shape: list[int]) -> dict:
    return {"inputs": {"x": {"shape": shape}}, "layers": [{"name": "act", "type": "ReLU"}]}


# -- parameters: the sizes of a Linear ------------------------------------------------------
PARAMS_OUT = Family(
    "max_params", 1000, lambda v: linear(1, v, [1, 1]), lambda v: 2 * v, lambda v: [1, v], "fc"
)
PARAMS_IN = Family(
    "max_params", 1000, lambda v: linear(v, 1, [1, v]), lambda v: v + 1, lambda v: [1, 1], "fc"
)


@pytest.mark.parametrize("family", [PARAMS_OUT, PARAMS_IN], ids=["out_features", "in_features"])
def test_linear_sizes_around_max_params(make_api, builds, family: Family) -> None:
    api = make_api(**family.app_settings())

    explore(api, builds, family)


# -- FLOPs: the batch of a Linear(1, 1) ------------------------------------------------------
FLOPS = Family(
    "max_flops", 1000, lambda v: linear(1, 1, [v, 1]), lambda v: 2 * v, lambda v: [v, 1], "fc"
)
# -- activation bytes and input elements: the width of the input of a ReLU -------------------
ACTIVATION = Family(
    "max_activation_bytes", 800, lambda v: relu([1, v]), lambda v: 8 * v, lambda v: [1, v], "act"
)
INPUT = Family(
    "max_input_elements", 100, lambda v: relu([1, v]), lambda v: v, lambda v: [1, v], "act"
)


@pytest.mark.parametrize("family", [FLOPS, ACTIVATION, INPUT], ids=lambda f: f.setting)
def test_input_shapes_around_cost_limits(make_api, builds, family: Family) -> None:
    api = make_api(**family.app_settings())

    explore(api, builds, family)


# -- sequence length: the tagger's sentence ---------------------------------------------------
TAGGER = PRESETS["lstm_tagger"]
VOCAB = TAGGER.spec["inputs"]["sentence"]["vocab"]


def tagger(v: int) -> dict:
    spec = TAGGER.to_spec()
    spec["inputs"]["sentence"]["shape"] = [v]
    return spec


def sentence(v: int) -> dict:
    words = " ".join(VOCAB[i % len(VOCAB)] for i in range(v))
    return {"inputs": {"sentence": {"kind": "tokens", "text": words}}, "capture": "none"}


SEQUENCE = Family(
    "max_sequence_length", 8, tagger, lambda v: v, lambda v: [v, 3], "log_softmax", sentence
)


def test_sentence_lengths_around_max_sequence_length(make_api, builds) -> None:
    api = make_api(**SEQUENCE.app_settings())

    explore(api, builds, SEQUENCE)


# -- layers per spec: v Identity layers (a count: the huge ones are the body cap's) -----------
def identities(v: int) -> dict:
    layers = [{"name": f"id{i}", "type": "Identity"} for i in range(max(v, 0))]
    return {"inputs": {"x": {"shape": [1, 3]}}, "layers": layers}


MAX_LAYERS = 4


def test_layer_counts_around_max_layers(make_api, builds) -> None:
    api = make_api(**{**FAR_LIMITS, "max_layers": MAX_LAYERS})

    @HYPOTHESIS
    @example(0)
    @example(3)
    @example(4)
    @example(5)
    @example(2_000)
    @given(st.integers(0, 300))
    def probe(v: int) -> None:
        before = len(builds)
        r = api.post("/api/models", json={"spec": identities(v)})
        if v == 0:
            api.error(r, 422, "empty_spec")
            assert len(builds) == before
            return
        if v > MAX_LAYERS:
            err = api.error(r, 413, "limit_exceeded")
            assert "PLAYGROUND_MAX_LAYERS" in err["message"], err
            assert err["detail"]["actual"] == v and err["detail"]["limit"] == MAX_LAYERS, err
            assert len(builds) == before
            return
        model = api.ok(r, 201)
        result = api.run(model["id"], capture="none")
        assert result["outputs"][f"id{v - 1}"]["shape"] == [1, 3]
        assert api.delete(f"/api/models/{model['id']}").status_code == 204

    probe()


# -- body bytes: a valid spec padded with spaces to v bytes ---------------------------------
BODY_LIMIT = 2048
MINIMAL = json.dumps({"spec": linear(3, 2, [1, 3])}).encode()
JSON = {"content-type": "application/json"}


def test_body_sizes_around_max_body_bytes(make_api, builds) -> None:
    api = make_api(**FAR_LIMITS, max_body_bytes=BODY_LIMIT)

    @HYPOTHESIS
    @example(BODY_LIMIT - 1)
    @example(BODY_LIMIT)
    @example(BODY_LIMIT + 1)
    @example(len(MINIMAL))
    @example(0)
    @given(st.one_of(st.just(0), st.integers(len(MINIMAL), 3 * BODY_LIMIT)))
    def probe(v: int) -> None:
        before = len(builds)
        r = api.post("/api/models", content=MINIMAL.ljust(v) if v else b"", headers=JSON)
        if v == 0:
            api.error(r, 422)
        elif v > BODY_LIMIT:
            api.error(r, 413, "body_too_large")
        else:
            model = api.ok(r, 201)
            assert api.run(model["id"])["outputs"]["fc"]["shape"] == [1, 2]
            assert api.delete(f"/api/models/{model['id']}").status_code == 204
            return
        assert len(builds) == before

    probe()


@pytest.mark.parametrize("declared", [BODY_LIMIT + 1, 2**31, 2**63 - 1, 2**64])
def test_declared_body_lengths_over_the_cap_are_refused_unread(make_api, builds, declared):
    """A Content-Length over the cap is refused from the header alone, whatever follows."""
    api = make_api(**FAR_LIMITS, max_body_bytes=BODY_LIMIT)
    headers = {**JSON, "content-length": str(declared)}
    r = api.post("/api/models", content=MINIMAL, headers=headers)
    err = api.error(r, 413, "body_too_large")
    assert f"{declared:,}" in err["message"]
    assert builds == []
    assert api.ok(api.get("/api/models"))["models"] == []


# -- time: every spec the limits accept validates and runs, or is refused -------------------
# Generated chains of layers (sizes from tiny to a few thousand, pooling windows up to 100,
# sequences up to 4,096 steps) go through /api/validate, creation and one run. Whatever the
# limits accept must finish: each answer is a success or a refusal with the one error body
# (413 over a limit, 422 a wrong spec, 503 busy or past its time budget), never a 5xx bug or
# a hang. Timings are not asserted; bench/bench_limits.py measures the worst accepted ones
# over many more specs, reusing ``specs()``.
SIZES = st.one_of(
    st.integers(1, 16), st.integers(1, 128), st.sampled_from([256, 500, 1000, 2000, 4096])
)
KERNELS = st.one_of(st.integers(1, 8), st.sampled_from([30, 100]))
SIMPLE = [
    "ReLU", "Tanh", "Sigmoid", "GELU", "Flatten", "Dropout", "Identity", "PReLU",
]  # fmt: skip


def _layer(draw: Callable) -> tuple[str, dict[str, Any]]:
    kind = draw(
        st.sampled_from(
            [
                "simple", "Linear", "Conv1d", "Conv2d", "pool", "AdaptiveAvgPool2d", "recurrent",
                "norm", "Softmax", "LogSoftmax", "TransformerEncoderLayer", "MultiheadAttention",
            ]
        )
    )  # fmt: skip
    small = st.integers(1, 16)
    if kind == "simple":
        return draw(st.sampled_from(SIMPLE)), {}
    if kind == "Linear":
        return "Linear", {"in_features": "auto", "out_features": draw(SIZES)}
    if kind in ("Conv1d", "Conv2d"):
        args = {"in_channels": "auto", "out_channels": draw(small), "kernel_size": draw(KERNELS)}
        args |= {"stride": draw(st.integers(1, 3)), "padding": draw(st.integers(0, 2))}
        return kind, args | {"dilation": draw(st.integers(1, 3))}
    if kind == "pool":
        name = draw(st.sampled_from(["MaxPool1d", "MaxPool2d", "AvgPool2d", "MinPool2d"]))
        args = {"kernel_size": draw(KERNELS), "stride": draw(st.sampled_from([None, 1, 2]))}
        if name != "AvgPool2d":
            args["dilation"] = draw(st.integers(1, 3))
        return name, args
    if kind == "AdaptiveAvgPool2d":
        return kind, {"output_size": draw(st.integers(1, 8))}
    if kind == "recurrent":
        name = draw(st.sampled_from(["RNN", "LSTM", "GRU"]))
        args = {"input_size": "auto", "hidden_size": draw(st.integers(1, 64))}
        args |= {"num_layers": draw(st.integers(1, 2)), "bidirectional": draw(st.booleans())}
        return name, args
    if kind == "norm":
        name = draw(st.sampled_from(["BatchNorm1d", "BatchNorm2d", "LayerNorm", "InstanceNorm2d"]))
        key = "normalized_shape" if name == "LayerNorm" else "num_features"
        return name, {key: "auto"}
    if kind in ("Softmax", "LogSoftmax"):
        return kind, {"dim": -1}
    if kind == "TransformerEncoderLayer":
        return kind, {"d_model": "auto", "nhead": 1, "dim_feedforward": draw(SIZES)}
    return kind, {"embed_dim": "auto", "num_heads": 1}


@st.composite
def specs(draw: Callable) -> dict[str, Any]:
    """A model input of rank 2 to 4 and a chain of 1 to 6 generated layers."""
    shape = draw(st.lists(SIZES, min_size=2, max_size=4))
    layers = []
    for i in range(draw(st.integers(1, 6))):
        type_name, args = _layer(draw)
        args = {k: v for k, v in args.items() if v is not None}
        layers.append({"name": f"l{i}", "type": type_name, "args": args})
    return {"inputs": {"x": {"shape": shape}}, "layers": layers}


REFUSALS = {413, 422, 503}


def refused_or_finished(api, r, status: int = 200) -> bool:
    """True when ``r`` finished (``status``); otherwise it must be a documented refusal."""
    if r.status_code == status:
        return True
    assert r.status_code in REFUSALS, r.text
    err = api.error(r, r.status_code)
    if r.status_code == 503:
        assert err["code"] in {"busy", "deadline_exceeded", "out_of_memory"}, err
    return False


def validate_and_run(api, spec: dict[str, Any]) -> dict[str, Any]:
    """Validate, create and run ``spec`` once; the seconds each step took when accepted, and
    what refused it (``refused``: status and code) when a step after validation was."""
    took: dict[str, Any] = {}
    started = time.perf_counter()
    r = api.post("/api/validate", json={"spec": spec})
    if not refused_or_finished(api, r) or not r.json()["valid"]:
        return took
    took["validate"], took["work"] = time.perf_counter() - started, r.json().get("total_work", 0)
    r = api.post("/api/models", json={"spec": spec})
    if not refused_or_finished(api, r, 201):
        took["refused"] = f"{r.status_code} {r.json()['error']['code']}"
        return took
    model = r.json()
    started = time.perf_counter()
    r = api.post(f"/api/models/{model['id']}/run", json={"capture": "none"})
    if refused_or_finished(api, r):
        took["run"] = time.perf_counter() - started
    else:
        took["refused"] = (
            f"{r.status_code} {r.json()['error']['code']}: {r.json()['error']['message']}"
        )
    assert api.delete(f"/api/models/{model['id']}").status_code == 204
    return took


def test_every_spec_the_limits_accept_validates_and_runs_or_is_refused(make_api) -> None:
    api = make_api(max_work=3 * 10**8, max_flops=10**9, max_params=10**6)

    @HYPOTHESIS
    @given(specs())
    def probe(spec: dict[str, Any]) -> None:
        validate_and_run(api, spec)

    probe()
