"""The effects lab's costs are checked with the model cost table before anything runs."""

from __future__ import annotations


def test_a_pooling_over_the_work_limit_is_refused_before_it_runs(api) -> None:
    source = {"kind": "random", "shape": [1, 1, 500, 500], "seed": 0}
    body = {"source": source, "op": "max", "kernel_size": 100, "stride": 1}
    err = api.error(api.post("/api/effects/pooling", json=body), 413)
    assert err["detail"]["setting"] == "PLAYGROUND_MAX_WORK"
    assert "window elements" in err["message"]
