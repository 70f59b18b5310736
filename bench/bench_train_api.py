"""Bench: training steps through the server's job (slices, store writes, the event stream)
against the plain torch loop, alternated in one run.

LeNet-5 on Fashion-MNIST padded to 32×32, batch 64, Adam, the default recording. The server
is ``python -m server`` in a subprocess (``PLAYGROUND_TORCH_THREADS=1``); the plain loop
runs in this process with 1 thread too (``bench_train.PlainLoop``). Each round:

- plain: ``--steps`` steps of the hand-written loop, timed;
- server: a training of ``--steps`` steps started through the API and followed on its
  Server-Sent Events; timed from the first step event to the last one as they reach the
  client (the end-of-training evaluation and the set-up are not steps, and not counted).

Printed: steps/s of both, per round and their medians, and the time ratio server / plain
(target ≤ 1.10). ``python bench/bench_train_api.py [--rounds 4] [--steps 300]``.
Traffic goes only to 127.0.0.1; not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench_train import PlainLoop  # noqa: E402

from server.child import ChildServer  # noqa: E402

CONFIG = {
    "dataset": "fashion_mnist",
    "transforms": [{"kind": "scale"}, {"kind": "pad", "size": 32}],
    "optimizer": {"name": "adam"},
    "loss": {"name": "CrossEntropyLoss"},
    "batch_size": 64,
    "seed": 0,
}


def server_round(client: httpx.Client, auth: dict, model_id: str, steps: int) -> float:
    """Seconds from the first step event to the last one of a training of ``steps``."""
    url = f"/api/models/{model_id}/trainings"
    t = client.post(url, json={**CONFIG, "steps": steps}, headers=auth).raise_for_status()
    first = last = None
    kind = None
    with client.stream("GET", f"{url}/{t.json()['id']}/events", headers=auth) as r:
        for line in r.iter_lines():
            if line.startswith("event:"):
                kind = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and kind == "step":
                now = time.perf_counter()
                step = json.loads(line.split(":", 1)[1])["step"]
                if step == 1:
                    first = now
                if step == steps:
                    last = now
    assert first is not None and last is not None, "the stream missed steps"
    return (last - first) * steps / (steps - 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()
    torch.set_num_threads(1)
    plain = PlainLoop(0, CONFIG["batch_size"])
    plain.steps(5)
    env = {"PLAYGROUND_TORCH_THREADS": "1", "PLAYGROUND_RATE_LIMIT_PER_MINUTE": "0"}
    with (
        tempfile.TemporaryDirectory() as tmp,
        ChildServer(Path(tmp), env=env) as srv,
        httpx.Client(base_url=srv.url, timeout=120) as client,
    ):
        token = client.post("/api/workspaces", json={}).raise_for_status().json()["token"]
        auth = {"Authorization": f"Bearer {token}"}
        model = client.post("/api/models", json={"preset": "lenet5", "seed": 0}, headers=auth)
        model_id = model.raise_for_status().json()["id"]
        server_round(client, auth, model_id, 20)  # warm: data read, first slices
        rates: dict[str, list[float]] = {"plain": [], "server": []}
        ratios = []
        for r in range(args.rounds):
            times = {}
            for name in ("plain", "server") if r % 2 == 0 else ("server", "plain"):
                if name == "plain":
                    start = time.perf_counter()
                    plain.steps(args.steps)
                    times[name] = time.perf_counter() - start
                else:
                    times[name] = server_round(client, auth, model_id, args.steps)
                rates[name].append(args.steps / times[name])
            ratios.append(times["server"] / times["plain"])
            print(
                f"round {r + 1}: plain {rates['plain'][-1]:.1f} steps/s, server "
                f"{rates['server'][-1]:.1f} steps/s, ratio {ratios[-1]:.3f}"
            )
    print(
        f"LeNet-5 / Fashion-MNIST, batch 64, {args.rounds} rounds × {args.steps} steps: plain "
        f"{statistics.median(rates['plain']):.1f} steps/s, server job "
        f"{statistics.median(rates['server']):.1f} steps/s; time ratio server / plain "
        f"{statistics.median(ratios):.3f} (median per round; target ≤ 1.10)"
    )


if __name__ == "__main__":
    main()
