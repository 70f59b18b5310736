"""Bench: gradients and each attribution method through the playground vs Captum/torch directly.

LeNet-5 (the preset, seed 0) on one seeded random input. For each method three figures are
measured in the same run, in alternating rounds (so both sides see the same machine):

- ``direct``: Captum (or ``backward``) called on ``build(spec, seed=0).model`` as ``model(x)``;
- ``engine``: ``models.attribution.attribute`` / ``gradients`` on the same model;
- ``api``: ``POST /api/models/{id}/attribute`` (or ``/gradients``, or ``/run`` with
  ``gradients``) in-process through the ASGI app (a starlette TestClient), wall time, and the
  worker's own ``elapsed_ms``.

The rows ``run`` and ``run_gradients`` are a run capturing every layer without and with
gradients: direct is ``model(x)`` with a forward hook on every layer (and, with gradients,
one ``torch.autograd.grad`` to the input and every layer), engine is ``models.probe.probe``,
the worker also encodes every activation (and gradient) as f32, without statistics.

The input travels as an f32 payload (base64), as the browser's own inputs are cheap to make,
and attributions are asked without statistics, as the Why tab asks them; the last line shows
saliency at the worker with statistics, and with the same input as a JSON list of numbers
(checked one by one in ``models.tensors``).

Printed: the median of each and the ratios engine/direct and api-worker/direct (target ≤ 1.2);
api wall/direct shows the fixed cost of HTTP + JSON, which dominates the cheapest methods.

    python bench/bench_attribution.py [--rounds 15]

Not part of the test suite.
"""

from __future__ import annotations

import argparse
import base64
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch
from captum.attr import (
    IntegratedGradients,
    LayerAttribution,
    LayerGradCam,
    NoiseTunnel,
    Occlusion,
    Saliency,
)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from models.attribution import AttributionOptions, attribute
from models.build import build
from models.gradients import gradients
from models.presets import PRESETS
from models.probe import probe
from models.run_gradients import RunGradients

BODIES = {
    "run": {},
    "run_gradients": {},
    "gradients": {},
    "saliency": {"method": "saliency", "target": 3},
    "integrated_gradients": {"method": "integrated_gradients", "steps": 50, "target": 3},
    "smoothgrad": {"method": "smoothgrad", "samples": 10, "target": 3},
    "gradcam": {"method": "gradcam", "layer": "conv2", "target": 3},
    "occlusion": {"method": "occlusion", "window": [4, 4], "stride": [2, 2], "target": 3},
}


def hooked(model, x: torch.Tensor, grads: bool) -> list:
    """A run by hand: a forward hook on every layer, and the gradient to each, when asked."""
    kept: list[torch.Tensor] = []
    hooks = [m.register_forward_hook(lambda _m, _a, o: kept.append(o)) for m in model.children()]
    try:
        if not grads:
            with torch.no_grad():
                model(x)
            return kept
        leaf = x.clone().requires_grad_()
        out = model(leaf)
        return list(torch.autograd.grad(out[0, 3], [leaf, *kept]))
    finally:
        for h in hooks:
            h.remove()


