"""Training is plain torch: the Trainer equals hand-written torch loops bit for bit."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load as st_load
from torch import nn

from models.build import build
from models.datasets import DataRoots, load_split
from models.limits import DEFAULT_LIMITS
from models.presets import PRESETS
from models.training import Trainer, check_training, log_steps
from tests.models.oracles import LeNet, LSTMTagger

ROOTS = DataRoots()
needs_fmnist = pytest.mark.skipif(
    not (Path(ROOTS.fashion_mnist_dir) / "train-images-idx3-ubyte.gz").is_file(),
    reason="dataset-fashion-mnist is not installed",
)

DIGITS_MLP: dict[str, Any] = {
    "name": "DigitsMLP",
    "inputs": {"x": {"shape": [1, 1, 8, 8]}},
    "layers": [
        {"name": "flatten", "type": "Flatten"},
        {"name": "fc1", "type": "Linear", "args": {"in_features": 64, "out_features": 32}},
        {"name": "relu", "type": "ReLU"},
        {"name": "dropout", "type": "Dropout", "args": {"p": 0.2}},
        {"name": "fc2", "type": "Linear", "args": {"in_features": 32, "out_features": 10}},
    ],
}
MLP_CONFIG = {
    "dataset": "digits",
    "transforms": [{"kind": "scale"}],
    "optimizer": {"name": "sgd", "args": {"lr": 0.1, "momentum": 0.9, "nesterov": True}},
    "schedule": {"name": "step", "args": {"step_size": 30, "gamma": 0.5}},
    "batch_size": 32,
    "steps": 120,
    "seed": 7,
    "grad_clip": 0.5,
    "eval_every": 50,
    "record": {"histograms_every": 40},
}


class PlainMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(64, 32)
        self.relu = nn.ReLU()
        self.dropout = nn.Dropout(0.2)
        self.fc2 = nn.Linear(32, 10)

    def forward(self, x):
        return self.fc2(self.dropout(self.relu(self.fc1(self.flatten(x)))))


def _train(spec, config, *, seed=0, slices=None, between=None, seconds=math.inf):
    model = build(spec, seed=seed).model
    start = {k: v.clone() for k, v in model.state_dict().items()}
    plan = check_training(spec, config, ROOTS, DEFAULT_LIMITS)
    trainer = Trainer(model, plan, config, "cpu", ROOTS)
    events, checkpoints = [], []
    while not trainer.done:
        result = trainer.advance(seconds, max_steps=slices)
        events += result.events
        checkpoints += result.checkpoints
        if between is not None:
            between()
    assert result.done
    return model, start, events, checkpoints, plan


def _plain_mlp_loop(start: dict) -> nn.Module:
    """The tutorials' loop, written out: what the Trainer must equal."""
    model = PlainMLP()
    model.load_state_dict(start)
    train = load_split("digits", "train")
    torch.manual_seed(7)
    order = torch.Generator().manual_seed(7)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=30, gamma=0.5)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    step = 0
    while step < 120:
        perm = torch.randperm(len(train), generator=order)
        for i in range(0, len(train), 32):
            if step == 120:
                break
            idx = perm[i : i + 32]
            x, y = train.x[idx].float() / 16.0, train.y[idx]
            optimizer.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 0.5)
            optimizer.step()
            scheduler.step()
            step += 1
    return model


def _random_work() -> None:
    """Other students' torch work between slices: it must not change this training."""
    torch.manual_seed(123)
    torch.randn(1000)
    nn.Dropout(0.5).train()(torch.ones(64))


