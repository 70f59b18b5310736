"""Bench: ``POST /api/models/{id}/run`` on LeNet-5 over HTTP, against a bare FastAPI floor.

Two uvicorn servers run on free ports of 127.0.0.1, each in its own process, started the
same way (``uvicorn.run`` with its defaults):

- the playground: ``python -m server`` (the rate limit switched off with
  ``PLAYGROUND_RATE_LIMIT_PER_MINUTE=0``, data in a temporary directory);
- the floor: a bare FastAPI app with one ``def`` endpoint (so it runs in the thread pool,
  as the playground's torch work runs off the event loop) that runs the same LeNet-5
  (``build(PRESETS["lenet5"].spec, seed=0)``) on the same seeded random input with a forward
  hook on every layer, one forward at a time (a lock, as the playground's one worker thread),
  and returns every activation and the output as base64 float16. No workspace, no validation
  beyond a one-field body, no statistics.

httpx.AsyncClient then sends a fixed number of requests at concurrency 1, 8 and 32 to each
(the same body shape the UI sends: ``{"capture": "all", "inputs": {"x": {"kind": "random",
"seed": 0}}}``), after a warm-up, in short rounds that alternate between the two servers
(5 requests per round at concurrency 1), so that both see the same background load and the
same drift of the machine's speed; it prints requests/s, p50 and p99 latency and errors,
and the playground/floor ratios. Traffic stays on 127.0.0.1.

    python bench/bench_http.py [--requests 400] [--threads 1] [--no-stats] [--profile]
                               [--baseline TREE]

``--baseline TREE`` serves a third server, the playground of another checkout (e.g. ``git
worktree add --detach /tmp/old <commit>``), in the same rounds: this checkout's p50 against
that one's, the way to measure a change's cost (issue 12's 5 % budget) in one run.

Not part of the test suite. ``--profile`` adds where a request's time goes: the playground
in-process (through the ASGI app), one request at a time, with a sampling profile of every
thread.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from pydantic import BaseModel

ROOT = Path(__file__).resolve().parent.parent
RUN_BODY = {"capture": "all", "inputs": {"x": {"kind": "random", "seed": 0}}}
LEVELS = (1, 8, 32)


# -- the floor ------------------------------------------------------------------------------
class FloorBody(BaseModel):
    seed: int = 0


def floor_app(device: str = "cpu", threads: int = 0):
    """The bare endpoint: the same forward with hooks, the same f16 activations, nothing else."""
    import torch
    from fastapi import FastAPI

    from models.build import build
    from models.presets import PRESETS

    if threads:
        torch.set_num_threads(threads)
    spec = PRESETS["lenet5"].spec
    model = build(spec, seed=0, device=device).model.eval()
    names = [layer["name"] for layer in spec["layers"]]
    lock = threading.Lock()
    app = FastAPI()

    def f16(t: torch.Tensor) -> dict:
        data = base64.b64encode(t.detach().half().cpu().numpy().tobytes()).decode("ascii")
        return {"shape": list(t.shape), "dtype": "float32", "encoding": "f16", "data": data}

    @app.post("/run")
    def run(body: FloorBody) -> dict:
        acts: dict[str, torch.Tensor] = {}
        with lock:
            x = torch.randn(1, 1, 32, 32, generator=torch.Generator().manual_seed(body.seed))
            x = x.to(device)
            handles = [
                getattr(model, n).register_forward_hook(
                    lambda _m, _i, out, n=n: acts.__setitem__(n, out)
                )
                for n in names
            ]
            try:
                with torch.no_grad():
                    out = model(x)
            finally:
                for h in handles:
                    h.remove()
            return {
                "outputs": {"fc3": f16(out)},
                "activations": {n: {"tensor": f16(t)} for n, t in acts.items()},
            }

    @app.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok"}

    return app


def serve_floor(port: int, device: str, threads: int) -> None:
    import uvicorn

    uvicorn.run(floor_app(device, threads), host="127.0.0.1", port=port, log_level="warning")


# -- servers --------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(
    cmd: list[str], env: dict[str, str], port: int, log: Path, cwd: Path = ROOT
) -> subprocess.Popen:
    out = log.open("w")
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{cmd} exited:\n{log.read_text()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"{cmd} did not answer /healthz:\n{log.read_text()}")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# -- load -----------------------------------------------------------------------------------
async def drive(client: httpx.AsyncClient, url: str, body: dict, n: int, concurrency: int) -> dict:
    """Send ``n`` POSTs with ``concurrency`` in flight: the latencies, errors, sizes, wall."""
    out: dict = {"latencies": [], "errors": 0, "sizes": [], "worker_ms": [], "wall": 0.0}
    left = n

    async def one_client() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            t0 = time.perf_counter()
            try:
                r = await client.post(url, json=body)
                data = r.json() if r.status_code == 200 else None
            except httpx.HTTPError:
                data = None
            out["latencies"].append((time.perf_counter() - t0) * 1000)
            if data is None:
                out["errors"] += 1
                continue
            out["sizes"].append(len(r.content))
            if "elapsed_ms" in data:
                out["worker_ms"].append(data["elapsed_ms"])

    start = time.perf_counter()
    await asyncio.gather(*(one_client() for _ in range(concurrency)))
    out["wall"] = time.perf_counter() - start
    return out


async def level(targets: dict, n: int, c: int, gzip: bool = False) -> dict[str, list[dict]]:
    """``n`` requests to each server at concurrency ``c``, in short rounds that alternate
    between them (5·c requests, at most n/8): both see the same drift of this machine's
    speed, which moves by up to 2x within seconds. Each server keeps one client (its
    connections stay open), warmed up first."""
    per_round = max(1, min(5 * c, n // 8))
    runs: dict[str, list[dict]] = {name: [] for name in targets}
    limits = httpx.Limits(max_connections=c, max_keepalive_connections=c)
    # like for like: the floor sends its JSON as it is, so by default neither is asked to
    # compress (``--gzip``: both asked; the playground compresses, the floor does not)
    encoding = {"Accept-Encoding": "gzip" if gzip else "identity"}
    clients = {
        name: httpx.AsyncClient(timeout=60, limits=limits, headers={**hdrs, **encoding})
        for name, (_, _, hdrs) in targets.items()
    }
    try:
        for name, (url, body, _) in targets.items():
            await drive(clients[name], url, body, 4 * c, c)  # warm-up, not counted
        done = 0
        while done < n:
            size = min(per_round, n - done)
            order = list(targets) if (done // per_round) % 2 == 0 else list(reversed(targets))
            for name in order:
                url, body, _ = targets[name]
                runs[name].append(await drive(clients[name], url, body, size, c))
            done += size
    finally:
        for client in clients.values():
            await client.aclose()
    return runs


def summarize(runs: list[dict]) -> dict:
    latencies = sorted(x for run in runs for x in run["latencies"])
    sizes = [x for run in runs for x in run["sizes"]]
    worker = [x for run in runs for x in run["worker_ms"]]
    return {
        "rps": len(latencies) / sum(run["wall"] for run in runs),
        "p50": statistics.median(latencies),
        "p99": latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
        "errors": sum(run["errors"] for run in runs),
        "bytes": statistics.mean(sizes) if sizes else 0,
        "worker_ms": statistics.median(worker) if worker else None,
    }


def setup_playground(base: str) -> tuple[str, dict]:
    token = httpx.post(f"{base}/api/workspaces", timeout=60).raise_for_status().json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    body = {"preset": "lenet5", "seed": 0}
    r = httpx.post(f"{base}/api/models", json=body, headers=headers, timeout=60)
    return f"{base}/api/models/{r.raise_for_status().json()['id']}/run", headers


def check_same_activations(play: str, headers: dict, floor: str) -> None:
    """Both servers compute the same LeNet-5 on the same input: compare the f16 bytes."""
    a = httpx.post(play, json=RUN_BODY, headers=headers, timeout=60).raise_for_status().json()
    b = httpx.post(floor, json={"seed": 0}, timeout=60).raise_for_status().json()
    assert a["activations"].keys() == b["activations"].keys()
    for name, act in b["activations"].items():
        assert a["activations"][name]["tensor"]["data"] == act["tensor"]["data"], name
    assert a["outputs"]["fc3"]["data"] == b["outputs"]["fc3"]["data"]


def bench(
    n: int,
    device: str,
    threads: int,
    stats: bool = True,
    gzip: bool = False,
    baseline: Path | None = None,
) -> list[dict]:
    tmp = Path(tempfile.mkdtemp(prefix="bench_http_"))
    floor_port = free_port()
    body = RUN_BODY if stats else {**RUN_BODY, "stats": False}

    def playground(name: str, tree: Path) -> tuple[str, tuple]:
        """The playground of the checkout ``tree`` (its code first on the path)."""
        port = free_port()
        env = {
            **os.environ,
            "PYTHONPATH": str(tree),
            "PLAYGROUND_HOST": "127.0.0.1",
            "PLAYGROUND_PORT": str(port),
            "PLAYGROUND_DATA_DIR": str(tmp / f"data-{name}"),
            "PLAYGROUND_LOG_LEVEL": "warning",
            "PLAYGROUND_RATE_LIMIT_PER_MINUTE": "0",
            "PLAYGROUND_DEVICE": device,
            "PLAYGROUND_TORCH_THREADS": str(threads),
        }
        cmd = [sys.executable, "-m", "server"]
        procs.append(start(cmd, env, port, tmp / f"{name}.log", cwd=tree))
        url, headers = setup_playground(f"http://127.0.0.1:{port}")
        check_same_activations(url, headers, floor_url)
        return name, (url, body, headers)

    procs = []
    try:
        floor_cmd = [sys.executable, str(Path(__file__).resolve()), "--serve-floor"]
        floor_cmd += [str(floor_port), "--device", device, "--threads", str(threads)]
        procs.append(start(floor_cmd, dict(os.environ), floor_port, tmp / "floor.log"))
        floor_url = f"http://127.0.0.1:{floor_port}/run"
        targets = dict([playground("playground", ROOT)])
        if baseline is not None:
            targets.update([playground("baseline", baseline.resolve())])
        targets["floor"] = (floor_url, {"seed": 0}, {})
        rows = []
        for c in LEVELS:
            runs = asyncio.run(level(targets, n, c, gzip))
            rows += [{"server": k, "concurrency": c, **summarize(v)} for k, v in runs.items()]
        return rows
    finally:
        for proc in procs:
            stop(proc)


def report(rows: list[dict]) -> None:
    print(
        f"{'server':<11} {'conc':>4} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6} "
        f"{'resp KB':>8} {'worker ms':>9}"
    )
    for r in rows:
        worker = f"{r['worker_ms']:.2f}" if r["worker_ms"] is not None else "-"
        print(
            f"{r['server']:<11} {r['concurrency']:>4} {r['rps']:>8.1f} {r['p50']:>8.2f} "
            f"{r['p99']:>8.2f} {r['errors']:>6} {r['bytes'] / 1024:>8.1f} {worker:>9}"
        )
    print()
    by = {(r["server"], r["concurrency"]): r for r in rows}
    print(
        f"{'conc':>4} {'p50 ratio':>10} {'p99 ratio':>10} {'req/s ratio':>12}  (playground/floor)"
    )
    for c in LEVELS:
        p, f = by[("playground", c)], by[("floor", c)]
        print(
            f"{c:>4} {p['p50'] / f['p50']:>10.2f} {p['p99'] / f['p99']:>10.2f} "
            f"{p['rps'] / f['rps']:>12.2f}"
        )
    if ("baseline", 1) in by:
        print(f"\n{'conc':>4} {'p50 ratio':>10} {'p99 ratio':>10} {'req/s ratio':>12}  "
              "(playground/baseline: this checkout against the other)")  # fmt: skip
        for c in LEVELS:
            p, b = by[("playground", c)], by[("baseline", c)]
            print(
                f"{c:>4} {p['p50'] / b['p50']:>10.2f} {p['p99'] / b['p99']:>10.2f} "
                f"{p['rps'] / b['rps']:>12.2f}"
            )
    ratio = by[("playground", 1)]["p50"] / by[("floor", 1)]["p50"]
    verdict = "within" if ratio <= 1.5 else "OVER"
    print(f"\ntarget: p50 within 1.5x of the floor at concurrency 1: {ratio:.2f}x ({verdict})")


# -- profile --------------------------------------------------------------------------------
IDLE = {"wait", "select", "poll", "_worker", "get", "acquire", "run_forever", "_run_once"}


def _sampler(stop: threading.Event, counts: dict, busy: dict, interval: float = 0.0005) -> None:
    """A tiny py-spy: every ``interval`` s, note each thread's stack (function inclusive)."""
    names = {}
    me = threading.get_ident()
    while not stop.is_set():
        for t in threading.enumerate():
            names[t.ident] = t.name
        for ident, frame in sys._current_frames().items():
            if ident == me or frame.f_code.co_name in IDLE:
                continue  # idle: waiting for work or for I/O
            thread = names.get(ident, str(ident)).split("_")[0].rstrip("-0123456789")
            busy[thread] = busy.get(thread, 0) + 1
            seen = set()
            while frame is not None:
                code = frame.f_code
                where = f"{Path(code.co_filename).name}:{code.co_name}"
                if where not in seen:
                    seen.add(where)
                    counts[(thread, where)] = counts.get((thread, where), 0) + 1
                frame = frame.f_back
        time.sleep(interval)


