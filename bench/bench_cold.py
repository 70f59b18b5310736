"""Bench: the first validation after a server starts against a warm one (issue 17).

Before start-up warmed torch up (``models/warmup.py``, ``server/readiness.py``), the first
``/api/validate`` of a fresh server took 1.7-2.7 s instead of milliseconds: torch's
FLOP counter imported about 820 modules on first use. Now the server says "starting" on
``/healthz`` until that is paid. For each of ``--runs`` fresh server processes
(``server.child.ChildServer``, which waits for ``/healthz`` to answer 200) this prints

- ready: seconds from the process start to ``/healthz`` 200 (then one more ``/healthz`` on
  the client that times the rest, so that its connection is open: not timed);
- LeNet-5: the first ``POST /api/validate`` of LeNet-5's spec, and the median of 10 more;
- never seen: the first validation of a conv stack no one sent before (width w), and the
  median of 10 validations of other never-seen stacks (widths w+1, w+2, …): the same work,
  only the process's warmth differs.

Target: first / warm <= 2.

``--layers N`` (default 200) then times a never-seen spec of N layers (Linear layers of
sizes no one used before, each followed by an activation), cold: ``/api/validate`` on a
ready server against the same inference in this process (``models.inference.infer`` of
another never-seen spec of the same form), alternating, three of each; it prints ms per
layer (target: at most 1 ms per layer over HTTP).

``python bench/bench_cold.py [--runs 3] [--layers 200]``; not part of the tests.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from models.presets import PRESETS
from server.child import ChildServer


def stack(width: int) -> dict:
    conv = {"type": "Conv2d", "args": {"in_channels": 3, "out_channels": width, "kernel_size": 3}}
    layers = [{"name": "conv1", **conv}, {"name": "relu1", "type": "ReLU"}]
    layers += [{"name": "pool1", "type": "MaxPool2d", "args": {"kernel_size": 2}}]
    layers += [{"name": "flat", "type": "Flatten"}]
    features = width * 15 * 15
    layers += [
        {"name": "fc", "type": "Linear", "args": {"in_features": features, "out_features": 10}}
    ]
    return {"name": f"Stack{width}", "inputs": {"x": {"shape": [1, 3, 32, 32]}}, "layers": layers}


ACTIVATIONS = ("ReLU", "Tanh", "GELU", "Sigmoid")


def chain(layers: int, seed: int) -> dict:
    """``layers`` layers no earlier spec had: Linear sizes drawn from ``seed``'s own range."""
    spec_layers, features = [], 8
    for i in range(layers // 2):
        out = 16 + seed * (layers // 2) + i  # a size per (seed, layer): never seen before
        args = {"in_features": features, "out_features": out}
        spec_layers.append({"name": f"fc{i}", "type": "Linear", "args": args})
        spec_layers.append({"name": f"act{i}", "type": ACTIVATIONS[i % len(ACTIVATIONS)]})
        features = out
    return {"name": f"Chain{seed}", "inputs": {"x": {"shape": [1, 8]}}, "layers": spec_layers}


def cold_layers(layers: int) -> None:
    """Never-seen specs of ``layers`` layers: validate over HTTP against infer in-process."""
    from models.inference import infer
    from models.limits import Limits

    limits = Limits(max_layers=max(layers, 100), max_params=10**9)  # meta: nothing allocated
    env = {
        "PLAYGROUND_RATE_LIMIT_PER_MINUTE": "0",
        "PLAYGROUND_VALIDATE_RATE_LIMIT_PER_MINUTE": "0",
        "PLAYGROUND_MAX_LAYERS": str(limits.max_layers),
        "PLAYGROUND_MAX_PARAMS": str(limits.max_params),
    }
    infer(chain(layers, 0), limits=limits)  # this process warm too (as is the server, ready)
    http_ms, local_ms = [], []
    with (
        tempfile.TemporaryDirectory() as tmp,
        ChildServer(Path(tmp), env=env) as srv,
        httpx.Client(base_url=srv.url, timeout=120) as client,
    ):
        client.get("/healthz").raise_for_status()
        for i in range(3):
            http_ms.append(timed(client, chain(layers, 2 * i + 1)))
            start = time.perf_counter()
            infer(chain(layers, 2 * i + 2), limits=limits)
            local_ms.append((time.perf_counter() - start) * 1e3)
    med = statistics.median
    print(
        f"\nnever-seen {layers}-layer specs, cold: validate over HTTP "
        f"{med(http_ms) / layers:.2f} ms/layer ({', '.join(f'{t:.0f}' for t in http_ms)} ms), "
        f"infer in-process {med(local_ms) / layers:.2f} ms/layer "
        f"({', '.join(f'{t:.0f}' for t in local_ms)} ms); target <= 1 ms/layer"
    )


def timed(client: httpx.Client, spec: dict) -> float:
    """Milliseconds until the answer; a refused validation is reported (a cold server's first
    one can run past its time budget: ``deadline_exceeded``) and its wait still counted."""
    start = time.perf_counter()
    r = client.post("/api/validate", json={"spec": spec})
    elapsed = (time.perf_counter() - start) * 1e3
    if r.status_code != 200 or not r.json()["valid"]:
        print(f"  {spec.get('name')}: HTTP {r.status_code} after {elapsed:.0f} ms: {r.text[:160]}")
    return elapsed


def one_run(run: int) -> dict:
    env = {
        "PLAYGROUND_RATE_LIMIT_PER_MINUTE": "0",
        "PLAYGROUND_VALIDATE_RATE_LIMIT_PER_MINUTE": "0",
    }
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        with (
            ChildServer(Path(tmp), env=env) as srv,
            httpx.Client(base_url=srv.url, timeout=120) as client,
        ):
            ready = time.perf_counter() - start
            client.get("/healthz").raise_for_status()  # the connection, not timed
            lenet = PRESETS["lenet5"].spec
            first_lenet = timed(client, lenet)
            warm_lenet = statistics.median(timed(client, lenet) for _ in range(10))
            base = 16 + 100 * run  # widths no earlier run of this process sent
            first_new = timed(client, stack(base))
            warm_new = statistics.median(timed(client, stack(base + i)) for i in range(1, 11))
    return {
        "ready": ready,
        "first_lenet": first_lenet,
        "warm_lenet": warm_lenet,
        "first_new": first_new,
        "warm_new": warm_new,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="fresh server processes")
    parser.add_argument("--layers", type=int, default=200, help="layers of the cold specs")
    args = parser.parse_args()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"{args.runs} fresh servers, load {load}")
    print(
        f"{'run':>3} {'ready s':>8} {'LeNet first ms':>15} {'warm ms':>8} {'ratio':>6} "
        f"{'new first ms':>13} {'warm ms':>8} {'ratio':>6}"
    )
    rows = [one_run(i) for i in range(args.runs)]
    if not rows:
        cold_layers(args.layers)
        return
    for i, r in enumerate(rows):
        print(
            f"{i:>3} {r['ready']:>8.2f} {r['first_lenet']:>15.1f} {r['warm_lenet']:>8.1f} "
            f"{r['first_lenet'] / r['warm_lenet']:>6.2f} {r['first_new']:>13.1f} "
            f"{r['warm_new']:>8.1f} {r['first_new'] / r['warm_new']:>6.2f}"
        )
    med = statistics.median
    lenet = med(r["first_lenet"] / r["warm_lenet"] for r in rows)
    new = med(r["first_new"] / r["warm_new"] for r in rows)
    print(f"medians: LeNet first/warm {lenet:.2f}, never-seen first/warm {new:.2f}; target <= 2")
    if args.layers:
        cold_layers(args.layers)


if __name__ == "__main__":
    main()
