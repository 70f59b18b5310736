"""models/attribution.py, interventions.py, featvis.py against Captum and plain torch.

Captum is the oracle for attribution: the same class called directly on the same model
(``build(spec, seed=0)``, called as ``model(x)``) and input must give the same tensor, bit
for bit on the CPU. Gradients are checked against ``retain_grad``/``backward`` by hand,
interventions against the same edit written as a forward hook by hand, feature
visualization against the same loop written out.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from captum.attr import (
    IntegratedGradients,
    LayerAttribution,
    LayerGradCam,
    NoiseTunnel,
    Occlusion,
    Saliency,
)
from preset_samples import built, sample

from models.attribution import AttributionLimits, AttributionOptions, attribute
from models.build import build
from models.errors import LimitError, SpecError
from models.featvis import FeatVisOptions, total_variation, visualize
from models.gradients import LossTarget, gradients
from models.interventions import Intervention, intervened, patch_sources
from models.presets import PRESETS


def leaf(x: torch.Tensor) -> torch.Tensor:
    return x.clone().requires_grad_()


def captum_oracle(model, x: torch.Tensor, opts: AttributionOptions, args: dict) -> torch.Tensor:
    """The same method written directly with Captum on ``model``."""
    m, t = opts.method, args["target"]
    if m == "saliency":
        return Saliency(model).attribute(leaf(x), target=t, abs=True)
    if m == "integrated_gradients":
        ig = IntegratedGradients(model)
        return ig.attribute(
            leaf(x), baselines=opts.baseline, target=t, n_steps=opts.steps,
            internal_batch_size=args["internal_batch_size"], return_convergence_delta=True,
        )[0]  # fmt: skip
    if m == "smoothgrad":
        torch.manual_seed(opts.seed)
        return NoiseTunnel(Saliency(model)).attribute(
            leaf(x), nt_type="smoothgrad", nt_samples=opts.samples, stdevs=opts.stdev,
            nt_samples_batch_size=args["nt_samples_batch_size"], target=t, abs=True,
        )  # fmt: skip
    if m == "gradcam":
        raw = LayerGradCam(model, getattr(model, opts.layer)).attribute(
            leaf(x), target=t, relu_attributions=True
        )
        return LayerAttribution.interpolate(raw, tuple(x.shape[-2:]), "bilinear")
    lead = x.shape[1 : x.ndim - len(opts.window)]
    return Occlusion(model).attribute(
        x, sliding_window_shapes=(*lead, *opts.window), strides=(*lead, *opts.stride),
        baselines=opts.baseline, target=t, perturbations_per_eval=args["perturbations_per_eval"],
    )  # fmt: skip


CASES = [
    ("lenet5", {"method": "saliency"}),
    ("lenet5", {"method": "integrated_gradients", "steps": 24, "baseline": 0.0}),
    ("lenet5", {"method": "integrated_gradients", "steps": 7, "baseline": -0.5, "target": 3}),
    ("lenet5", {"method": "smoothgrad", "samples": 6, "stdev": 0.3, "seed": 5}),
    ("lenet5", {"method": "gradcam", "layer": "conv2", "target": 2}),
    ("lenet5", {"method": "gradcam", "layer": "relu1"}),
    ("lenet5", {"method": "occlusion", "window": [6, 6], "stride": [3, 3]}),
    ("mlp", {"method": "saliency", "target": 7}),
    ("mlp", {"method": "integrated_gradients", "steps": 16}),
    ("mlp", {"method": "smoothgrad", "samples": 4}),
    ("mlp", {"method": "occlusion", "window": [7, 7], "stride": [7, 7], "baseline": 0.5}),
]


@pytest.mark.parametrize(("preset", "opts"), CASES, ids=lambda v: str(v))
def test_attribution_equals_captum_called_directly(preset, opts):
    b, x = built(preset), sample(preset)
    options = AttributionOptions(**opts)
    res = attribute(b.model, b.inference, {"x": x}, options)
    with torch.no_grad():
        out = b.model(x)
    assert res["target"] == opts.get("target", int(out[0].argmax()))
    want = captum_oracle(b.model, x, options, res["captum_args"])
    assert res["attribution"].shape == x.shape
    assert torch.equal(res["attribution"], want.detach())
    assert torch.equal(res["output"], out)


@pytest.mark.parametrize(
    ("opts", "forwards"),
    [
        ({"method": "saliency", "target": 3}, 1),
        ({"method": "saliency"}, 2),  # the predicted class is needed before Captum runs
        ({"method": "gradcam", "layer": "conv2", "target": 3}, 1),
        ({"method": "integrated_gradients", "steps": 4, "target": 3}, 3),  # path, delta
        ({"method": "smoothgrad", "samples": 3, "target": 3}, 2),  # one batch, then x itself
    ],
)
def test_the_output_comes_from_captums_own_forward(opts, forwards):
    """No forward pass of its own just for the output: Captum's pass on the input gives it."""
    b, x = built("lenet5"), sample("lenet5")
    calls = []
    hook = b.model.conv1.register_forward_hook(lambda *_: calls.append(1))
    try:
        attribute(b.model, b.inference, {"x": x}, AttributionOptions(**opts))
    finally:
        hook.remove()
    assert len(calls) == forwards