def direct(model, x: torch.Tensor, name: str, args: dict) -> torch.Tensor | list:
    """The computation written directly with Captum / torch."""
    if name in ("run", "run_gradients"):
        return hooked(model, x, name == "run_gradients")
    leaf = x.clone().requires_grad_()
    if name == "gradients":
        model(leaf)[0, 3].backward()
        return leaf.grad
    if name == "saliency":
        return Saliency(model).attribute(leaf, target=3, abs=True)
    if name == "integrated_gradients":
        return IntegratedGradients(model).attribute(
            leaf, baselines=0.0, target=3, n_steps=50,
            internal_batch_size=args["internal_batch_size"], return_convergence_delta=True,
        )[0]  # fmt: skip
    if name == "smoothgrad":
        torch.manual_seed(0)
        return NoiseTunnel(Saliency(model)).attribute(
            leaf, nt_type="smoothgrad", nt_samples=10, stdevs=0.15, target=3, abs=True,
            nt_samples_batch_size=args["nt_samples_batch_size"],
        )  # fmt: skip
    if name == "gradcam":
        raw = LayerGradCam(model, model.conv2).attribute(leaf, target=3, relu_attributions=True)
        return LayerAttribution.interpolate(raw, (32, 32), "bilinear")
    return Occlusion(model).attribute(
        x, sliding_window_shapes=(1, 4, 4), strides=(1, 2, 2), baselines=0.0, target=3,
        perturbations_per_eval=args["perturbations_per_eval"],
    )  # fmt: skip


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=15)
    rounds = parser.parse_args().rounds
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    from starlette.testclient import TestClient

    from server.app import create_app
    from server.settings import Settings

    built = build(PRESETS["lenet5"].spec, seed=0)
    model = built.model.eval()
    x = torch.randn(1, 1, 32, 32, generator=torch.Generator().manual_seed(1))
    data = base64.b64encode(x.numpy().tobytes()).decode()
    inputs = {"x": {"kind": "tensor", "data": data, "encoding": "f32", "shape": [1, 1, 32, 32]}}
    with TestClient(create_app(Settings(data_dir=Path(tempfile.mkdtemp())))) as client:
        headers = {"Authorization": f"Bearer {client.post('/api/workspaces').json()['token']}"}
        mid = client.post("/api/models", json={"preset": "lenet5", "seed": 0}, headers=headers)
        mid = mid.json()["id"]
        print(f"LeNet-5, CPU, torch threads 1, {rounds} rounds; medians in ms")
        print(f"{'method':22} {'direct':>8} {'engine':>8} {'worker':>8} {'api':>8}"
              f" {'eng/dir':>8} {'wrk/dir':>8} {'api/dir':>8}")  # fmt: skip
        for name, body in BODIES.items():
            if name in ("run", "run_gradients"):
                args = {}
                grads = RunGradients(target=3) if name == "run_gradients" else None

                def engine(grads=grads):
                    probe(model, {"x": x}, gradients=grads)

                url = f"/api/models/{mid}/run"
                req = {"inputs": inputs, "encoding": "f32", "stats": False, "downsample": False}
                if grads is not None:
                    req["gradients"] = {"target": 3}
            elif name == "gradients":
                args: dict = {}

                def engine():
                    gradients(model, {"x": x}, layers=[], target=3)

                url = f"/api/models/{mid}/gradients"
                req = {"inputs": inputs, "layers": "none", "target": 3}
            else:
                opts = AttributionOptions(**body)
                args = attribute(model, built.inference, {"x": x}, opts)["captum_args"]

                def engine(opts=opts):
                    attribute(model, built.inference, {"x": x}, opts)

                url = f"/api/models/{mid}/attribute"
                req = {**body, "inputs": inputs, "stats": False}  # as the Why tab asks
            figures: dict[str, list[float]] = {k: [] for k in ("direct", "engine", "worker", "api")}
            for i in range(rounds + 2):
                d = timed(lambda name=name, args=args: direct(model, x, name, args))
                e = timed(engine)
                t = time.perf_counter()
                r = client.post(url, json=req, headers=headers)
                a = (time.perf_counter() - t) * 1000
                assert r.status_code == 200, r.text
                if i >= 2:  # warm-up
                    figures["direct"].append(d)
                    figures["engine"].append(e)
                    figures["worker"].append(r.json()["elapsed_ms"])
                    figures["api"].append(a)
            med = {k: statistics.median(v) for k, v in figures.items()}
            print(
                f"{name:22} {med['direct']:8.2f} {med['engine']:8.2f} {med['worker']:8.2f} "
                f"{med['api']:8.2f} {med['engine'] / med['direct']:8.2f} "
                f"{med['worker'] / med['direct']:8.2f} {med['api'] / med['direct']:8.2f}"
            )
        listed = {"x": {"kind": "tensor", "data": x.tolist()}}
        url = f"/api/models/{mid}/attribute"
        kinds = {
            "f32 input, no statistics": {"inputs": inputs, "stats": False},
            "with statistics": {"inputs": inputs},
            "input as a JSON list": {"inputs": listed, "stats": False},
        }
        ms: dict[str, list[float]] = {k: [] for k in kinds}
        for _ in range(rounds):
            for kind, extra in kinds.items():
                r = client.post(url, json={**BODIES["saliency"], **extra}, headers=headers)
                ms[kind].append(r.json()["elapsed_ms"])
        line = ", ".join(f"{k} {statistics.median(v):.2f} ms" for k, v in ms.items())
        print(f"saliency at the worker: {line}")


if __name__ == "__main__":
    main()
