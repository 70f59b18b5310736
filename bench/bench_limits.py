"""Bench: the worst accepted validate and run times over generated specs, and the work estimate.

Specs come from ``specs()`` of tests/server/test_limits_hypothesis.py (the property test's
generator: chains of up to 6 layers, sizes up to 4,096, pooling windows up to 100), drawn by
Hypothesis, plus a few hand-made heavy ones (the issue's LSTM on 3,200 steps, a 500-layer
TransformerDecoder, MaxPool2d k=100 on 500×500). Each goes through ``/api/validate``,
creation and one run, in-process (a starlette TestClient on the ASGI app), with the
server's **default limits** (the rate limits off). It prints, for the accepted specs, the
worst validate and run times and the measured run time per estimated second of work
(models/cost.py: the unit is about 1 ns of one core), and the answer to every hand-made case.

    python bench/bench_limits.py [--examples 300] [--seed 0] [--code DIR]

``--code`` imports ``models`` and ``server`` from another checkout (e.g. ``git archive`` of an
older commit) to measure before and after a change with the same generated specs.

Not part of the test suite; the suite runs the same property with 25 examples and small
limits, asserting only "refused or finished".
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TEST = ROOT / "tests" / "server" / "test_limits_hypothesis.py"

POOL = {"name": "pool", "type": "MaxPool2d"}
HEAVY = {
    "lstm_3200_steps": {
        "inputs": {"x": {"shape": [3200, 1, 1]}},
        "layers": [{"name": "lstm", "type": "LSTM", "args": {"input_size": 1, "hidden_size": 1}}],
    },
    "gru_4096x64": {
        "inputs": {"x": {"shape": [4096, 1, 64]}},
        "layers": [{"name": "gru", "type": "GRU", "args": {"input_size": 64, "hidden_size": 64}}],
    },
    "transformer_decoder_500_layers": {
        "inputs": {"x": {"shape": [5, 1, 8]}},
        "layers": [
            {
                "name": "dec",
                "type": "TransformerDecoder",
                "args": {"d_model": 8, "nhead": 2, "dim_feedforward": 8, "num_layers": 500},
                "inputs": ["x", "x"],
            }
        ],
    },
    "maxpool_k100_s1_500x500": {
        "inputs": {"x": {"shape": [1, 1, 500, 500]}},
        "layers": [POOL | {"args": {"kernel_size": 100, "stride": 1}}],
    },
    "maxpool_k30_s1_500x500": {
        "inputs": {"x": {"shape": [1, 1, 500, 500]}},
        "layers": [POOL | {"args": {"kernel_size": 30, "stride": 1}}],
    },
}


def _load_test_module():
    spec = importlib.util.spec_from_file_location("limits_property", TEST)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


class _Api:
    """The two calls ``validate_and_run`` makes on the test fixture's ``Api``."""

    def __init__(self, client) -> None:
        self.client = client
        token = client.post("/api/workspaces").json()["token"]
        self.headers = {"Authorization": f"Bearer {token}"}

    def post(self, url: str, **kw):
        return self.client.post(url, headers=self.headers, **kw)

    def delete(self, url: str, **kw):
        return self.client.delete(url, headers=self.headers, **kw)

    @staticmethod
    def error(r, status: int, code: str | None = None) -> dict[str, Any]:
        assert r.status_code == status, r.text
        return r.json()["error"]


def _budget() -> str:
    from models import cost  # only in the code measured with a work estimate

    return f"{cost.JOB_GRACE_S:g} s + {cost.JOB_SLACK:g} × its estimate, at most the timeout"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--code", default=str(ROOT), help="where models/ and server/ come from")
    args = parser.parse_args()
    sys.path.insert(0, args.code)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient
    from hypothesis import HealthCheck, given, seed, settings

    from server.app import create_app
    from server.settings import Settings

    prop = _load_test_module()
    data = Path(tempfile.mkdtemp(prefix="bench_limits_"))
    app_settings = Settings(
        data_dir=data, rate_limit_per_minute=0, validate_rate_limit_per_minute=0
    )
    print(f"default limits: {app_settings.limits()}")
    rows: list[tuple[dict[str, float], dict]] = []
    counts = {"specs": 0, "valid": 0, "ran": 0}
    with TestClient(create_app(app_settings)) as client:
        api = _Api(client)
        started = time.perf_counter()
        client.post("/api/validate", json={"spec": prop.PRESETS["lenet5"].spec})
        print(f"first validate (LeNet-5, cold): {(time.perf_counter() - started) * 1000:.0f} ms")
        for name, spec in HEAVY.items():
            started = time.perf_counter()
            r = client.post("/api/validate", json={"spec": spec})
            took = time.perf_counter() - started
            body = r.json()
            error = body.get("error") or {}
            verdict = "valid" if body.get("valid") else error.get("code")
            msg = error.get("message", "")
            print(f"{name}: validate {took * 1000:.1f} ms -> {r.status_code} {verdict} {msg}")
            if body.get("valid"):
                t = prop.validate_and_run(api, spec)
                rows.append((t, spec))
                run = f"{t['run'] * 1000:.1f} ms" if "run" in t else f"refused {t['refused']}"
                print(f"  run {run}, work {t['work']:,}")

        @settings(
            max_examples=args.examples,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @seed(args.seed)
        @given(prop.specs())
        def sweep(spec: dict[str, Any]) -> None:
            counts["specs"] += 1
            took = prop.validate_and_run(api, spec)
            if took:
                counts["valid"] += 1
                counts["ran"] += "run" in took
                rows.append((took, spec))

        started = time.perf_counter()
        sweep()
        elapsed = time.perf_counter() - started
    print(
        f"{counts['specs']} generated specs in {elapsed:.0f} s: {counts['valid']} accepted by "
        f"validate, {counts['ran']} created and run (the rest refused: 413/422/503)"
    )
    for step in ("validate", "run"):
        timed = [(t[step], t, s) for t, s in rows if step in t]
        if not timed:
            continue
        worst, t, spec = max(timed, key=lambda row: row[0])
        layers = ", ".join(f"{x['type']}{x.get('args') or ''}" for x in spec["layers"])
        print(
            f"worst accepted {step}: {worst * 1000:.1f} ms (work {t['work']:,} ≈ "
            f"{t['work'] / 1e9 * 1000:.1f} ms estimated) input {spec['inputs']['x']['shape']}: "
            f"{layers}"
        )
    big = [t for t, _ in rows if "run" in t and t["work"] >= 10**7]  # estimated ≥ 10 ms
    ratios = sorted(t["run"] / (t["work"] / 1e9) for t in big)
    if ratios:
        mid = ratios[len(ratios) // 2]
        print(
            f"measured run request / estimated time, {len(ratios)} runs estimated ≥ 10 ms: "
            f"best {ratios[0]:.2f}, median {mid:.2f}, worst {ratios[-1]:.2f} (a job's budget "
            f"is {_budget()})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