def _assert_same_weights(a: nn.Module, b: nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


def test_mlp_on_digits_equals_the_plain_loop_in_one_go_and_in_slices() -> None:
    model, start, events, ckpts, plan = _train(DIGITS_MLP, MLP_CONFIG, seed=3)
    with torch.random.fork_rng(devices=[]):
        plain = _plain_mlp_loop(start)
    _assert_same_weights(model, plain)
    assert any(not torch.equal(model.state_dict()[k], start[k]) for k in start)

    state = torch.get_rng_state()
    sliced, _, sliced_events, sliced_ckpts, _ = _train(
        DIGITS_MLP, MLP_CONFIG, seed=3, slices=7, between=_random_work
    )
    _assert_same_weights(sliced, plain)
    assert sliced_events == events
    assert sliced_ckpts == ckpts
    assert [s for s, _ in ckpts] == plan.checkpoint_steps == [0, 1, 2, 5, 10, 20, 50, 100, 120]
    torch.set_rng_state(state)

    steps = [e for e in events if e["kind"] == "step"]
    assert [e["step"] for e in steps] == list(range(1, 121))
    assert [e["lr"] for e in steps[28:32]] == [0.1, 0.1, 0.05, 0.05]
    assert "histograms" in steps[39] and "histograms" not in steps[38]
    assert set(steps[9]["grad_flow"]) == {"fc1", "fc2"} and "grad_flow" not in steps[8]
    evals = [e for e in events if e["kind"] == "eval"]
    assert [e["step"] for e in evals] == [50, 100, 120]
    assert evals[-1]["test_accuracy"] > 0.8
    assert sum(map(sum, evals[-1]["confusion"])) == 360


def test_evaluations_are_cut_into_chunks_across_slices(monkeypatch) -> None:
    config = {**MLP_CONFIG, "steps": 30, "eval_every": 10}
    monkeypatch.setattr("models.training.trainer.EVAL_CHUNK", 50)  # 360 test digits: 8 chunks
    events = _train(DIGITS_MLP, config, seed=3)[2]
    model = build(DIGITS_MLP, seed=3).model
    plan = check_training(DIGITS_MLP, config, ROOTS, DEFAULT_LIMITS)
    trainer = Trainer(model, plan, config, "cpu", ROOTS)
    sliced, sizes = [], []
    while not trainer.done:
        result = trainer.advance(0.0)  # one step, or one chunk of an evaluation, per slice
        sliced += result.events
        sizes.append(len(result.events))
        _random_work()
    assert sliced == events
    # of each evaluation's 8 chunks, the first goes with its step, the last reports: 6 silent
    assert sizes.count(0) == 3 * 6


def test_checkpoints_hold_the_weights_of_their_step() -> None:
    model, start, _, ckpts, _ = _train(DIGITS_MLP, {**MLP_CONFIG, "steps": 5}, seed=3)
    first, last = dict(ckpts)[0], dict(ckpts)[5]
    for k, v in st_load(first).items():
        assert torch.equal(v, start[k])
    for k, v in st_load(last).items():
        assert torch.equal(v, model.state_dict()[k])


def test_frozen_parameters_stay_fixed() -> None:
    model = build(DIGITS_MLP, seed=3).model
    model.fc1.weight.requires_grad_(False)
    frozen = model.fc1.weight.clone()
    config = {
        **MLP_CONFIG,
        "steps": 20,
        "optimizer": {"name": "adam", "args": {"weight_decay": 0.1}},
    }
    plan = check_training(DIGITS_MLP, config, ROOTS, DEFAULT_LIMITS)
    trainer = Trainer(model, plan, config, "cpu", ROOTS)
    events = trainer.advance(math.inf).events
    assert torch.equal(model.fc1.weight, frozen)
    assert not torch.equal(model.fc1.bias, build(DIGITS_MLP, seed=3).model.fc1.bias)
    flow = next(e["grad_flow"] for e in events if "grad_flow" in e)
    assert flow["fc1"]["grad_norm"] is not None  # the bias still learns


@needs_fmnist
def test_lenet5_on_fashion_mnist_equals_the_plain_loop() -> None:
    spec = PRESETS["lenet5"].to_spec()
    config = {
        "dataset": "fashion_mnist",
        "transforms": [{"kind": "pad", "size": 32}, {"kind": "scale"},
                       {"kind": "normalize", "mean": 0.2860, "std": 0.3530}],
        "optimizer": {"name": "adam", "args": {"lr": 0.002}},
        "schedule": {"name": "cosine"},
        "batch_size": 16,
        "steps": 150,
        "seed": 1,
        "eval_every": 1000,
    }  # fmt: skip
    model, start, _, _, _ = _train(spec, config, slices=40, between=_random_work)

    plain = LeNet()
    plain.load_state_dict(start)
    train = load_split("fashion_mnist", "train")
    torch.manual_seed(1)
    order = torch.Generator().manual_seed(1)
    optimizer = torch.optim.Adam(plain.parameters(), lr=0.002)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=150)
    loss_fn = nn.CrossEntropyLoss()
    perm = torch.randperm(len(train), generator=order)
    for step in range(150):
        idx = perm[step * 16 : step * 16 + 16]
        x = (F.pad(train.x[idx].float(), (2, 2, 2, 2)) / 255.0 - 0.2860) / 0.3530
        optimizer.zero_grad()
        loss = loss_fn(plain(x), train.y[idx])
        loss.backward()
        optimizer.step()
        scheduler.step()
    _assert_same_weights(model, plain)


