"""The work estimate (models/cost.py) and recurrent layers inferred on one step.

Torch is the oracle: a recurrent layer's inferred output, extras, parameters and FLOPs equal
those of the real module run on the CPU under ``FlopCounterMode``, and the inference of a
2,000-step sequence dispatches no more operators than that of a 2-step one (counted with a
``TorchDispatchMode``: no timing).
"""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from models import cost, layer_memo
from models.build import build
from models.catalog import CATALOG
from models.errors import LimitError
from models.inference import infer
from models.limits import DEFAULT_LIMITS, Deadline, DeadlineExceeded, Limits
from models.presets import PRESETS


class Dispatched(TorchDispatchMode):
    """Counts every aten operator called inside it."""

    def __init__(self) -> None:
        super().__init__()
        self.ops = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops += 1
        return func(*args, **(kwargs or {}))


def _one(type_name: str, shape: list[int], **args: Any) -> dict[str, Any]:
    return {
        "inputs": {"x": {"shape": shape}},
        "layers": [{"name": "layer", "type": type_name, "args": args}],
    }


RECURRENT = [
    ("LSTM", lambda L: [L, 2, 3], {"input_size": 3, "hidden_size": 5}),
    (
        "LSTM",
        lambda L: [2, L, 3],
        {
            "input_size": 3,
            "hidden_size": 6,
            "num_layers": 2,
            "bidirectional": True,
            "proj_size": 2,
            "batch_first": True,
        },
    ),
    ("GRU", lambda L: [2, L, 3], {"input_size": 3, "hidden_size": 4, "batch_first": True}),
    ("GRU", lambda L: [L, 3], {"input_size": 3, "hidden_size": 4, "num_layers": 3}),
    ("RNN", lambda L: [L, 3], {"input_size": 3, "hidden_size": 4, "nonlinearity": "relu"}),
    ("RNN", lambda L: [L, 1, 3], {"input_size": 3, "hidden_size": 4, "bidirectional": True}),
]
IDS = ["lstm", "lstm_bi_proj_batch_first", "gru_batch_first", "gru_3_unbatched", "rnn", "rnn_bi"]


@pytest.mark.parametrize(("type_name", "shape", "args"), RECURRENT, ids=IDS)
@pytest.mark.parametrize("steps", [1, 2, 7])
@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")
def test_recurrent_inference_equals_torch_on_the_real_module(type_name, shape, args, steps):
    layer_memo.forget_all()
    info = infer(_one(type_name, shape(steps), **args)).layers[0]
    module = getattr(nn, type_name)(**args).eval()
    with torch.no_grad():
        out = module(torch.randn(shape(steps)))
    main, extras = CATALOG[type_name].split(out)
    assert info.output_shape == list(main.shape)
    assert info.extras == {k: list(v.shape) for k, v in extras.items()}
    assert info.params == sum(p.numel() for p in module.parameters())
    # FLOPs and work of the whole sequence, stepped on the meta device (as inference did):
    # the FLOPs are the same, the scaled work (about) never less and at most twice as much
    meta = getattr(nn, type_name)(**args, device="meta").eval()
    with FlopCounterMode(display=False) as counter, cost.WorkCounter() as work:
        meta(torch.empty(shape(steps), device="meta"))
    assert info.flops == counter.get_total_flops()
    direct = work.work(counter.get_total_flops())
    assert direct - 2 * cost.OP <= info.work <= 2 * direct  # give or take an operator


@pytest.mark.parametrize(("type_name", "shape", "args"), RECURRENT, ids=IDS)
def test_recurrent_inference_costs_the_same_whatever_the_length(type_name, shape, args):
    """A 2,000-step sequence is inferred with as many operators as a 2-step one (it was
    15-35 ms of meta-device work per step: 91 s for 3,200 steps), and its work and FLOPs
    grow linearly with the length."""
    counts, infos = {}, {}
    for steps in (1, 2, 2_000):
        layer_memo.forget_all()
        with Dispatched() as seen:
            infos[steps] = infer(_one(type_name, shape(steps), **args)).layers[0]
        counts[steps] = seen.ops
    assert counts[2_000] == counts[2]
    for steps in (2, 2_000):
        assert infos[steps].flops == steps * infos[1].flops
        assert infos[steps].work - cost.CALL == steps * (infos[1].work - cost.CALL)
    assert 2_000 in infos[2_000].output_shape


# -- the work estimate ------------------------------------------------------------------------
def test_large_pooling_windows_are_refused_before_anything_runs():
    """MaxPool2d(100, stride=1) on 500×500 held the worker 10 s with 0 FLOPs counted."""
    spec = _one("MaxPool2d", [1, 1, 500, 500], kernel_size=100, stride=1)
    with pytest.raises(LimitError) as info:
        build(spec)
    err = info.value
    assert err.detail["limit_key"] == "max_work" and err.layer == "layer"
    windows = 401 * 401 * 100 * 100
    assert err.detail["actual"] >= cost.WINDOW * windows
    assert "pooling window" in err.message
    ok = infer(_one("MaxPool2d", [1, 1, 500, 500], kernel_size=100))  # stride 100: 25 windows
    assert ok.total_work < DEFAULT_LIMITS.max_work


