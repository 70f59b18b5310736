"""Property-based fuzzing of every API operation from the app's own OpenAPI schema.

Schemathesis generates requests from ``/openapi.json`` (paths, query, headers and bodies
that the schema allows, and some it does not), sends them to the ASGI app in-process and
checks two properties of every answer: it is never a 5xx (``not_a_server_error``) and it
matches the status code, content type and body schema the operation documents
(``response_schema_conformance``, and the status/content-type checks next to it).

The calls carry the bearer token of a workspace that holds a preset model (linear_3_2), and
``model_id`` is that model's id in about half of the cases (re-created when a fuzzed DELETE
removed it), so the routes behind a model lookup are reached too, not just their 404s;
``name`` is then sometimes one of its parameters or layers. 100 cases per operation,
derandomized, so CI sees the same cases on every run; ``bench/fuzz_api.py`` runs 1,000.

The in-process fuzz above misses what only a real server shows (headers uvicorn refuses, a
connection dropped) and schemathesis' other phases. ``test_live_server`` runs schemathesis'
own runner against the app under uvicorn on 127.0.0.1 with four phases: the schema's
examples, coverage (every boundary and every kind of wrong value of each field), fuzzing and
stateful (sequences of calls linked by the ids the answers give). Every check schemathesis
has, with ``tests/server/schemathesis.toml`` and the playground's own check in
``tests/server/schemathesis_hooks.py`` in place of ``positive_data_acceptance``: requests the
schema forbids are refused, requests it allows are not refused for a field's type or bounds,
no 5xx, every answer as documented. ``FUZZ_LIVE_EXAMPLES`` cases per operation and phase
(5 here; ``bench/fuzz_api.py --live`` runs the deep pass).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.python import asgi

from server.app import create_app
from server.settings import Settings

# Small limits: a generated spec or input is refused (413) long before it could cost much.
FUZZ_SETTINGS: dict[str, Any] = {
    "max_params": 200_000,
    "max_activation_bytes": 8 * 2**20,
    "max_flops": 10**8,
    "max_layers": 20,
    "max_input_elements": 100_000,
    "max_sequence_length": 256,
    "max_vocab": 1_000,
    "max_image_pixels": 100_000,
    "max_body_bytes": 64 * 2**10,
    "max_upload_bytes": 64 * 2**10,
    "max_models_per_workspace": 20,
    "max_workspaces": 5_000,
    "rate_limit_per_minute": 0,
    "validate_rate_limit_per_minute": 0,
    "idle_unload_seconds": 0,
}
PRESET = "linear_3_2"
REAL_NAMES = ["linear", "linear.weight", "linear.bias"]
CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
]
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "100"))
LIVE_EXAMPLES = int(os.environ.get("FUZZ_LIVE_EXAMPLES", "5"))
LIVE_SEED = int(os.environ.get("FUZZ_LIVE_SEED", "0"))
ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent


class Target:
    """The app under test, the token of its fuzzing workspace and its real model's id."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.client = asgi.get_client(app)  # shares the lifespan schemathesis starts
        self.client.__enter__()
        r = self.client.post("/api/workspaces")
        assert r.status_code == 201, r.text
        self.headers = {"Authorization": f"Bearer {r.json()['token']}"}
        self.model_id = self.new_model()

    def new_model(self) -> str:
        r = self.client.post(
            "/api/models", json={"preset": PRESET, "seed": 0}, headers=self.headers
        )
        assert r.status_code == 201, r.text
        return r.json()["id"]

    def real_model(self) -> str:
        """The real model's id; a fuzzed DELETE may have removed it: then a new one."""
        r = self.client.get(f"/api/models/{self.model_id}", headers=self.headers)
        if r.status_code == 404:
            self.model_id = self.new_model()
        return self.model_id


def operations() -> list[tuple[str, str]]:
    """Every (METHOD, path) of the OpenAPI schema, read from an app that never starts (its
    store in memory): a route added later is fuzzed without a change here."""
    app = create_app(Settings(**FUZZ_SETTINGS, database_url="sqlite://"))
    paths = app.openapi()["paths"]
    return [(method.upper(), path) for path, ops in paths.items() for method in ops]


def cases(schema: schemathesis.BaseSchema, method: str, path: str) -> st.SearchStrategy:
    """Valid and invalid requests to one operation, with a coin for "aim at the real model"
    and a real parameter or layer name to use then."""
    operation = schema[path][method]
    generated = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    )
    return st.tuples(generated, st.booleans(), st.sampled_from(REAL_NAMES))


def fuzz_one(target: Target, case: schemathesis.Case, aim: bool, name: str) -> None:
    """Send one generated case with the workspace's token and check its answer."""
    params = case.path_parameters
    if aim and params and "model_id" in params:
        params["model_id"] = target.real_model()
        if "name" in params:
            params["name"] = name
    case.call_and_validate(headers=target.headers, checks=CHECKS)


@pytest.fixture
def target(tmp_path) -> Iterator[Target]:
    """A fresh app per operation: schemathesis' pytest plugin ends every ASGI lifespan it
    knows of after each test, so an app cannot outlive one."""
    target = Target(create_app(Settings(**FUZZ_SETTINGS, data_dir=tmp_path / "data")))
    yield target
    target.client.__exit__(None, None, None)
    asgi.shutdown_lifespans()  # stops the app's worker thread and closes its store


@pytest.fixture
def schema(target: Target) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_asgi("/openapi.json", target.app)


