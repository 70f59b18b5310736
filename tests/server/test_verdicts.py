"""/api/validate remembers its verdicts: the same spec (in any key order) is answered from
memory with exactly what a fresh inference gives, and no job reaches the worker."""

from __future__ import annotations

import copy

import pytest

from models.presets import PRESETS
from server import jobs
from server.verdicts import VerdictCache

LENET = PRESETS["lenet5"].spec


@pytest.fixture
def resolves(monkeypatch) -> list[int]:
    """Counts the inferences that reached the worker."""
    calls: list[int] = []
    real = jobs.resolve

    def counted(spec, limits, *budget):
        calls.append(1)
        return real(spec, limits, *budget)

    monkeypatch.setattr(jobs, "resolve", counted)
    return calls


def reordered(spec: dict) -> dict:
    """The same spec with every mapping's keys in reverse order."""
    if isinstance(spec, dict):
        return {k: reordered(spec[k]) for k in reversed(list(spec))}
    if isinstance(spec, list):
        return [reordered(v) for v in spec]
    return spec


def test_the_same_spec_is_inferred_once(make_api, resolves):
    api = make_api()
    first = api.ok(api.post("/api/validate", json={"spec": LENET}))
    again = api.ok(api.post("/api/validate", json={"spec": reordered(LENET)}))
    assert first == again and first["valid"] and first["total_params"] == 81_290
    assert len(resolves) == 1
    other = api.other()  # another workspace shares the verdicts: they depend on the spec only
    assert api.ok(other.post("/api/validate", json={"spec": LENET})) == first
    assert len(resolves) == 1


def test_a_changed_spec_is_inferred_again(make_api, resolves):
    api = make_api()
    api.ok(api.post("/api/validate", json={"spec": LENET}))
    five = copy.deepcopy(LENET)
    five["layers"][-1]["args"]["out_features"] = 5
    changed = api.ok(api.post("/api/validate", json={"spec": five}))
    assert changed["valid"] and changed["layers"][-1]["output_shape"] == [1, 5]
    assert len(resolves) == 2


def test_an_invalid_spec_gets_the_same_error_from_memory(make_api, resolves):
    api = make_api()
    bad = copy.deepcopy(LENET)
    bad["layers"][7]["args"]["in_features"] = 999  # fc1 gets 576
    first = api.ok(api.post("/api/validate", json={"spec": bad}))
    again = api.ok(api.post("/api/validate", json={"spec": bad}))
    assert first == again and not first["valid"] and first["error"]["layer"]
    assert len(resolves) == 1


def test_refusals_that_are_not_verdicts_are_not_kept(make_api, resolves):
    """Over max_layers is refused before any layer is inferred (413, no layer): asked again,
    it is checked again (a server with other limits may answer otherwise)."""
    api = make_api(max_layers=3)
    for _ in range(2):
        api.error(api.post("/api/validate", json={"spec": LENET}), 413, "limit_exceeded")
    assert len(resolves) == 2


def test_the_cache_is_bounded_and_skips_long_specs():
    cache = VerdictCache(size=2, max_spec_chars=100)
    keys = [cache.key({"n": i}) for i in range(3)]
    for i, key in enumerate(keys):
        cache.put(key, {"valid": True, "n": i})
    assert len(cache) == 2 and cache.get(keys[0]) is None and cache.get(keys[2])["n"] == 2
    assert cache.key({"pad": "x" * 200}) is None  # too long to keep: always inferred
    assert cache.key({"nan": float("nan")}) is None  # not JSON: never matched
    cache.put(None, {"valid": True})
    assert len(cache) == 2