def test_lstm_tagger_trains_like_the_sequence_models_tutorial() -> None:
    spec = PRESETS["lstm_tagger"].to_spec()
    config = {
        "dataset": "pos_tagging",
        "loss": {"name": "NLLLoss"},
        "optimizer": {"name": "sgd", "args": {"lr": 0.1}},
        "batch_size": 1,
        "epochs": 300,
        "shuffle": False,
        "seed": 1,
        "eval_every": 600,
    }
    model, start, events, _, _ = _train(spec, config, seed=1, slices=97, between=_random_work)

    # The tutorial, as written (torch.manual_seed(1), then the class, then 300 epochs)
    from models.tagging_data import TAGGER_VOCAB, TAGS, TRAINING_DATA

    torch.manual_seed(1)
    plain = LSTMTagger(6, 6, len(TAGGER_VOCAB), len(TAGS))
    for k, v in plain.state_dict().items():
        assert torch.equal(v, start[k])
    word_to_ix = {w: i for i, w in enumerate(TAGGER_VOCAB)}
    tag_to_ix = {t: i for i, t in enumerate(TAGS)}

    def prepare_sequence(seq, to_ix):
        return torch.tensor([to_ix[w] for w in seq], dtype=torch.long)

    loss_function = nn.NLLLoss()
    optimizer = torch.optim.SGD(plain.parameters(), lr=0.1)
    for _epoch in range(300):
        for sentence, tags in TRAINING_DATA:
            plain.zero_grad()
            sentence_in = prepare_sequence(sentence, word_to_ix)
            targets = prepare_sequence(tags, tag_to_ix)
            tag_scores = plain(sentence_in)
            loss = loss_function(tag_scores, targets)
            loss.backward()
            optimizer.step()
    _assert_same_weights(model, plain)
    with torch.no_grad():
        inputs = prepare_sequence(TRAINING_DATA[0][0], word_to_ix)
        assert torch.equal(model(inputs), plain(inputs))
        assert model(inputs).argmax(1).tolist() == [0, 1, 2, 0, 1]  # DET NN V DET NN
    assert events[-1]["kind"] == "eval" and events[-1]["test_accuracy"] == 1.0


def test_the_plan_counts_steps_and_cost() -> None:
    plan = check_training(
        DIGITS_MLP, {**MLP_CONFIG, "steps": None, "epochs": 2}, ROOTS, DEFAULT_LIMITS
    )
    assert plan.steps_per_epoch == math.ceil(1437 / 32) == 45
    assert plan.total_steps == 90 and plan.eval_every == 50
    fwd = plan.cost["forward_flops_per_step"]
    assert fwd == 2 * 32 * (64 * 32 + 32 * 10)  # torch's FlopCounterMode: 2 per multiply-add
    assert plan.cost["total_flops"] == 3 * fwd * 90 + plan.cost["eval_flops"]


def test_log_spaced_checkpoint_steps() -> None:
    assert log_steps(1, 20) == [0, 1]
    assert log_steps(7, 20) == [0, 1, 2, 5, 7]
    assert log_steps(100, 20) == [0, 1, 2, 5, 10, 20, 50, 100]
    for total in (1, 3, 999, 10**6, 10**7):
        for most in (2, 3, 5, 20):
            steps = log_steps(total, most)
            assert steps[0] == 0 and steps[-1] == total and len(steps) <= most
            assert steps == sorted(set(steps))


def _run_script(tmp_path: Path, source: str, init: bytes) -> dict[str, torch.Tensor]:
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    (tmp_path / "train.py").write_text(source)
    (tmp_path / "init.safetensors").write_bytes(init)
    out = tmp_path / "out.safetensors"
    subprocess.run(
        [sys.executable, str(tmp_path / "train.py"), str(tmp_path / "init.safetensors"), str(out)],
        check=True,
        cwd=root,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        timeout=300,
    )
    return st_load(out.read_bytes())