@pytest.mark.parametrize(("method", "path"), operations(), ids=lambda v: v)
def test_operation(method: str, path: str, schema, target: Target) -> None:
    """EXAMPLES generated requests to one operation: no 5xx, every answer as documented."""

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(cases(schema, method, path))
    def fuzz(drawn: tuple[schemathesis.Case, bool, str]) -> None:
        fuzz_one(target, *drawn)

    fuzz()


# -- regressions the fuzzing found (each once a 500 or an answer its schema did not allow) --
def call_documented(schema, target: Target, method: str, path: str, **case: Any):
    """One hand-made case, sent and checked like the generated ones; the response."""
    made = schema[path][method].Case(**case)
    return made.call_and_validate(headers=target.headers, checks=CHECKS)


def test_an_effect_preset_that_is_not_a_string_is_a_422(schema, target: Target) -> None:
    """server/schemas/effects.py looked a list up in a dict: TypeError, 500."""
    path = "/api/effects/activations/linear-stack"
    r = call_documented(schema, target, "POST", path, body={"preset": ["tutorial"]})
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "invalid_request"


def test_overflowing_softmax_scores_answer_null_statistics(schema, target: Target) -> None:
    """Scores past the float32 range overflow to inf; the sums are NaN, sent as JSON null,
    which the result schema now allows (it said: number)."""
    body = {"scores": [1e300, 1.0, -1e300], "encoding": "list"}
    r = call_documented(schema, target, "POST", "/api/effects/activations/softmax", body=body)
    assert r.status_code == 200
    result = r.json()
    assert result["sum"] is None and result["entropy"] is None


def test_a_body_that_is_not_utf8_is_a_documented_400(schema, target: Target) -> None:
    """FastAPI answers 400 to a body it cannot decode; the operations now document it."""
    r = call_documented(
        schema, target, "POST", "/api/validate", body=b"\xff\xfe{", media_type="application/json"
    )
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "bad_request"


def test_statistics_that_overflow_are_left_out_as_documented(schema, target: Target) -> None:
    """An offset past the float32 range makes every statistic inf or NaN (null); the effects
    routes leave nulls out, and TensorStats required them: now they are optional."""
    body = {"offset": -9.380349041642288e117, "num_groups": 436.0}
    r = call_documented(schema, target, "POST", "/api/effects/normalization", body=body)
    assert r.status_code == 200
    stats = r.json()["before_stats"]
    assert "mean" not in stats and stats["numel"] > 0


# -- the live server: schemathesis' own runner, four phases --------------------------------
def run_schemathesis(url: str, token: str, examples: int, seed: int, report_dir: Path) -> dict:
    """``st run`` against ``url`` with every phase and check; its JSON report."""
    command = [
        sys.executable,
        "-c",
        "import sys; from schemathesis.cli import schemathesis; sys.exit(schemathesis())",
        "--config-file",
        str(HERE / "schemathesis.toml"),
        "run",
        f"{url}/openapi.json",
        "--header",
        f"Authorization: Bearer {token}",
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--max-examples",
        str(examples),
        "--checks",
        "all",
        "--exclude-checks",
        "positive_data_acceptance",  # schema_valid_fields_are_accepted instead
        "--seed",
        str(seed),
        "--workers",
        "1",
        # how long an answer may take is the job deadlines' business (a loaded 2-core box
        # once took 10 s, schemathesis' default, for 999 dropout passes behind a queue)
        "--request-timeout",
        "120",
        "--report",
        "json",
        "--report-dir",
        str(report_dir),
        "--no-color",
    ]
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "tests.server.schemathesis_hooks",
        "PYTHONPATH": str(ROOT),
    }
    # run in the report directory: schemathesis keeps a cache (.schemathesis/) where it runs
    done = subprocess.run(command, cwd=report_dir, env=env, capture_output=True, text=True)
    (report_dir / "output.txt").write_text(done.stdout + done.stderr)
    reports = sorted(report_dir.glob("*.json"))
    assert reports, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(reports[-1].read_text())
    report["output"] = done.stdout
    return report


def summary(report: dict) -> str:
    """The failures and errors of a report, with schemathesis' own account of each."""
    lines = [f"{f['code']} {f['title']}: {', '.join(f['operations'])}" for f in report["failures"]]
    lines += [str(e) for e in report["errors"]]
    return "\n".join(lines) + "\n\n" + report["output"][-6000:]


@pytest.mark.slow
def test_live_server(http, live_server, tmp_path) -> None:
    """Coverage, fuzzing and stateful phases over a socket: no failure of any check."""
    server = live_server(**FUZZ_SETTINGS)
    token = http.post(f"{server.url}/api/workspaces").json()["token"]
    auth = {"Authorization": f"Bearer {token}"}
    r = http.post(f"{server.url}/api/models", json={"preset": PRESET, "seed": 0}, headers=auth)
    assert r.status_code == 201, r.text
    report = run_schemathesis(server.url, token, LIVE_EXAMPLES, LIVE_SEED, tmp_path)
    phases = {name for name, phase in report["phases"].items() if phase["status"] != "skipped"}
    assert phases == {"examples", "coverage", "fuzzing", "stateful"}, report["phases"]
    assert report["operations"]["tested"] == len(operations())
    print(f"{report['test_cases']['generated']} cases over {len(operations())} operations")
    assert not report["failures"] and not report["errors"], summary(report)