def test_gradcam_map_is_the_layers_size():
    b, x = built("lenet5"), sample("lenet5")
    res = attribute(
        b.model, b.inference, {"x": x}, AttributionOptions(method="gradcam", layer="conv2")
    )
    assert res["map"].shape == (1, 1, 12, 12)


def test_occlusion_counts_its_windows():
    b, x = built("lenet5"), sample("lenet5")
    opts = AttributionOptions(method="occlusion", window=[4, 4], stride=[2, 2])
    assert attribute(b.model, b.inference, {"x": x}, opts)["passes"] == 15 * 15 + 1


@pytest.mark.parametrize(
    ("opts", "code", "phrase"),
    [
        ({"method": "gradcam", "layer": "fc1"}, "gradcam_needs_conv_layer", "conv1, relu1"),
        ({"method": "gradcam", "layer": "nope"}, "unknown_layer", "no layer 'nope'"),
        ({"method": "gradcam"}, "invalid_layer", "needs a layer"),
        ({"method": "integrated_gradients", "steps": 2000}, "limit_exceeded", "fewer steps"),
        ({"method": "smoothgrad", "samples": 5000}, "limit_exceeded", "fewer samples"),
        ({"method": "occlusion", "window": [1, 1], "stride": [1, 1]}, "limit_exceeded", "window"),
        ({"method": "occlusion", "window": [40, 4]}, "invalid_occlusion", "window size"),
        ({"method": "saliency", "target": 10}, "invalid_target", "10 classes"),
    ],
)
def test_bad_requests_are_refused_before_any_pass(opts, code, phrase):
    b, x = built("lenet5"), sample("lenet5")
    calls = []
    b.model.conv1.register_forward_hook(lambda *a: calls.append(1))
    with pytest.raises(SpecError) as err:
        attribute(b.model, b.inference, {"x": x}, AttributionOptions(**opts))
    assert err.value.code == code
    assert phrase in err.value.message
    if code != "invalid_target":
        assert calls == []


def test_flops_limit_counts_passes_times_forward_cost():
    b, x = built("lenet5"), sample("lenet5")
    limits = AttributionLimits(max_flops=b.inference.total_flops * 10)
    opts = AttributionOptions(method="integrated_gradients", steps=9)
    with pytest.raises(LimitError) as err:
        attribute(b.model, b.inference, {"x": x}, opts, limits)
    assert err.value.detail["limit_key"] == "max_attribution_flops"
    attribute(b.model, b.inference, {"x": x}, opts.model_copy(update={"steps": 8}), limits)


def test_token_input_is_refused_for_captum_methods():
    b = build(PRESETS["lstm_tagger"].spec, seed=0)
    with pytest.raises(SpecError) as err:
        attribute(b.model, b.inference, {"sentence": torch.tensor([0, 1, 2, 3, 4])},
                  AttributionOptions(method="saliency"))  # fmt: skip
    assert err.value.code == "attribution_needs_float_input"


