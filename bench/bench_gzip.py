"""Bench: gzip of JSON answers (server/compression.py) — CPU spent against bytes saved.

The playground runs as ``python -m server`` in a subprocess on 127.0.0.1. The bench takes
real answers from it (sent uncompressed: ``Accept-Encoding: identity``): LeNet-5's run as
the page asks it (u8) and as f16/f32, a conv stack's run (widths 8, 32, 128 on 1×3×64×64),
the catalog, the parameter table, a validation and /healthz; then

1. per answer and gzip level (1, 6, 9): bytes on the wire and the CPU time of one
   compression (median of ``--repeats`` rounds), in this process, as the middleware does it;
2. loopback, A/B interleaved: the round trip of LeNet-5's page run with and without gzip
   (one keep-alive connection, ``--requests`` each, three rounds, medians, ratio printed);
3. a classroom link computed from (1): ``--students`` (100) pressing Run on LeNet-5 at once
   over a shared ``--mbit`` (100) Mbit/s link: how long the burst takes on the wire, plain
   and gzipped, against the server's CPU time to compress it; and the steady load of every
   student running every 2 s (link share, CPU share).

    python bench/bench_gzip.py [--repeats 3] [--requests 50] [--students 100] [--mbit 100]

Targets: LeNet-5's page run ≤ 20 KB on the wire; gzip's CPU time for a burst below the
wire time it saves. Timings on a loaded machine are noisy: compare the ratios.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import tempfile
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from models.presets import PRESETS  # noqa: E402
from server.child import ChildServer  # noqa: E402
from server.compression import LEVEL, MIN_BYTES, gzip_bytes  # noqa: E402

LEVELS = (1, 6, 9)
TARGET_BYTES = 20_000


def _conv(name: str, cin: int, cout: int) -> dict:
    args = {"in_channels": cin, "out_channels": cout, "kernel_size": 3, "padding": 1}
    return {"name": name, "type": "Conv2d", "args": args}


CONV_STACK = {  # the plain conv stack of issue 17: widths 8, 32, 128 on 1×3×64×64
    "name": "ConvStack",
    "inputs": {"x": {"shape": [1, 3, 64, 64]}},
    "layers": [
        _conv("c1", 3, 8),
        {"name": "r1", "type": "ReLU"},
        _conv("c2", 8, 32),
        {"name": "r2", "type": "ReLU"},
        _conv("c3", 32, 128),
        {"name": "r3", "type": "ReLU"},
    ],
}


class Conn:
    """One keep-alive connection; JSON in, raw bytes and headers out."""

    def __init__(self, port: int) -> None:
        self.c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.token = ""

    def call(self, method: str, path: str, body=None, gzip_ok: bool = False):
        headers = {"Accept-Encoding": "gzip" if gzip_ok else "identity"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = None if body is None else json.dumps(body).encode()
        if data is not None:
            headers["Content-Type"] = "application/json"
        self.c.request(method, path, body=data, headers=headers)
        r = self.c.getresponse()
        raw = r.read()
        if r.status >= 300:
            raise RuntimeError(f"{method} {path}: {r.status} {raw[:300]!r}")
        return raw, r.getheader("Content-Encoding")


def answers(conn: Conn) -> tuple[dict[str, bytes], str]:
    """The answers, and LeNet-5's model id."""
    conn.token = json.loads(conn.call("POST", "/api/workspaces")[0])["token"]
    lenet = json.loads(conn.call("POST", "/api/models", {"preset": "lenet5", "seed": 0})[0])
    stack = json.loads(conn.call("POST", "/api/models", {"spec": CONV_STACK, "seed": 0})[0])
    run = lambda m, enc: conn.call("POST", f"/api/models/{m['id']}/run", {"encoding": enc})[0]  # noqa: E731
    return {
        "lenet run u8 (page)": run(lenet, "u8"),
        "lenet run f16": run(lenet, "f16"),
        "lenet run f32": run(lenet, "f32"),
        "conv stack run u8": run(stack, "u8"),
        "conv stack run f32": run(stack, "f32"),
        "catalog": conn.call("GET", "/api/catalog")[0],
        "lenet parameters": conn.call("GET", f"/api/models/{lenet['id']}/parameters")[0],
        "validate lenet": conn.call("POST", "/api/validate", {"spec": PRESETS["lenet5"].spec})[0],
        "healthz": conn.call("GET", "/healthz")[0],
    }, lenet["id"]


def cpu_of(fn, repeats: int) -> float:
    """Median seconds of CPU (this thread) of fn(), over rounds of enough calls."""
    fn()
    rounds = []
    for _ in range(repeats):
        n, t0 = 0, time.thread_time()
        while (spent := time.thread_time() - t0) < 0.05 or n < 3:
            fn()
            n += 1
        rounds.append(spent / n)
    return statistics.median(rounds)


