"""Time: the work limit, a deadline per job, and anonymous validation kept off the device.

No timing thresholds: budgets are forced to zero (or a spent deadline) so that the stop is
certain, and the isolation of ``/api/validate`` is shown by ordering (a workspace's run
finishes while a validation is held), never by how long something took.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from models import cost
from models.limits import Limits
from models.presets import PRESETS
from server import jobs
from server.settings import Settings

POOL = {
    "inputs": {"x": {"shape": [1, 1, 500, 500]}},
    "layers": [{"name": "pool", "type": "MaxPool2d", "args": {"kernel_size": 100, "stride": 1}}],
}
LENET = PRESETS["lenet5"].spec


def test_large_pooling_windows_are_refused_413_naming_max_work(api, builds):
    """MaxPool2d(100, stride=1) on 500×500: 0 FLOPs, 10 s of the worker; now refused."""
    err = api.error(api.post("/api/models", json={"spec": POOL}), 413, "limit_exceeded")
    assert err["detail"]["setting"] == "PLAYGROUND_MAX_WORK" and err["layer"] == "pool"
    assert "PLAYGROUND_MAX_WORK" in err["message"]
    assert builds == []
    verdict = api.ok(api.post("/api/validate", json={"spec": POOL}))
    assert verdict["valid"] is False and verdict["error"]["code"] == "limit_exceeded"
    strided = {**POOL, "layers": [{**POOL["layers"][0], "args": {"kernel_size": 100}}]}
    api.create(spec=strided)


def test_validate_and_summary_show_work_next_to_flops(api):
    verdict = api.ok(api.post("/api/validate", json={"spec": LENET}))
    assert verdict["total_work"] == sum(layer["work"] for layer in verdict["layers"]) > 0
    assert all(layer["work"] >= cost.CALL for layer in verdict["layers"])
    model = api.create(preset="lenet5")
    summary = api.ok(api.get(f"/api/models/{model['id']}/summary"))
    assert summary["total_work"] == verdict["total_work"]
    assert [row["work"] for row in summary["layers"]] == [x["work"] for x in verdict["layers"]]


def test_a_job_the_estimate_says_cannot_finish_is_refused_up_front(make_api, builds):
    api = make_api(job_timeout_s=1e-6)
    err = api.error(api.post("/api/models", json={"preset": "lenet5"}), 413, "limit_exceeded")
    assert err["detail"]["setting"] == "PLAYGROUND_JOB_TIMEOUT_S"
    assert "PLAYGROUND_JOB_TIMEOUT_S" in err["message"]
    assert builds == []


def test_a_run_past_its_budget_stops_with_503_naming_the_limit(api, monkeypatch):
    model = api.create(preset="lenet5")
    monkeypatch.setattr(cost, "JOB_GRACE_S", -1.0)  # every budget already spent
    monkeypatch.setattr(cost, "JOB_SLACK", 0.0)
    err = api.error(api.post(f"/api/models/{model['id']}/run", json={}), 503, "deadline_exceeded")
    assert err["layer"] == "conv1" and "PLAYGROUND_JOB_TIMEOUT_S" in err["message"]
    monkeypatch.undo()
    assert api.run(model["id"])["outputs"]["fc3"]["shape"] == [1, 10]


def test_a_validation_past_its_budget_stops_and_is_not_remembered(make_api):
    api = make_api(validate_timeout_s=1e-9)
    r = api.post("/api/validate", json={"spec": LENET})
    err = api.error(r, 503, "deadline_exceeded")
    assert err["message"].startswith("This validation was stopped after layer conv1")
    # its budget is the validation's own setting, not a job's
    assert err["message"].endswith("Or raise PLAYGROUND_VALIDATE_TIMEOUT_S.")
    assert err["detail"]["setting"] == "PLAYGROUND_VALIDATE_TIMEOUT_S"
    again = api.post("/api/validate", json={"spec": LENET})
    assert again.status_code == 503  # a refusal, not a verdict on the spec: not cached


@pytest.fixture
def held_validations(monkeypatch):
    """Anonymous validations block until the event is set; model creation does not."""
    release = threading.Event()
    started = threading.Semaphore(0)
    real = jobs.resolve

    def resolve(spec, limits, budget_s=None):
        if budget_s is not None:  # the /api/validate job
            started.release()
            assert release.wait(30)
        return real(spec, limits, budget_s)

    monkeypatch.setattr(jobs, "resolve", resolve)
    yield started, release
    release.set()


def test_a_held_anonymous_validation_never_delays_a_workspace_run(make_api, held_validations):
    started, release = held_validations
    api = make_api(validate_queue_size=1)
    anonymous = api.client  # no token
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(anonymous.post, "/api/validate", json={"spec": LENET})
        assert started.acquire(timeout=30)  # running on the validation thread, held
        queued = pool.submit(anonymous.post, "/api/validate", json={"spec": POOL})
        worker = api.client.app.state.playground.worker
        for _ in range(100_000):  # until the second one waits in the validation queue
            if worker.stats()["validations_queued"] == 2:
                break
            threading.Event().wait(0.001)
        assert worker.stats()["validations_queued"] == 2
        # past the queue: refused at once, without waiting for the held one
        busy = anonymous.post("/api/validate", json={"spec": {**LENET, "name": "Other"}})
        api.error(busy, 503, "busy")
        assert "PLAYGROUND_VALIDATE_QUEUE_SIZE" in busy.json()["error"]["message"]
        # meanwhile a workspace creates, builds and runs models on the device
        model = api.create(preset="lenet5")
        assert api.run(model["id"])["outputs"]["fc3"]["shape"] == [1, 10]
        assert not first.done() and not queued.done()  # the validations still wait
        release.set()
        assert first.result(30).json()["valid"] is True
        assert queued.result(30).json()["valid"] is False


def test_settings_take_the_limits_defaults_from_models_limits():
    """One copy of each default (issue 16: 512 MiB in models/limits.py, 256 in settings)."""
    defaults = Limits()
    for name in Limits.__dataclass_fields__:
        assert Settings.model_fields[name].default == getattr(defaults, name), name
    assert Settings(_env_file=None).limits() == defaults
