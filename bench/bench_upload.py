"""Bench: the server's peak memory for the worst accepted weights upload, and how long a
concurrent ``/healthz`` waits while it (or a big JSON body) is taken in.

A server (``python -m server``, from ``--root``: this checkout, or another one such as the
commit before a change, to compare) holds one model of ``--mib`` MiB of float32 parameters
(a Linear layer; the parameter limit raised to admit it). The bench resets the process's
peak-RSS mark (``/proc/PID/clear_refs``), uploads that model's weights as safetensors
(``PUT /api/models/{id}/weights``; ``--parallel`` at once), and reads the new peak
(``VmHWM``): the printed figure is the peak minus the resident size just before. Then it
posts an 8 MiB JSON run request (a tensor given as nested lists) while timing ``/healthz``.

    python bench/bench_upload.py [--mib 250] [--parallel 1] [--root PATH]

Linux only (``/proc``). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import torch
from safetensors.torch import save as st_save

ROOT = Path(__file__).resolve().parent.parent
MiB = 2**20


def status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process, in bytes."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) * 1024
    return values


def start(root: Path, data: Path, params: int) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLAYGROUND_")}
    env.update(
        PLAYGROUND_HOST="127.0.0.1",
        PLAYGROUND_PORT=str(port),
        PLAYGROUND_DATA_DIR=str(data),
        PLAYGROUND_LOG_LEVEL="warning",
        PLAYGROUND_RATE_LIMIT_PER_MINUTE="0",
        PLAYGROUND_MAX_PARAMS=str(params + 10),
        PLAYGROUND_MAX_CONCURRENT_UPLOADS="8",
        PLAYGROUND_MODEL_CACHE_BYTES=str(4096 * MiB),
        PLAYGROUND_DEVICE="cpu",
        PYTHONPATH=str(root),
    )
    python = root / ".venv" / "bin" / "python"
    proc = subprocess.Popen(
        [str(python if python.exists() else sys.executable), "-m", "server"], cwd=root, env=env
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit("the server did not start")


def healthz_wait(url: str, during: threading.Thread) -> float:
    """The longest /healthz answer while ``during`` runs, in ms."""
    worst = 0.0
    while during.is_alive():
        t = time.perf_counter()
        httpx.get(f"{url}/healthz", timeout=60)
        worst = max(worst, (time.perf_counter() - t) * 1000)
        time.sleep(0.01)
    return worst


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=250, help="the weights file's size")
    parser.add_argument("--parallel", type=int, default=1, help="uploads at once")
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout to serve")
    args = parser.parse_args()
    out = 8192
    inputs = args.mib * MiB // 4 // out - 1
    params = inputs * out + out
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = start(args.root, Path(tmp), params)
        try:
            token = httpx.post(f"{url}/api/workspaces").json()["token"]
            auth = {"Authorization": f"Bearer {token}"}
            spec = {
                "inputs": {"x": {"shape": [1, inputs]}},
                "layers": [{"name": "fc", "type": "Linear",
                            "args": {"in_features": inputs, "out_features": out}}],
            }  # fmt: skip
            r = httpx.post(f"{url}/api/models", json={"spec": spec, "seed": 0}, headers=auth,
                           timeout=600)  # fmt: skip
            assert r.status_code == 201, r.text
            model = r.json()["id"]
            gen = torch.Generator().manual_seed(0)
            data = st_save({
                "fc.weight": torch.rand(out, inputs, generator=gen),
                "fc.bias": torch.rand(out, generator=gen),
            })  # fmt: skip
            headers = {**auth, "Content-Type": "application/octet-stream"}
            time.sleep(1)
            before = status(proc.pid)["VmRSS"]
            Path(f"/proc/{proc.pid}/clear_refs").write_text("5")  # VmHWM := VmRSS
            answers: list[int] = []

            def upload() -> None:
                put = httpx.put(f"{url}/api/models/{model}/weights", content=data,
                                headers=headers, timeout=600)  # fmt: skip
                answers.append(put.status_code)

            threads = [threading.Thread(target=upload) for _ in range(args.parallel)]
            started = time.perf_counter()
            for t in threads:
                t.start()
            waited = healthz_wait(url, threads[0])
            for t in threads:
                t.join()
            seconds = time.perf_counter() - started
            peak = status(proc.pid)["VmHWM"]
            print(
                f"{args.root}: {len(data) / MiB:.1f} MiB upload x{args.parallel}: "
                f"answers {sorted(answers)}, {seconds:.1f} s, peak RSS "
                f"+{(peak - before) / MiB:.0f} MiB over {before / MiB:.0f} MiB, /healthz waited "
                f"at most {waited:.0f} ms"
            )
            values = torch.rand(1, 1, 512, 512, generator=gen).tolist()
            body = json.dumps({"inputs": {"x": {"kind": "tensor", "data": values}}})
            spec2 = {"inputs": {"x": {"shape": [1, 1, 512, 512]}},
                     "layers": [{"name": "relu", "type": "ReLU"}]}  # fmt: skip
            small = httpx.post(f"{url}/api/models", json={"spec": spec2}, headers=auth).json()
            post = threading.Thread(target=lambda: httpx.post(
                f"{url}/api/models/{small['id']}/run", content=body, timeout=600,
                headers={**auth, "Content-Type": "application/json"}))  # fmt: skip
            post.start()
            waited = healthz_wait(url, post)
            post.join()
            print(
                f"{args.root}: {len(body) / MiB:.1f} MiB JSON run request: /healthz waited at "
                f"most {waited:.0f} ms"
            )
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(60)
    return 0


if __name__ == "__main__":
    sys.exit(main())