@pytest.mark.parametrize(
    ("type_name", "shape", "args", "windows"),
    [
        ("MaxPool2d", [1, 2, 9, 9], {"kernel_size": 3, "stride": 1}, 2 * 7 * 7 * 9),
        ("MaxPool2d", [1, 1, 9, 9], {"kernel_size": 2, "dilation": 3}, 3 * 3 * 4),
        ("AvgPool2d", [1, 1, 8, 8], {"kernel_size": 2}, 4 * 4 * 4),
        ("MaxPool1d", [1, 2, 9], {"kernel_size": 3}, 2 * 3 * 3),
        ("MinPool2d", [1, 1, 6, 6], {"kernel_size": 3}, 2 * 2 * 9),
        ("AdaptiveAvgPool2d", [1, 1, 10, 10], {"output_size": 3}, 3 * 3 * 5 * 5),
        ("AdaptiveAvgPool2d", [1, 1, 8, 8], {"output_size": 4}, 4 * 4 * 2 * 2),
    ],
)
def test_pooling_work_counts_every_window_element(type_name, shape, args, windows):
    if type_name not in CATALOG:
        pytest.skip(f"{type_name} is not in the catalog")
    info = infer(_one(type_name, shape, **args)).layers[0]
    assert info.work >= cost.CALL + cost.WINDOW * windows
    assert info.work < cost.CALL + cost.WINDOW * windows + 100 * cost.OP + 10 * math.prod(shape)


def test_adaptive_window_is_torch_largest_window():
    """torch's adaptive pools take [floor(i·n/o), ceil((i+1)·n/o)) for output i."""
    for size_in in range(1, 30):
        for size_out in range(1, size_in + 1):
            widest = max(
                math.ceil((i + 1) * size_in / size_out) - (i * size_in) // size_out
                for i in range(size_out)
            )
            assert cost._adaptive_window(size_in, size_out) >= widest


@pytest.mark.parametrize(
    ("type_name", "args"),
    [("LayerNorm", {"normalized_shape": 64}), ("Softmax", {"dim": -1}), ("ReLU", {})],
)
def test_work_counts_what_flops_do_not(type_name, args):
    if type_name not in CATALOG:
        pytest.skip(f"{type_name} is not in the catalog")
    info = infer(_one(type_name, [32, 64], **args)).layers[0]
    assert info.work >= cost.CALL + cost.OP + cost.ELEMENT * 32 * 64
    with FlopCounterMode(display=False) as counter:
        F.layer_norm(torch.randn(32, 64), (64,))
    assert counter.get_total_flops() == 0  # what FlopCounterMode misses


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_is_well_within_the_work_limit(name):
    work = infer(PRESETS[name].to_spec()).total_work
    assert 0 < work <= DEFAULT_LIMITS.max_work // 10


@pytest.mark.parametrize("type_name", sorted(CATALOG))
def test_every_catalog_example_is_within_the_work_limit(type_name):
    ex = CATALOG[type_name].example
    inputs = {f"x{i}": {"shape": list(s), "dtype": ex.dtype} for i, s in enumerate(ex.inputs)}
    if ex.vocab:
        for inp in inputs.values():
            inp["vocab"] = [f"w{i}" for i in range(ex.vocab)]
    layer = {"name": "layer", "type": type_name, "args": ex.args, "inputs": list(inputs)}
    info = infer({"inputs": inputs, "layers": [layer]})
    assert cost.CALL <= info.total_work <= DEFAULT_LIMITS.max_work // 1000


def test_summed_work_is_the_sum_of_the_layers(lenet):
    inference = infer(lenet)
    assert inference.total_work == sum(info.work for info in inference.layers)
    assert inference.to_dict()["total_work"] == inference.total_work


def test_an_estimate_past_the_job_timeout_is_refused_naming_it(lenet):
    seconds = infer(lenet).total_work / cost.UNITS_PER_SECOND
    with pytest.raises(LimitError) as info:
        infer(lenet, limits=Limits(job_timeout_s=seconds / 2))
    assert info.value.detail["limit_key"] == "job_timeout_s"
    infer(lenet, limits=Limits(job_timeout_s=seconds * 2))


