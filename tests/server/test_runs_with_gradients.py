"""POST /run with ``gradients``: each layer's gradient next to its activation, equal to plain
torch (forward hooks registered by hand and ``torch.autograd.grad``) bit for bit on the CPU.
"""

from __future__ import annotations

import pytest
import torch

from models.build import build
from models.presets import PRESETS


def sample(seed: int, *shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def hooked_grads(model, x: torch.Tensor, scalar) -> tuple[torch.Tensor, dict]:
    kept: dict[str, torch.Tensor] = {}
    for name, module in model.named_children():
        module.register_forward_hook(lambda _m, _a, o, n=name: kept.__setitem__(n, o))
    xh = x.clone().requires_grad_()
    out = model(xh)
    grads = torch.autograd.grad(scalar(out), [xh, *kept.values()])
    return grads[0], dict(zip(kept, grads[1:], strict=True))


@pytest.mark.parametrize("encoding", ["f32", "f16"])
def test_run_with_gradients_equals_hooks_and_autograd(api, lenet, encoding):
    x = sample(4, 1, 1, 32, 32)
    body = {
        "inputs": {"x": {"kind": "tensor", "data": x.tolist()}},
        "gradients": {"target": 5},
        "encoding": encoding,
        "downsample": False,
    }
    r = api.run(lenet["id"], **body)
    m = build(PRESETS["lenet5"].spec, seed=0).model.eval()
    gx, layers = hooked_grads(m, x, lambda o: o[0, 5])
    assert r["gradients"] == {"target": 5, "objective": pytest.approx(float(m(x).detach()[0, 5]))}
    api.assert_same(r["inputs"]["x"]["gradient"]["tensor"], gx)
    assert set(layers) == set(r["activations"])
    for name, grad in layers.items():
        entry = r["activations"][name]["gradient"]
        api.assert_same(entry["tensor"], grad)
        assert entry["stats"]["min"] == pytest.approx(float(grad.min()))
        assert entry["stats"]["max"] == pytest.approx(float(grad.max()))
    plain = api.run(lenet["id"], **{k: v for k, v in body.items() if k != "gradients"})
    for name, act in plain["activations"].items():  # the same activations, no gradient
        assert "gradient" not in act
        assert r["activations"][name]["tensor"] == act["tensor"]


def test_run_gradients_of_a_loss_predicted_by_default(api, lenet):
    r = api.run(lenet["id"], gradients={}, capture=["conv1"])
    assert set(r["activations"]) == {"conv1"}
    assert "gradient" in r["activations"]["conv1"]
    assert isinstance(r["gradients"]["target"], int)
    r = api.run(lenet["id"], gradients={"loss": {"labels": [2]}}, capture="none")
    assert r["gradients"]["target"] is None
    assert "gradient" in r["inputs"]["x"]


@pytest.mark.parametrize(
    ("gradients", "status", "code"),
    [
        ({"target": 10}, 422, "invalid_target"),
        ({"target": -1}, 422, None),
        ({"loss": {"labels": [1, 2]}}, 422, "invalid_labels"),
        ({"output": "nope"}, 422, "invalid_output"),
        ({"what": 1}, 422, None),
    ],
)
def test_bad_gradients(api, lenet, gradients, status, code):
    r = api.post(f"/api/models/{lenet['id']}/run", json={"gradients": gradients})
    api.error(r, status, code)


def test_backward_counts_in_the_cost_check(make_api):
    """A run whose forward fits but forward + backward does not is a 413 naming the setting."""
    flops = build(PRESETS["lenet5"].spec, seed=0).inference.total_flops
    api = make_api(max_attribution_flops=2 * flops - 1)
    made = api.create(preset="lenet5", seed=0)
    api.run(made["id"])  # without gradients: no backward to count
    err = api.error(api.post(f"/api/models/{made['id']}/run", json={"gradients": {}}), 413)
    assert "MAX_ATTRIBUTION_FLOPS" in err["message"]
    api = make_api(max_attribution_flops=2 * flops)
    made = api.create(preset="lenet5", seed=0)
    api.run(made["id"], gradients={})


def test_gradients_count_in_the_activation_memory(make_api):
    """The gradients are a second copy of the activations: a model that fits once but not
    twice runs, but not with gradients (413 naming the setting)."""
    nbytes = build(PRESETS["lenet5"].spec, seed=0).inference.total_activation_bytes
    api = make_api(max_activation_bytes=2 * nbytes - 1)
    made = api.create(preset="lenet5", seed=0)
    api.run(made["id"])
    err = api.error(api.post(f"/api/models/{made['id']}/run", json={"gradients": {}}), 413)
    assert "MAX_ACTIVATION_BYTES" in err["message"]