# -- gradients -------------------------------------------------------------------------------
def test_gradients_equal_backward_by_hand_lenet():
    b, x = built("lenet5"), sample("lenet5")
    res = gradients(b.model, {"x": x}, layers=["conv1", "fc2"], params=True, target=4)
    m = build(PRESETS["lenet5"].spec, seed=0).model.eval()
    xh = leaf(x)
    acts = {}
    hooks = [
        getattr(m, n).register_forward_hook(lambda _m, _a, o, n=n: acts.__setitem__(n, o))
        for n in ("conv1", "fc2")
    ]
    out = m(xh)
    for a in acts.values():
        a.retain_grad()
    out[..., 4].sum().backward()
    for h in hooks:
        h.remove()
    assert torch.equal(res["inputs"]["x"], xh.grad)
    for n in ("conv1", "fc2"):
        assert torch.equal(res["activations"][n], acts[n].grad)
    for n, p in m.named_parameters():
        assert torch.equal(res["parameters"][n], p.grad)
    assert all(p.grad is None for p in b.model.parameters())  # nothing accumulated


def test_gradients_of_a_loss_mlp():
    b, x = built("mlp"), sample("mlp")
    res = gradients(b.model, {"x": x}, layers=[], loss=LossTarget(labels=[3]))
    xh = leaf(x)
    F.cross_entropy(b.model(xh), torch.tensor([3])).backward()
    assert torch.equal(res["inputs"]["x"], xh.grad)
    assert res["target"] is None


def test_tagger_gradients_on_embeddings():
    b = build(PRESETS["lstm_tagger"].spec, seed=0)
    b.model.eval()
    ids = torch.tensor([0, 1, 2, 3, 4])
    res = gradients(b.model, {"sentence": ids}, layers=["word_embeddings"], target=1)
    m = build(PRESETS["lstm_tagger"].spec, seed=0).model.eval()
    kept = {}
    m.word_embeddings.register_forward_hook(lambda _m, _a, o: kept.setdefault("e", o))
    out = m(ids)
    kept["e"].retain_grad()
    out[..., 1].sum().backward()
    assert res["inputs"] == {}
    assert torch.equal(res["activations"]["word_embeddings"], kept["e"].grad)


def test_gradients_unknown_layer_and_labels():
    b, x = built("lenet5"), sample("lenet5")
    with pytest.raises(SpecError, match="no layer 'nope'"):
        gradients(b.model, {"x": x}, layers=["nope"])
    with pytest.raises(SpecError, match="1 labels"):
        gradients(b.model, {"x": x}, layers=[], loss=LossTarget(labels=[1, 2]))


# -- interventions ---------------------------------------------------------------------------
def by_hand(model, x, layer, edit):
    """The model's output with ``edit(output)`` as a forward hook on ``layer``."""
    handle = getattr(model, layer).register_forward_hook(lambda _m, _a, o: edit(o))
    try:
        with torch.no_grad():
            return model(x)
    finally:
        handle.remove()


def _zero(o):
    o = o.clone()
    o[:, [1, 4]] = 0
    return o


def _mean(o):
    o = o.clone()
    o[:, [2]] = o[:, [2]].mean(dim=(2, 3), keepdim=True).expand_as(o[:, [2]])
    return o


def _scale(o):
    o = o.clone()
    o[:, [0, 3]] *= 2.5
    return o


def _add(o):
    o = o.clone()
    o[:, [5, 7]] += torch.tensor([1.0, -2.0]).reshape(1, 2)
    return o


def _replace(o):
    o = o.clone()
    o[:, [0]] = torch.full((1, 1, 6, 6), 0.25)
    return o


