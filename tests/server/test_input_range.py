"""One rule for numbers past float32 in a run's inputs: refused 422, whichever maker."""

from __future__ import annotations

import pytest

SPEC = {
    "inputs": {"x": {"shape": [1, 2]}},
    "layers": [{"name": "fc", "type": "Linear", "args": {"in_features": 2, "out_features": 1}}],
}


@pytest.mark.parametrize(
    "maker",
    [
        {"kind": "constant", "value": 1e308},
        {"kind": "tensor", "data": [[1e308, 1.0]]},
        {"kind": "random", "mean": 1e308},
    ],
    ids=["constant", "tensor", "random"],
)
def test_a_1e308_input_is_refused_the_same_way_by_every_maker(api, maker):
    model = api.create(spec=SPEC)
    r = api.post(f"/api/models/{model['id']}/run", json={"inputs": {"x": maker}})
    err = api.error(r, 422)
    assert "1e+308, beyond float32's range" in err["message"], err
    named = {"kind": "tensor", "data": [["Infinity", 1.0]]}  # infinity asked for by name
    out = api.run(model["id"], inputs={"x": named}, encoding="list")
    assert out["inputs"]["x"]["tensor"]["data"] == [["Infinity", 1.0]]
