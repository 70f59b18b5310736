"""Bench: the cost of models.probe (and of encoding it) against bare forward hooks in torch.

For every preset: build it, make its default inputs, then time, in the same run,

- bare: forward hooks on every top-level child that keep the outputs, ``model(**x)``
  under ``torch.no_grad()``, hooks removed (what anyone would write by hand);
- probe: ``probe(model, inputs, capture="all")``;
- probe+encode: the probe and ``describe()`` of it (f16 payloads and statistics).

Each is warmed up, then run N times (N chosen so a preset takes about ``--budget``
seconds; at least 3 runs) and the median is printed, with ratios against bare.
Not part of the test suite: ``python bench/bench_probe.py [--threads N]``.
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--budget", type=float, default=3.0, help="seconds per preset, about")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU, load {load}")
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
