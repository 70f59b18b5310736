"""``/metrics``: off by default, behind a token when one is set, and in Prometheus' text format
counting what happened: requests by route and status, run and job latencies, the worker's
queue and refusals, live models and their bytes, trainings running."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


def samples(text: str) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_off_by_default(client):
    assert client.get("/metrics").status_code == 404


def test_counts_what_happened(make_api):
    api = make_api(metrics=True)
    model = api.ok(api.post("/api/models", json={"preset": "lenet5", "seed": 0}), 201)
    api.ok(api.post(f"/api/models/{model['id']}/run", json={}))
    api.ok(api.post(f"/api/models/{model['id']}/run", json={}))
    api.get("/api/models/nope")
    r = api.client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    got = samples(r.text)
    run = "/api/models/{model_id}/run"
    assert (
        got[("playground_requests_total", (("method", "POST"), ("route", run), ("status", "200")))]
        == 2
    )
    assert (
        got[
            (
                "playground_requests_total",
                (("method", "GET"), ("route", "/api/models/{model_id}"), ("status", "404")),
            )
        ]
        == 1
    )
    assert (
        got[
            (
                "playground_requests_total",
                (("method", "POST"), ("route", "/api/models"), ("status", "201")),
            )
        ]
        == 1
    )
    assert got[("playground_run_duration_seconds_count", ())] == 2
    assert got[("playground_request_duration_seconds_count", (("route", run),))] == 2
    stats = api.ok(api.get("/healthz"))["worker"]
    assert got[("playground_job_duration_seconds_count", ())] >= 3  # a build and two runs
    assert got[("playground_jobs_done_total", ())] >= 3
    assert got[("playground_live_models", ())] == stats["live_models"] == 1
    assert got[("playground_live_model_bytes", ())] == stats["live_bytes"] > 0
    assert got[("playground_queue_depth", ())] == 0
    assert got[("playground_jobs_refused_total", ())] == stats["jobs_refused"] == 0
    assert got[("playground_trainings_running", ())] == 0


def test_a_token_protects_it(make_client):
    client = make_client(metrics=True, metrics_token="s3cret")
    r = client.get("/metrics")
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    assert client.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401
    ok = client.get("/metrics", headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 200 and "playground_requests_total" in ok.text
