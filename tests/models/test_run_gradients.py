"""models/run_gradients.py: a probe that asks for gradients against plain torch.

The oracle is the same preset built with the same seed, called as ``model(x)`` with forward
hooks registered by hand on every layer and ``torch.autograd.grad`` of the same scalar: the
probe's gradients (one forward, one backward) must be equal bit for bit, and its activations
equal to a probe without gradients.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from preset_samples import built, sample

from models.attribution import AttributionLimits
from models.build import build
from models.errors import LimitError, SpecError
from models.gradients import LossTarget, objective
from models.presets import PRESETS
from models.probe import describe, probe
from models.run_gradients import RunGradients, check_cost
from models.tensors import decode


def by_hand(model, inputs: dict, scalar) -> tuple[dict, dict]:
    """Hooks on every top-level layer, ``model(**inputs)``, one ``autograd.grad``."""
    kept: dict[str, torch.Tensor] = {}
    hooks = [
        module.register_forward_hook(
            lambda _m, _a, o, n=name: kept.__setitem__(n, o[0] if isinstance(o, tuple) else o)
        )
        for name, module in model.named_children()
    ]
    try:
        out = model(*inputs.values())
    finally:
        for h in hooks:
            h.remove()
    leaves = {n: t for n, t in inputs.items() if t.requires_grad}
    wrt = [*leaves.values(), *kept.values()]
    grads = torch.autograd.grad(scalar(out), wrt, allow_unused=True)
    names = [*leaves, *kept]
    return (
        {n: g for n, g in zip(names, grads, strict=True) if n in leaves},
        {n: g for n, g in zip(names, grads, strict=True) if n in kept},
    )


@pytest.mark.parametrize("preset", ["lenet5", "mlp"])
@pytest.mark.parametrize("target", [3, "predicted"])
def test_probe_gradients_equal_hooks_and_autograd(preset, target):
    b, x = built(preset), sample(preset)
    res = probe(b.model, {"x": x}, gradients=RunGradients(target=target))
    m = build(PRESETS[preset].spec, seed=0).model.eval()
    cls = 3 if target == 3 else int(m(x)[0].argmax())
    inputs, layers = by_hand(m, {"x": x.clone().requires_grad_()}, lambda o: o[..., cls].sum())
    g = res.gradients
    assert g.target == cls
    assert torch.equal(g.inputs["x"], inputs["x"])
    assert set(g.layers) == set(layers) == set(res.activations)
    for name, grad in layers.items():
        assert torch.equal(g.layers[name], grad), name
    assert g.objective == float(m(x).detach()[0, cls])
    # the activations are those of a run without gradients
    plain = probe(b.model, {"x": x})
    for name, act in plain.activations.items():
        assert torch.equal(res.activations[name].tensor, act.tensor)
    assert all(p.grad is None for p in b.model.parameters())  # nothing accumulated


def test_probe_gradients_of_a_loss():
    b, x = built("lenet5"), sample("lenet5", 2)
    res = probe(b.model, {"x": x}, gradients=RunGradients(loss=LossTarget(labels=[7])))
    m = build(PRESETS["lenet5"].spec, seed=0).model.eval()
    xs = {"x": x.clone().requires_grad_()}
    inputs, layers = by_hand(m, xs, lambda o: F.cross_entropy(o, torch.tensor([7])))
    assert res.gradients.target is None
    assert torch.equal(res.gradients.inputs["x"], inputs["x"])
    for name, grad in layers.items():
        assert torch.equal(res.gradients.layers[name], grad), name


def test_tagger_gradients_at_every_layer_not_the_token_ids():
    b = built("lstm_tagger")
    ids = torch.tensor([0, 1, 2, 3, 4])
    res = probe(b.model, {"sentence": ids}, gradients=RunGradients(target=1))
    m = build(PRESETS["lstm_tagger"].spec, seed=0).model.eval()
    _, layers = by_hand(m, {"sentence": ids}, lambda o: o[..., 1].sum())
    assert res.gradients.inputs == {}
    assert set(res.gradients.layers) == set(layers)
    for name, grad in layers.items():
        assert torch.equal(res.gradients.layers[name], grad), name


def test_train_mode_seeded_dropout_same_forward():
    """The gradient is taken through the very dropout masks the activations show."""
    b, x = built("mlp"), sample("mlp")
    res = probe(b.model, {"x": x}, mode="train", seed=5, gradients=RunGradients(target=0))
    plain = probe(b.model, {"x": x}, mode="train", seed=5)
    for name, act in plain.activations.items():
        assert torch.equal(res.activations[name].tensor, act.tensor)
    m = build(PRESETS["mlp"].spec, seed=0).model.train()
    with torch.random.fork_rng():
        torch.manual_seed(5)
        inputs, _ = by_hand(m, {"x": x.clone().requires_grad_()}, lambda o: o[..., 0].sum())
    assert torch.equal(res.gradients.inputs["x"], inputs["x"])


def test_described_gradient_is_encoded_like_its_activation():
    from models.run_gradients import describe_gradients

    b, x = built("lenet5"), sample("lenet5")
    res = probe(b.model, {"x": x}, gradients=RunGradients(target=2))
    out = describe(res, encoding="f32")
    out["inputs"] = {"x": {}}
    describe_gradients(out, res.gradients, encoding="f32")
    for name, grad in res.gradients.layers.items():
        entry = out["activations"][name]["gradient"]
        assert torch.equal(decode(entry["tensor"], max_elements=10**6), grad)
        assert entry["stats"]["max"] == pytest.approx(float(grad.max()))
    assert torch.equal(
        decode(out["inputs"]["x"]["gradient"]["tensor"], max_elements=10**6),
        res.gradients.inputs["x"],
    )
    assert out["gradients"]["target"] == 2


def test_bad_target_and_cost():
    b, x = built("lenet5"), sample("lenet5")
    with pytest.raises(SpecError) as err:
        probe(b.model, {"x": x}, gradients=RunGradients(target=10))
    assert err.value.code == "invalid_target"
    flops, nbytes = 1000, 4096
    check_cost(
        flops, nbytes, AttributionLimits(max_flops=2 * flops, max_activation_bytes=2 * nbytes)
    )
    with pytest.raises(LimitError):  # the backward counts: twice the forward's FLOPs
        check_cost(flops, nbytes, AttributionLimits(max_flops=2 * flops - 1))
    with pytest.raises(LimitError) as err:  # and the gradients: twice the activations
        check_cost(flops, nbytes, AttributionLimits(max_activation_bytes=2 * nbytes - 1))
    assert err.value.detail["limit_key"] == "max_activation_bytes"  # the server names it


@pytest.mark.parametrize(
    ("out", "loss"),
    [
        (torch.tensor([[1, 2]]), None),  # integers (no spec makes them today): no gradient
        (torch.tensor([[1, 2]]), LossTarget(labels=[0])),
        (torch.empty(0, 3), None),
    ],
)
def test_outputs_without_a_gradient_are_refused_not_crashed(out, loss):
    with pytest.raises(SpecError) as err:
        objective(out, None, loss)
    assert err.value.code == "no_gradient"


def test_a_scalar_output_is_its_own_objective():
    """A 0-d output (a loss layer's) is differentiated as it is."""
    x = torch.tensor(2.0, requires_grad=True)
    value, target = objective(x * 3, None, None)
    assert target == 0 and torch.autograd.grad(value, x)[0] == 3
