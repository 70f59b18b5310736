"""Bench: the playground with its jobs embedded (``PLAYGROUND_WORKERS=1``) against two worker
processes (``PLAYGROUND_WORKERS=2``), both servers running at once on free ports of 127.0.0.1
(``python -m server``, one torch thread per worker, data in temporary directories).

Measured in rounds that alternate between the two servers, so both see the same background
load (3 rounds by default; medians printed, and the ratios 2 workers / embedded):

- throughput: 8 clients, each its own workspace with LeNet-5, send ``POST …/run`` (the UI's
  body: every layer captured) one after another, ``--requests`` in all: runs per second;
- overhead: one client, one request at a time, the servers in turn request by request: the
  p50 latency of a run; the difference is what the process hop costs a run (pickling the
  message and the ~60 KB result, two pipe crossings);
- trainings: two workspaces (on two different workers when there are two), each training an
  MLP on digits for ``--steps`` steps, started together: seconds until both are done.

``--ray`` adds a third server with ``PLAYGROUND_WORKER=ray`` (a local Ray it starts, 2 actors,
the jobs on a direct connection to each): its p50 against embedded is the per-run overhead of
Ray (target: at most 2 ms).

    python bench/bench_scale.py [--requests 160] [--steps 300] [--rounds 3] [--ray]

Not part of the test suite; the machine's other load shows in the figures, the ratios are
what to read.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_http import free_port, start, stop

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "server"))
from shared_specs import DIGITS, MLP

RUN_BODY = {"capture": "all", "inputs": {"x": {"kind": "random", "seed": 0}}}
CLIENTS = 8


def serve(workers: int, tmp: Path, ray: bool = False) -> tuple[subprocess.Popen, str]:
    port = free_port()
    name = f"ray{workers}" if ray else str(workers)
    env = {
        **os.environ,
        "PLAYGROUND_HOST": "127.0.0.1",
        "PLAYGROUND_PORT": str(port),
        "PLAYGROUND_DATA_DIR": str(tmp / f"data{name}"),
        "PLAYGROUND_LOG_LEVEL": "warning",
        "PLAYGROUND_RATE_LIMIT_PER_MINUTE": "0",
        "PLAYGROUND_DEVICE": "cpu",
        "PLAYGROUND_TORCH_THREADS": "1",
        "PLAYGROUND_WORKERS": str(workers),
        "PLAYGROUND_MAX_TRAININGS": "8",
    }
    if ray:  # a local Ray started by the server, ``workers`` actors
        env |= {"PLAYGROUND_WORKER": "ray", "PLAYGROUND_RAY_ADDRESS": "auto"}
    proc = start([sys.executable, "-m", "server"], env, port, tmp / f"server{name}.log")
    return proc, f"http://127.0.0.1:{port}"


async def workspace(c: httpx.AsyncClient, url: str, **model: object) -> tuple[dict, str]:
    token = (await c.post(f"{url}/api/workspaces")).json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    r = await c.post(f"{url}/api/models", json=model, headers=headers)
    r.raise_for_status()
    return headers, r.json()["id"]


async def throughput(c: httpx.AsyncClient, url: str, spaces: list, requests: int) -> float:
    per_client = requests // len(spaces)

    async def client(headers: dict, model_id: str) -> None:
        for _ in range(per_client):
            r = await c.post(f"{url}/api/models/{model_id}/run", json=RUN_BODY, headers=headers)
            r.raise_for_status()

    started = time.perf_counter()
    await asyncio.gather(*(client(h, m) for h, m in spaces))
    return per_client * len(spaces) / (time.perf_counter() - started)


async def p50(c: httpx.AsyncClient, urls: dict[str, str], spaces: dict, n: int) -> dict:
    """One run at a time, the servers in turn request by request (A B C A B C …, so that
    all see the same moment's load): each server's median latency in ms."""
    times: dict[str, list[float]] = {name: [] for name in urls}
    for _ in range(n):
        for name, url in urls.items():
            headers, model_id = spaces[name][0]
            started = time.perf_counter()
            r = await c.post(f"{url}/api/models/{model_id}/run", json=RUN_BODY, headers=headers)
            r.raise_for_status()
            times[name].append((time.perf_counter() - started) * 1000)
    return {name: statistics.median(t) for name, t in times.items()}


async def worker_of(c: httpx.AsyncClient, url: str) -> list[int]:
    health = (await c.get(f"{url}/healthz")).json()["worker"]
    return [w.get("live_models", 0) for w in health.get("workers", [health])]


async def two_trainers(c: httpx.AsyncClient, url: str) -> list[tuple[dict, str]]:
    """Two workspaces with an MLP each, on two different workers when there are two."""
    first = await workspace(c, url, spec=MLP, seed=7)
    spaces, seen = [first], await worker_of(c, url)
    for _ in range(20):
        before = seen
        space = await workspace(c, url, spec=MLP, seed=7)
        seen = await worker_of(c, url)
        grew = [i for i, (a, b) in enumerate(zip(before, seen, strict=True)) if b > a]
        if len(seen) == 1 or (grew and seen[grew[0]] == 1):
            spaces.append(space)  # alone on its worker (or the only worker)
            break
    return spaces


async def train_both(c: httpx.AsyncClient, url: str, spaces: list, steps: int) -> float:
    started = time.perf_counter()
    body = {**DIGITS, "steps": steps, "eval_every": steps}
    ids = []
    for headers, model_id in spaces:
        r = await c.post(f"{url}/api/models/{model_id}/trainings", json=body, headers=headers)
        r.raise_for_status()
        ids.append((headers, model_id, r.json()["id"]))
    for headers, model_id, tid in ids:
        while True:
            r = await c.get(f"{url}/api/models/{model_id}/trainings/{tid}", headers=headers)
            if r.json()["status"] in ("done", "failed", "cancelled", "interrupted"):
                break
            await asyncio.sleep(0.05)
    return time.perf_counter() - started


async def bench(urls: dict[str, str], args: argparse.Namespace) -> dict[str, dict[str, list]]:
    figures: dict[str, dict[str, list]] = {k: {"rps": [], "p50": [], "train": []} for k in urls}
    async with httpx.AsyncClient(timeout=300) as c:
        spaces, trainers = {}, {}
        for name, url in urls.items():
            spaces[name] = [
                await workspace(c, url, preset="lenet5", seed=0) for _ in range(CLIENTS)
            ]
            await throughput(c, url, spaces[name], CLIENTS * 2)  # warm-up: every model live
            trainers[name] = await two_trainers(c, url)
        for _ in range(args.rounds):
            for name, url in urls.items():
                figures[name]["rps"].append(await throughput(c, url, spaces[name], args.requests))
            for name, median in (await p50(c, urls, spaces, args.requests // 2)).items():
                figures[name]["p50"].append(median)
            for name, url in urls.items():
                figures[name]["train"].append(await train_both(c, url, trainers[name], args.steps))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=160, help="runs per throughput round")
    parser.add_argument("--steps", type=int, default=300, help="steps of each training")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--ray", action="store_true", help="also 2 Ray actors (a local Ray)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        procs, urls = [], {}
        try:
            for workers in (1, 2):
                proc, url = serve(workers, tmp)
                procs.append(proc)
                urls["embedded" if workers == 1 else "2 workers"] = url
            if args.ray:
                proc, url = serve(2, tmp, ray=True)
                procs.append(proc)
                urls["2 Ray actors"] = url
            figures = asyncio.run(bench(urls, args))
        finally:
            for proc in procs:
                stop(proc)
    med = {k: {m: statistics.median(v) for m, v in f.items()} for k, f in figures.items()}
    print(
        f"LeNet-5 runs (capture all), {CLIENTS} clients, {args.requests} runs a round; "
        f"2 trainings of {args.steps} steps; {args.rounds} rounds, medians; {os.cpu_count()} CPUs"
    )
    print(f"{'':12} {'runs/s':>8} {'p50 ms':>8} {'2 trainings s':>14}")
    for name, m in med.items():
        print(f"{name:12} {m['rps']:8.1f} {m['p50']:8.2f} {m['train']:14.2f}")
    e, w = med["embedded"], med["2 workers"]
    print(
        f"ratios (2 workers / embedded): throughput {w['rps'] / e['rps']:.2f}x, "
        f"p50 {w['p50'] / e['p50']:.2f}x (+{w['p50'] - e['p50']:.2f} ms per run), "
        f"trainings {w['train'] / e['train']:.2f}x the time"
    )
    if "2 Ray actors" in med:
        r = med["2 Ray actors"]
        print(
            f"ratios (2 Ray actors / embedded): throughput {r['rps'] / e['rps']:.2f}x, "
            f"p50 {r['p50'] / e['p50']:.2f}x (+{r['p50'] - e['p50']:.2f} ms per run; "
            f"target +2 ms at most), trainings {r['train'] / e['train']:.2f}x the time"
        )


if __name__ == "__main__":
    main()