@pytest.mark.slow
def test_the_exported_script_reproduces_the_training(tmp_path: Path) -> None:
    from models.training.script import training_script

    model = build(DIGITS_MLP, seed=3).model
    model.fc1.bias.requires_grad_(False)
    config = {**MLP_CONFIG, "loss": {"name": "CrossEntropyLoss", "args": {"label_smoothing": 0.1}}}
    plan = check_training(DIGITS_MLP, config, ROOTS, DEFAULT_LIMITS)
    trainer = Trainer(model, plan, config, "cpu", ROOTS)
    init = trainer.advance(math.inf, max_steps=0).checkpoints[0][1]
    while not trainer.done:
        trainer.advance(math.inf)
    source = training_script(DIGITS_MLP, config, frozen=["fc1.bias"])
    assert "requires_grad_(False)" in source and "label_smoothing=0.1" in source
    got = _run_script(tmp_path, source, init)
    for k, v in model.state_dict().items():
        assert torch.equal(got[k], v), k

    spec = PRESETS["lstm_tagger"].to_spec()
    config = {
        "dataset": "pos_tagging",
        "loss": {"name": "NLLLoss"},
        "optimizer": {"name": "adam", "args": {"lr": 0.05}},
        "schedule": {"name": "onecycle"},
        "batch_size": 1,
        "epochs": 20,
    }
    model, _, _, ckpts, _ = _train(spec, config, seed=1)
    got = _run_script(tmp_path, training_script(spec, config), ckpts[0][1])
    for k, v in model.state_dict().items():
        assert torch.equal(got[k], v), k


class PlainPoints(nn.Module):
    def __init__(self, outputs: int):
        super().__init__()
        self.fc1 = nn.Linear(2, 8)
        self.relu = nn.Tanh()
        self.fc2 = nn.Linear(8, outputs)

    def forward(self, x):
        return self.fc2(self.relu(self.fc1(x)))


@pytest.mark.parametrize(
    ("dataset", "loss", "outputs", "target"),
    [
        ("plane", "MSELoss", 1, lambda y: y),
        ("gauss", "BCEWithLogitsLoss", 1, lambda y: y.float()[:, None]),
        ("xor", "MSELoss", 2, lambda y: F.one_hot(y, 2).float()),
        ("spiral", "HuberLoss", 2, lambda y: F.one_hot(y, 2).float()),
    ],
)
def test_every_kind_of_target_equals_the_plain_loop(dataset, loss, outputs, target) -> None:
    spec = {
        "name": "Points",
        "inputs": {"x": {"shape": [1, 2]}},
        "layers": [
            {"name": "fc1", "type": "Linear", "args": {"in_features": 2, "out_features": 8}},
            {"name": "relu", "type": "Tanh"},
            {"name": "fc2", "type": "Linear", "args": {"in_features": 8, "out_features": outputs}},
        ],
    }
    params = {"n_train": 100, "n_test": 50, "noise": 0.1, "seed": 2}
    config = {
        "dataset": dataset,
        "dataset_params": params,
        "transforms": [{"kind": "normalize", "mean": 0.5, "std": 3.0}],
        "loss": {"name": loss},
        "optimizer": {"name": "rmsprop", "args": {"lr": 0.01, "momentum": 0.5}},
        "schedule": {"name": "onecycle"},
        "batch_size": 10,
        "epochs": 3,
        "seed": 5,
    }
    model, start, events, _, _ = _train(spec, config, slices=4, between=_random_work)
    plain = PlainPoints(outputs)
    plain.load_state_dict(start)
    train = load_split(dataset, "train", params=params)
    torch.manual_seed(5)
    order = torch.Generator().manual_seed(5)
    optimizer = torch.optim.RMSprop(plain.parameters(), lr=0.01, momentum=0.5)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.01, total_steps=30)
    loss_fn = getattr(nn, loss)()
    for _epoch in range(3):
        perm = torch.randperm(100, generator=order)
        for i in range(0, 100, 10):
            idx = perm[i : i + 10]
            optimizer.zero_grad()
            out = plain((train.x[idx] - 0.5) / 3.0)
            loss_fn(out, target(train.y[idx])).backward()
            optimizer.step()
            scheduler.step()
    _assert_same_weights(model, plain)
    final = events[-1]
    assert final["kind"] == "eval" and final["step"] == 30
    assert ("test_accuracy" in final) == (dataset != "plane")


def test_a_diverging_run_reports_none_not_nan() -> None:
    import json

    spec = {
        "name": "Plane",
        "inputs": {"x": {"shape": [1, 2]}},
        "layers": [{"name": "fc", "type": "Linear", "args": {"in_features": 2, "out_features": 1}}],
    }
    config = {"dataset": "plane", "loss": {"name": "MSELoss"}, "batch_size": 10, "steps": 60,
              "optimizer": {"name": "sgd", "args": {"lr": 10.0}},
              "record": {"histograms_every": 20}}  # fmt: skip
    _, _, events, _, _ = _train(spec, config)
    json.dumps(events, allow_nan=False)  # strict JSON: no NaN anywhere
    values = [e.get("loss", e.get("test_loss")) for e in events]
    assert None in values and all(v is None or math.isfinite(v) for v in values)