def profile(n: int = 300, threads: int = 0) -> None:
    """Where a request's time goes, in-process (ASGI, no sockets), one request at a time:
    timings of the store lookup and the worker job, and a sampling profile of every thread."""
    import torch

    from server.app import create_app
    from server.settings import Settings

    store_ms: list[float] = []

    async def main() -> tuple[list[float], list[float]]:
        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings(data_dir=Path(tmp), rate_limit_per_minute=0, torch_threads=threads)
            app = create_app(settings)
            store = app.state.playground.store
            real_cached, real_get = store.cached_model, store.get_model

            def timed(real):
                def call(*args, **kwargs):
                    t0 = time.perf_counter()
                    try:
                        return real(*args, **kwargs)
                    finally:
                        store_ms.append((time.perf_counter() - t0) * 1000)

                return call

            # the record cache answers most lookups; a miss reads the database
            store.cached_model, store.get_model = timed(real_cached), timed(real_get)
            async with app.router.lifespan_context(app):
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
                    token = (await c.post("/api/workspaces")).json()["token"]
                    h = {"Authorization": f"Bearer {token}"}
                    body = {"preset": "lenet5", "seed": 0}
                    m = (await c.post("/api/models", json=body, headers=h)).json()
                    url = f"/api/models/{m['id']}/run"
                    for _ in range(30):
                        await c.post(url, json=RUN_BODY, headers=h)
                    store_ms.clear()
                    total, worker = [], []
                    for _ in range(n):
                        t0 = time.perf_counter()
                        r = await c.post(url, json=RUN_BODY, headers=h)
                        total.append((time.perf_counter() - t0) * 1000)
                        worker.append(r.json()["elapsed_ms"])
                    return total, worker

    counts: dict = {}
    busy: dict = {}
    stop = threading.Event()
    sampler = threading.Thread(target=_sampler, args=(stop, counts, busy), name="sampler")
    sampler.start()
    try:
        total, worker = asyncio.run(main())
    finally:
        stop.set()
        sampler.join()
    med = statistics.median
    print(
        f"\nin-process (ASGI, no sockets), {n} requests one at a time, torch threads "
        f"{torch.get_num_threads()}:"
    )
    print(
        f"  request {med(total):.2f} ms median; worker job (elapsed_ms) {med(worker):.2f} ms; "
        f"store lookup {med(store_ms):.3f} ms; the rest {med(total) - med(worker):.2f} ms"
    )
    print("\nsampled busy time per thread (share of samples), and the functions inside it:")
    for thread, b in sorted(busy.items(), key=lambda kv: -kv[1]):
        print(f"  [{thread}] {b} samples")
        rows = sorted(((c, w) for (t, w), c in counts.items() if t == thread), reverse=True)
        for c, where in rows[:40]:
            print(f"      {100 * c / b:5.1f}%  {where}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=400, help="requests per level")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="for both servers")
    parser.add_argument("--threads", type=int, default=0, help="torch threads; 0: torch's default")
    parser.add_argument("--profile", action="store_true", help="also cProfile the request path")
    parser.add_argument(
        "--no-stats", action="store_true", help='the playground runs with "stats": false'
    )
    parser.add_argument(
        "--gzip", action="store_true", help="ask for gzip (only the playground compresses)"
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        metavar="TREE",
        help="also serve the playground of another checkout (an older commit), interleaved",
    )
    parser.add_argument("--serve-floor", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_floor:
        serve_floor(args.serve_floor, args.device, args.threads)
        return
    print(
        f"LeNet-5, capture all, f16{', no statistics' if args.no_stats else ''}"
        f"{', gzip asked' if args.gzip else ''}; "
        f"{args.requests} requests per level; device {args.device}; "
        f"torch threads {args.threads or 'default'}; {os.cpu_count()} CPUs\n"
    )
    rows = bench(
        args.requests,
        args.device,
        args.threads,
        stats=not args.no_stats,
        gzip=args.gzip,
        baseline=args.baseline,
    )
    report(rows)
    if args.profile:
        profile(threads=args.threads)


if __name__ == "__main__":
    main()