def table(bodies: dict[str, bytes], repeats: int) -> dict[str, dict]:
    print(f"\n1. bytes and CPU per answer (minimum size {MIN_BYTES} B, level {LEVEL} in use)")
    heads = " ".join(f"{f'gz{lv} B':>8} {'ms':>6}" for lv in LEVELS)
    print(f"{'answer':22} {'plain B':>9} {heads}  unzip ms")
    out = {}
    for name, body in bodies.items():
        row = {"plain": len(body)}
        for lv in LEVELS:
            cpu = cpu_of(lambda b=body, v=lv: gzip_bytes(b, v), repeats)
            row[lv] = (len(gzip_bytes(body, lv)), cpu)
        packed = gzip_bytes(body)
        row["unzip"] = cpu_of(lambda p=packed: zlib.decompress(p, 31), repeats)
        out[name] = row
        cells = " ".join(f"{row[lv][0]:>8} {row[lv][1] * 1e3:>6.3f}" for lv in LEVELS)
        sent = "sent gzipped" if len(body) >= MIN_BYTES else "sent plain"
        print(f"{name:22} {len(body):>9} {cells}  {row['unzip'] * 1e3:>7.3f}  {sent}")
    return out


def loopback(conn: Conn, path: str, body: dict, requests: int) -> None:
    print(f"\n2. loopback round trip of LeNet-5's page run, {requests} requests, A/B interleaved")
    times: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(3):
        for gz in (False, True):
            walls = []
            for _ in range(requests):
                t0 = time.perf_counter()
                raw, enc = conn.call("POST", path, body, gzip_ok=gz)
                if enc == "gzip":
                    zlib.decompress(raw, 31)  # what the browser does too
                walls.append(time.perf_counter() - t0)
            times[gz].append(statistics.median(walls))
    plain, gz = statistics.median(times[False]), statistics.median(times[True])
    print(
        f"   plain {plain * 1e3:.2f} ms, gzip {gz * 1e3:.2f} ms (median of 3 medians): "
        f"gzip/plain = {gz / plain:.2f}"
    )


def classroom(row: dict, students: int, mbit: float) -> bool:
    link = mbit * 1e6 / 8  # bytes per second
    plain, (packed, cpu) = row["plain"], row[LEVEL]
    print(f"\n3. {students} students, LeNet-5's page run, a shared {mbit:g} Mbit/s link")
    wire_plain, wire_gz = students * plain / link, students * packed / link
    burst_cpu = students * cpu
    print(
        f"   all press Run at once: plain {wire_plain * 1e3:.0f} ms on the wire; gzip "
        f"{wire_gz * 1e3:.0f} ms on the wire + {burst_cpu * 1e3:.1f} ms of server CPU "
        f"(saves {(wire_plain - wire_gz) * 1e3:.0f} ms for {burst_cpu * 1e3:.1f} ms)"
    )
    rate = students / 2  # every student runs every 2 s
    print(
        f"   every 2 s each: plain {rate * plain * 8 / 1e6:.1f} Mbit/s "
        f"({rate * plain / link:.0%} of the link), gzip {rate * packed * 8 / 1e6:.1f} Mbit/s "
        f"({rate * packed / link:.0%}) for {rate * cpu:.1%} of one core"
    )
    ok = packed <= TARGET_BYTES and burst_cpu < wire_plain - wire_gz
    print(
        f"   target ≤ {TARGET_BYTES} B on the wire: {packed} B; CPU < wire time saved: "
        f"{'met' if ok else 'NOT met'}"
    )
    return ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--requests", type=int, default=50)
    ap.add_argument("--students", type=int, default=100)
    ap.add_argument("--mbit", type=float, default=100.0)
    args = ap.parse_args()
    unlimited = {"PLAYGROUND_RATE_LIMIT_PER_MINUTE": "0"}  # the loopback part sends hundreds
    with tempfile.TemporaryDirectory() as tmp, ChildServer(Path(tmp), env=unlimited) as srv:
        conn = Conn(srv.port)
        bodies, lenet = answers(conn)
        rows = table(bodies, args.repeats)
        again = Conn(srv.port)  # the first one may have idled past the keep-alive
        again.token = conn.token
        loopback(again, f"/api/models/{lenet}/run", {"encoding": "u8"}, args.requests)
    return 0 if classroom(rows["lenet run u8 (page)"], args.students, args.mbit) else 1


if __name__ == "__main__":
    sys.exit(main())
