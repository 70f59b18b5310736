"""Bench: gradients and each attribution method through the playground vs Captum/torch directly.

LeNet-5 (the preset, seed 0) on one seeded random input. For each method these figures are
measured in the same run, in rounds (so all see the same machine), each round in this order:

- ``direct``: Captum (or ``backward``) called on ``build(spec, seed=0).model`` as ``model(x)``,
  the first computation after the previous round's request, as the server's job is;
- ``warm``: the same direct call again at once (its caches warm);
- ``thread`` (with ``--thread``): the direct call made on a thread of its own that waits for
  each call, as the worker's thread waits for each job: the control for the thread hop;
- ``engine``: ``models.attribution.attribute`` / ``gradients`` on the same model (warm);
- ``api``: ``POST /api/models/{id}/attribute`` (or ``/gradients``, or ``/run`` with
  ``gradients``) to a server (``python -m server`` on 127.0.0.1, embedded worker, one torch
  thread; ``--server inprocess``: the app in this process through a starlette TestClient):
  wall time; the worker's own ``elapsed_ms`` (the input made, the method, the answer
  encoded); and ``compute_ms``, "in job": the same engine call timed inside the server's job.

The rows ``run`` and ``run_gradients`` are a run capturing every layer without and with
gradients: direct is ``model(x)`` with a forward hook on every layer (and, with gradients,
one ``torch.autograd.grad`` to the input and every layer), engine is ``models.probe.probe``,
the worker also encodes every activation (and gradient) as f32, without statistics.

The input travels as an f32 payload (base64), as the browser's own inputs are cheap to make,
and attributions are asked without statistics, as the Why tab asks them; the last line shows
saliency at the worker with statistics, and with the same input as a JSON list of numbers
(checked one by one in ``models.tensors``).

Printed: the median of each and the ratios engine/warm (the playground's code against
Captum's, both warm), in job/direct (the same, both the first computation after a request),
worker/direct (the target: ≤ 1.2) and api wall/direct (the fixed cost of HTTP + JSON, which
dominates the cheapest methods).

    python bench/bench_attribution.py [--rounds 15] [--server http|inprocess] [--thread]

Not part of the test suite.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import os
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
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
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_http import free_port, start, stop

from models.attribution import AttributionOptions, attribute
from models.build import build
from models.gradients import gradients
from models.presets import PRESETS
from models.probe import probe
from models.run_gradients import RunGradients

WARMUP = 5  # rounds left out of the figures, per method
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


@contextlib.contextmanager
def api_client(server: str) -> Iterator[Any]:
    """``http``: ``python -m server`` on a free port of 127.0.0.1 (embedded worker, one torch
    thread), asked over HTTP; ``inprocess``: the app in this process (a starlette TestClient,
    which adds a thread of its own between the client and the app)."""
    with tempfile.TemporaryDirectory() as tmp:
        if server == "inprocess":
            from starlette.testclient import TestClient

            from server.app import create_app
            from server.settings import Settings

            with TestClient(create_app(Settings(data_dir=Path(tmp)))) as client:
                yield client
            return
        port = free_port()
        env = {
            **os.environ,
            "PLAYGROUND_HOST": "127.0.0.1",
            "PLAYGROUND_PORT": str(port),
            "PLAYGROUND_DATA_DIR": str(Path(tmp) / "data"),
            "PLAYGROUND_LOG_LEVEL": "warning",
            "PLAYGROUND_RATE_LIMIT_PER_MINUTE": "0",
            "PLAYGROUND_DEVICE": "cpu",
            "PLAYGROUND_TORCH_THREADS": "1",
        }
        proc = start([sys.executable, "-m", "server"], env, port, Path(tmp) / "server.log")
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
                yield client
        finally:
            stop(proc)


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--server", choices=("http", "inprocess"), default="http")
    parser.add_argument("--thread", action="store_true", help="add the thread-hop control")
    args = parser.parse_args()
    rounds, server = args.rounds, args.server
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    waiting = ThreadPoolExecutor(max_workers=1) if args.thread else None
    if waiting is not None:
        waiting.submit(torch.set_num_threads, 1).result()
    kinds = ("direct", "warm", "thread", "engine", "in job", "worker", "api")
    kinds = tuple(k for k in kinds if waiting is not None or k != "thread")
    built = build(PRESETS["lenet5"].spec, seed=0)
    model = built.model.eval()
    x = torch.randn(1, 1, 32, 32, generator=torch.Generator().manual_seed(1))
    data = base64.b64encode(x.numpy().tobytes()).decode()
    inputs = {"x": {"kind": "tensor", "data": data, "encoding": "f32", "shape": [1, 1, 32, 32]}}
    with api_client(server) as client:
        headers = {"Authorization": f"Bearer {client.post('/api/workspaces').json()['token']}"}
        mid = client.post("/api/models", json={"preset": "lenet5", "seed": 0}, headers=headers)
        mid = mid.json()["id"]
        where = "a server on 127.0.0.1" if server == "http" else "the app in this process"
        print(f"LeNet-5, CPU, torch threads 1, {rounds} rounds, API: {where}; medians in ms")
        ratios = ("eng/warm", "job/dir", "wrk/dir", "api/dir")
        print(f"{'method':22}" + "".join(f" {k:>8}" for k in kinds + ratios))
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
                req = {
                    "inputs": inputs,
                    "layers": "none",
                    "target": 3,
                    "encoding": "f32",
                    "downsample": False,
                    "stats": False,
                }  # as the Why tab asks
            else:
                opts = AttributionOptions(**body)
                args = attribute(model, built.inference, {"x": x}, opts)["captum_args"]

                def engine(opts=opts):
                    attribute(model, built.inference, {"x": x}, opts)

                url = f"/api/models/{mid}/attribute"
                req = {**body, "inputs": inputs, "stats": False}  # as the Why tab asks
            figures: dict[str, list[float]] = {k: [] for k in kinds}
            for i in range(rounds + WARMUP):
                one = {
                    k: timed(lambda name=name, args=args: direct(model, x, name, args))
                    for k in ("direct", "warm")  # in this order
                }
                if waiting is not None:
                    hop = waiting.submit(timed, lambda n=name, a=args: direct(model, x, n, a))
                    one["thread"] = hop.result()
                one["engine"] = timed(engine)
                t = time.perf_counter()
                r = client.post(url, json=req, headers=headers)
                one["api"] = (time.perf_counter() - t) * 1000
                assert r.status_code == 200, r.text
                one["worker"], one["in job"] = r.json()["elapsed_ms"], r.json()["compute_ms"]
                if i >= WARMUP:
                    for k in kinds:
                        figures[k].append(one[k])
            med = {k: statistics.median(v) for k, v in figures.items()}
            shown = [med[k] for k in kinds] + [
                med["engine"] / med["warm"],
                med["in job"] / med["direct"],
                med["worker"] / med["direct"],
                med["api"] / med["direct"],
            ]
            print(f"{name:22}" + "".join(f" {v:8.2f}" for v in shown))
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