# -- deadlines --------------------------------------------------------------------------------
def test_a_spent_deadline_stops_the_run_after_the_layer_running(lenet):
    model = build(lenet).model
    with pytest.raises(DeadlineExceeded) as info:
        model.run_plan({"x": torch.randn(1, 1, 32, 32)}, deadline=Deadline(-1.0))
    assert info.value.code == "deadline_exceeded" and info.value.layer == "conv1"
    assert info.value.detail["limit_key"] == "job_timeout_s"
    out = model.run_plan({"x": torch.randn(1, 1, 32, 32)}, deadline=Deadline(3600.0))
    assert out.shape == (1, 10)


def test_a_spent_deadline_stops_inference_between_layers(lenet):
    with pytest.raises(DeadlineExceeded) as info:
        infer(lenet, deadline=Deadline(-1.0, "This validation"))
    assert info.value.layer == "conv1" and info.value.message.startswith("This validation")
    assert len(infer(lenet, deadline=Deadline(3600.0)).layers) == len(lenet["layers"])


def test_budget_is_grace_plus_slack_times_estimate_capped_by_the_setting():
    assert cost.budget_seconds(0, 30) == cost.JOB_GRACE_S
    assert cost.budget_seconds(10**9, 30) == cost.JOB_GRACE_S + cost.JOB_SLACK
    assert cost.budget_seconds(10**12, 30) == 30


# -- stacked layers: measured at depth 1 and 2, scaled ----------------------------------------
ENC = {"d_model": "auto", "nhead": 2, "dim_feedforward": 8}
TWO_IN = [[5, 1, 8], [4, 1, 8]]
DEEP = [
    ("LSTM", [[4, 1, 3]], {"input_size": 3, "hidden_size": 5, "num_layers": 4}),
    (
        "GRU",
        [[4, 1, 3]],
        {"input_size": 3, "hidden_size": 4, "num_layers": 3} | {"bidirectional": True},
    ),
    ("RNN", [[4, 3]], {"input_size": 3, "hidden_size": 4, "num_layers": 5}),
    ("TransformerEncoder", [[5, 1, 8]], {**ENC, "num_layers": 4}),
    ("TransformerEncoder", [[5, 1, 8]], {**ENC, "num_layers": 3, "final_norm": True}),
    ("TransformerDecoder", [[5, 1, 8], [4, 1, 8]], {**ENC, "num_layers": 3}),
    (
        "Transformer",
        [[5, 1, 8], [4, 1, 8]],
        {"d_model": 8, "nhead": 2, "dim_feedforward": 8}
        | {"num_encoder_layers": 3, "num_decoder_layers": 4},
    ),
]


def _deep_spec(type_name, shapes, args):
    inputs = {f"x{i}": {"shape": s} for i, s in enumerate(shapes)}
    layer = {"name": "layer", "type": type_name, "args": args, "inputs": list(inputs)}
    return {"inputs": inputs, "layers": [layer]}


@pytest.mark.parametrize(("type_name", "shapes", "args"), DEEP, ids=lambda v: str(v)[:24])
@pytest.mark.filterwarnings("ignore:enable_nested_tensor is True")
def test_stacked_layers_are_inferred_as_torch_builds_them(type_name, shapes, args):
    layer_memo.forget_all()
    info = infer(_deep_spec(type_name, shapes, args)).layers[0]
    entry = CATALOG[type_name]
    full = entry.validate_args("layer", {k: (8 if v == "auto" else v) for k, v in args.items()})
    module = entry.construct(full).eval()
    with torch.no_grad():
        out = entry.forward(module, [torch.randn(s) for s in shapes])
    main, extras = entry.split(out)
    assert info.params == sum(p.numel() for p in module.parameters())
    assert info.output_shape == list(main.shape)
    assert info.extras == {k: list(v.shape) for k, v in extras.items()}
    with torch.device("meta"):
        meta = entry.construct(full).eval()
    with FlopCounterMode(display=False) as counter:
        entry.forward(meta, [torch.empty(s, device="meta") for s in shapes])
    assert info.flops == counter.get_total_flops()


@pytest.mark.filterwarnings("ignore:enable_nested_tensor is True")
def test_a_500_layer_stack_is_inferred_with_as_many_operators_as_a_2_layer_one():
    """A TransformerDecoder with 500 layers took 26 s to infer (every copy built and run)."""
    counts, infos = {}, {}
    for depth in (2, 500):
        layer_memo.forget_all()
        spec = _deep_spec(
            "TransformerDecoder", [[5, 1, 8], [4, 1, 8]], {**ENC, "num_layers": depth}
        )
        with Dispatched() as seen:
            infos[depth] = infer(spec).layers[0]
        counts[depth] = seen.ops
    assert counts[500] == counts[2]
    one_more = (
        infos[2].params
        - infer(_deep_spec("TransformerDecoder", [[5, 1, 8], [4, 1, 8]], {**ENC, "num_layers": 1}))
        .layers[0]
        .params
    )
    assert infos[500].params == infos[2].params + 498 * one_more
