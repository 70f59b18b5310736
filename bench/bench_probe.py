"""Bench: the cost of models.probe (and of encoding it) against bare forward hooks in torch.

For every preset: build it, make its default inputs, then time, in the same run,

- bare: forward hooks on every top-level child that keep the outputs, ``model(**x)``
  under ``torch.no_grad()``, hooks removed (what anyone would write by hand);
- probe: ``probe(model, inputs, capture="all")``;
- probe+encode: the probe and ``describe()`` of it (f16 payloads and statistics).

Each is warmed up, then run N times (N chosen so a preset takes about ``--budget``
seconds; at least 3 runs) and the median is printed, with ratios against bare.

``--worker`` measures what ``/run`` costs on the worker against the raw forward (issue 17's
target: at most 1.5x), on plain conv stacks (widths 8, 32 and 128 on a 1x3x64x64 input:
conv-relu-conv-relu-pool-conv-relu-pool, 2.5 M activation values at width 128) and on
LeNet-5: the raw forward (``model(x)`` under ``torch.no_grad()``) against the worker's job
(``probe(capture="all")`` and ``describe(..., max_elements=65_536)``: f16 payloads and
statistics), A and B alternating call by call, three rounds, medians; the statistics and the
encoding are also timed alone, and the job without statistics (``stats=False``: the probe
and the encoding only), the floor any job sending these payloads stands on. ``--http`` adds
the HTTP round trip of ``/run`` for the width-128 stack (a playground server in a child
process) against the same raw forward in this process (target: at most 2x), alternating
request by forward: asked as f16 (the API's default), as u8 (the page's maps) and as u8 with
gzip (what a browser gets).

Not part of the test suite: ``python bench/bench_probe.py [--threads N] [--worker [--http]]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import torch

from models.build import build
from models.inputs import make_input
from models.presets import PRESETS
from models.probe import describe, probe


def bare(model: torch.nn.Module, xs: dict[str, torch.Tensor]) -> dict[str, object]:
    """The baseline: plain torch forward hooks on the top-level children."""
    outputs: dict[str, object] = {}
    handles = []
    for name, child in model.named_children():

        def keep(_m, _a, out, name=name) -> None:
            outputs[name] = out

        handles.append(child.register_forward_hook(keep))
    try:
        with torch.no_grad():
            model(**xs)
    finally:
        for h in handles:
            h.remove()
    return outputs


def median_ms(fn: Callable[[], object], budget_s: float) -> tuple[float, int]:
    """Median wall time of ``fn`` in ms over N runs, N fitted to ``budget_s``."""
    for _ in range(2):  # warm up
        fn()
    start = time.perf_counter()
    fn()
    once = time.perf_counter() - start
    n = max(3, min(500, int(budget_s / max(once, 1e-6))))
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3, n


def inputs_for(preset) -> dict[str, torch.Tensor]:
    xs = {}
    for name, spec_input in preset.spec["inputs"].items():
        maker = preset.default_inputs.get(name, {"kind": "random", "seed": 0})
        xs[name] = make_input(
            maker,
            spec_input["shape"],
            spec_input.get("dtype", "float32"),
            vocab=spec_input.get("vocab"),
            name=name,
        ).tensor
    return xs


# -- /run on the worker against the raw forward (issue 17) ----------------------------------
MAX_DISPLAY = 65_536  # the server's default max_display_elements


def conv_stack(width: int) -> dict:
    """A plain conv stack on a 1x3x64x64 input (2.5 M activation values at width 128)."""

    def conv(name: str, cin: int) -> dict:
        args = {"in_channels": cin, "out_channels": width, "kernel_size": 3, "padding": 1}
        return {"name": name, "type": "Conv2d", "args": args}

    pool = {"type": "MaxPool2d", "args": {"kernel_size": 2}}
    layers = [conv("conv1", 3), {"name": "relu1", "type": "ReLU"}]
    layers += [conv("conv2", width), {"name": "relu2", "type": "ReLU"}, {"name": "pool1", **pool}]
    layers += [conv("conv3", width), {"name": "relu3", "type": "ReLU"}, {"name": "pool2", **pool}]
    inputs = {"x": {"shape": [1, 3, 64, 64]}}
    return {"name": f"ConvStack{width}", "inputs": inputs, "layers": layers}


CLOCK = time.perf_counter  # --cpu-time: time.thread_time (a loaded machine preempts longer calls)


def interleaved(
    fns: dict[str, Callable[[], object]], reps: int, rounds: int = 3, clock=None
) -> dict:
    """Median ms of each function per round, the functions called in turn (A B A B …), so that
    all see the same load; ``{name: [median of round 1, 2, 3]}``. ``clock`` defaults to
    ``CLOCK`` (wall time, or this thread's CPU time with ``--cpu-time``)."""
    clock = clock or CLOCK
    for fn in fns.values():  # warm up
        fn()
        fn()
    out: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        times: dict[str, list[float]] = {name: [] for name in fns}
        for _ in range(reps):
            for name, fn in fns.items():
                start = clock()
                fn()
                times[name].append(clock() - start)
        for name in fns:
            out[name].append(statistics.median(times[name]) * 1e3)
    return out


def worker_bench(reps: int, http: bool = False, threads: int = 0) -> None:
    """``/run``'s job on the worker (probe + describe) against the raw forward."""
    from models.stats import tensor_stats_many
    from models.tensors import encode

    models = {f"conv{w}": (conv_stack(w), 0) for w in (8, 32, 128)}
    models["lenet5"] = (PRESETS["lenet5"].spec, PRESETS["lenet5"].seed)
    clock = "CPU time of this thread" if CLOCK is time.thread_time else "wall time"
    print(f"\n/run on the worker vs the raw forward; {reps} calls per round, 3 rounds, medians")
    print(f"({clock})")
    header = (
        f"{'model':<9}{'values':>10}{'forward ms':>12}{'run ms':>9}{'ratio':>7}"
        f"{'  (rounds)':<20}{'stats ms':>9}{'encode ms':>10}{'no stats':>10}"
    )
    print(header)
    print("-" * len(header))
    for name, (spec, seed) in models.items():
        model = build(spec, seed=seed).model.eval()
        shape = spec["inputs"]["x"]["shape"]
        xs = {"x": torch.randn(shape, generator=torch.Generator().manual_seed(0))}
        acts = probe(model, xs, capture="all")
        tensors = [a.tensor for a in acts.activations.values()]

        def forward(m=model, x=xs) -> None:
            with torch.no_grad():
                m(**x)

        def job(m=model, x=xs, stats=True) -> None:
            found = probe(m, x, capture="all")
            describe(found, encoding="f16", max_elements=MAX_DISPLAY, stats=stats)

        fns = {
            "forward": forward,
            "run": job,
            "no_stats": lambda: job(stats=False),
            "stats": lambda ts=tensors: tensor_stats_many(ts),
            "encode": lambda ts=tensors: [encode(t, "f16", MAX_DISPLAY) for t in ts],
        }
        t = interleaved(fns, reps)
        ratios = [r / f for r, f in zip(t["run"], t["forward"], strict=True)]
        med = statistics.median
        rounds = " ".join(f"{r:.2f}" for r in ratios)
        print(
            f"{name:<9}{sum(x.numel() for x in tensors):>10,}{med(t['forward']):>12.2f}"
            f"{med(t['run']):>9.2f}{med(ratios):>7.2f}  ({rounds}){'':<4}"
            f"{med(t['stats']):>9.2f}{med(t['encode']):>10.2f}"
            f"{med(t['no_stats']) / med(t['forward']):>9.2f}x"
        )
    print("target: run/forward <= 1.5 for every model ('no stats': the job without statistics)")
    if http:
        http_bench(reps, threads)


def http_bench(reps: int, threads: int) -> None:
    """The HTTP round trip of ``/run`` (width-128 stack) against the raw forward in-process."""
    import tempfile
    from pathlib import Path

    import httpx

    from server.child import ChildServer

    spec = conv_stack(128)
    model = build(spec, seed=0).model.eval()
    x = torch.randn(1, 3, 64, 64)
    body = {"capture": "all", "inputs": {"x": {"kind": "random", "seed": 0}}}
    # the API's default (f16), the page's request (u8 maps) as is, and as a browser gets it
    asks = {
        "f16": ({**body, "encoding": "f16"}, "identity"),
        "u8": ({**body, "encoding": "u8"}, "identity"),
        "u8 gzip": ({**body, "encoding": "u8"}, "gzip"),
    }
    env = {"PLAYGROUND_RATE_LIMIT_PER_MINUTE": "0", "PLAYGROUND_TORCH_THREADS": str(threads)}
    with (
        tempfile.TemporaryDirectory() as tmp,
        ChildServer(Path(tmp), env=env) as srv,
        httpx.Client(base_url=srv.url, timeout=120) as client,
    ):
        token = client.post("/api/workspaces").raise_for_status().json()["token"]
        client.headers["Authorization"] = f"Bearer {token}"
        made = client.post("/api/models", json={"spec": spec, "seed": 0}).raise_for_status()
        url = f"/api/models/{made.json()['id']}/run"

        def forward() -> None:
            with torch.no_grad():
                model(x)

        fns: dict[str, Callable[[], object]] = {"forward": forward}
        sizes = {}
        for name, (ask, coding) in asks.items():

            def round_trip(ask=ask, coding=coding) -> None:
                r = client.post(url, json=ask, headers={"Accept-Encoding": coding})
                r.raise_for_status().json()

            fns[name] = round_trip
            r = client.post(url, json=ask, headers={"Accept-Encoding": coding})
            sizes[name] = r.raise_for_status().num_bytes_downloaded  # on the wire
        # wall time, whatever --cpu-time says: the server's work is not this thread's CPU
        t = interleaved(fns, reps, clock=time.perf_counter)
    med = statistics.median
    print(
        f"\nHTTP /run of conv128 (JSON decoded, wall time) against the forward here "
        f"({med(t['forward']):.2f} ms), alternating; target <= 2"
    )
    for name in asks:
        ratios = [h / f for h, f in zip(t[name], t["forward"], strict=True)]
        print(
            f"  {name:<8} {med(t[name]):8.2f} ms  ratio {med(ratios):.2f} "
            f"({' '.join(f'{r:.2f}' for r in ratios)})  {sizes[name] / 1e6:.2f} MB"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--budget", type=float, default=3.0, help="seconds per preset, about")
    parser.add_argument("--worker", action="store_true", help="/run on the worker vs forward")
    parser.add_argument("--http", action="store_true", help="with --worker: /run over HTTP")
    parser.add_argument("--reps", type=int, default=20, help="--worker: calls per round")
    parser.add_argument(
        "--cpu-time", action="store_true", help="--worker: this thread's CPU time, not wall"
    )
    args = parser.parse_args()
    if args.cpu_time:
        global CLOCK
        CLOCK = time.thread_time
    if args.threads:
        torch.set_num_threads(args.threads)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU, load {load}")
    if args.worker:
        worker_bench(args.reps, http=args.http, threads=args.threads or 0)
        return
    header = (
        f"{'preset':<24}{'runs':>6}{'bare ms':>10}{'probe ms':>10}{'ratio':>8}"
        f"{'probe+enc ms':>14}{'ratio':>8}"
    )
    print(header)
    print("-" * len(header))
    for name, preset in PRESETS.items():
        model = build(preset.spec, seed=preset.seed).model.eval()
        xs = inputs_for(preset)
        third = args.budget / 3
        t_bare, n = median_ms(lambda m=model, x=xs: bare(m, x), third)
        t_probe, _ = median_ms(lambda m=model, x=xs: probe(m, x, capture="all"), third)
        t_enc, _ = median_ms(lambda m=model, x=xs: describe(probe(m, x, capture="all")), third)
        print(
            f"{name:<24}{n:>6}{t_bare:>10.3f}{t_probe:>10.3f}{t_probe / t_bare:>8.2f}"
            f"{t_enc:>14.3f}{t_enc / t_bare:>8.2f}"
        )


if __name__ == "__main__":
    main()