INTERVENTIONS = [
    ("lenet5", {"layer": "conv1", "op": "zero", "channels": [1, 4]}, _zero),
    ("lenet5", {"layer": "relu2", "op": "mean", "channels": [2]}, _mean),
    ("lenet5", {"layer": "conv2", "op": "scale", "channels": [0, 3], "factor": 2.5}, _scale),
    ("mlp", {"layer": "fc2", "op": "add", "channels": [5, 7], "vector": [1.0, -2.0]}, _add),
    (
        "lenet5",
        {"layer": "pool2", "op": "replace", "channels": [0], "values": [[[[0.25] * 6] * 6]]},
        _replace,
    ),
]


@pytest.mark.parametrize(("preset", "iv", "edit"), INTERVENTIONS, ids=lambda v: str(v)[:40])
def test_intervention_equals_a_forward_hook_by_hand(preset, iv, edit):
    b, x = built(preset), sample(preset)
    ivs = [Intervention(**iv)]
    with intervened(b.model, ivs), torch.no_grad():
        got = b.model(x)
    want = by_hand(b.model, x, iv["layer"], edit)
    assert torch.equal(got, want)
    with torch.no_grad():
        assert not torch.equal(b.model(x), want)  # the hook is gone


def test_patch_from_another_input():
    b, x, clean = built("lenet5"), sample("lenet5", 1), sample("lenet5", 2)
    ivs = [Intervention(layer="conv2", op="patch", channels=[3, 9], source={"x": {}})]
    patches = patch_sources(b.model, ivs, {0: {"x": clean}})
    with intervened(b.model, ivs, patches), torch.no_grad():
        got = b.model(x)
    with torch.no_grad():
        src = b.model.conv2(b.model.pool1(b.model.relu1(b.model.conv1(clean))))

    def patch(o):
        o = o.clone()
        o[:, [3, 9]] = src[:, [3, 9]]
        return o

    assert torch.equal(got, by_hand(b.model, x, "conv2", patch))


# -- feature visualization -------------------------------------------------------------------
def test_featvis_equals_the_loop_by_hand():
    b = built("lenet5")
    opts = FeatVisOptions(layer="conv2", channel=5, steps=6, lr=0.1, l2=0.01, tv=0.05, seed=3)
    res = visualize(b.model, b.inference, opts)
    gen = torch.Generator().manual_seed(3)
    x = (torch.randn(1, 1, 32, 32, generator=gen) * 0.1).requires_grad_()
    opt = torch.optim.Adam([x], lr=0.1)
    m = build(PRESETS["lenet5"].spec, seed=0).model.eval()
    for _ in range(6):
        shift = torch.randint(-1, 2, (2,), generator=gen).tolist()
        a = m.conv2(m.pool1(m.relu1(m.conv1(torch.roll(x, shifts=shift, dims=(-2, -1))))))
        loss = -a[:, 5].mean() + 0.01 * x.pow(2).mean() + 0.05 * total_variation(x)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert res["steps"] == 6
    assert torch.equal(res["input"], x.detach())
    assert res["objective"][-1] > res["objective"][0]


def test_featvis_bounded():
    b = built("lenet5")
    with pytest.raises(LimitError) as err:
        visualize(b.model, b.inference, FeatVisOptions(steps=5000))
    assert err.value.detail["limit_key"] == "max_attribution_passes"
    with pytest.raises(SpecError, match="out of range"):
        visualize(b.model, b.inference, FeatVisOptions(layer="conv1", channel=6))
    res = visualize(b.model, b.inference, FeatVisOptions(steps=50), max_seconds=0.0)
    assert res["steps"] == 0


def test_frozen_parameters_have_no_gradient():
    b, x = built("lenet5"), sample("lenet5")
    for p in b.model.conv1.parameters():
        p.requires_grad_(False)
    res = gradients(b.model, {"x": x}, layers=["conv1"], params=True)
    assert "conv1.weight" not in res["parameters"] and "fc3.bias" in res["parameters"]
    tagger = build(PRESETS["lstm_tagger"].spec, seed=0).model.eval()
    for p in tagger.parameters():
        p.requires_grad_(False)
    ids = torch.tensor([0, 1, 2, 3, 4])
    with pytest.raises(SpecError) as err:
        gradients(tagger, {"sentence": ids}, layers=["word_embeddings"], params=True)
    assert err.value.code == "no_gradient"
