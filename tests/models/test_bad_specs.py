"""Bad specs as data (bad_specs.json, like Netron's test/models.json): each one is refused.

Every entry names the error code, a phrase of the message (the part that says what to
change) and the layer at fault (or null); the message is checked to be one the user can
act on, and ``to_dict()`` to have the JSON error shape the server sends.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from models.build import build, infer
from models.errors import LimitError, SpecError

CASES: list[dict[str, Any]] = json.loads((Path(__file__).parent / "bad_specs.json").read_text())
CODES = {
    "unknown_layer_type",
    "invalid_arg",
    "invalid_name",
    "reserved_name",
    "invalid_spec",
    "duplicate_name",
    "unknown_input",
    "forward_reference",
    "cycle",
    "wrong_input_count",
    "unknown_output",
    "empty_spec",
    "shape_mismatch",
    "wrong_rank",
    "dtype_mismatch",
    "auto_unavailable",
    "limit_exceeded",
}


def test_the_list_is_well_formed() -> None:
    ids = [case["id"] for case in CASES]
    assert len(ids) == len(set(ids)) >= 45
    for case in CASES:
        assert set(case) == {"id", "spec", "code", "phrase", "layer"}, case["id"]
        assert case["code"] in CODES and case["phrase"], case["id"]
    assert {case["code"] for case in CASES} == CODES  # every code is exercised


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_bad_spec_is_refused_with_a_message_that_says_what_to_change(case: dict[str, Any]) -> None:
    with pytest.raises(SpecError) as info:
        infer(case["spec"])
    err = info.value
    assert err.code == case["code"], err.message
    assert case["phrase"] in err.message, err.message
    assert err.layer == case["layer"], err.message
    assert isinstance(err, LimitError) == (err.code == "limit_exceeded")
    assert "\n" not in err.message and len(err.message) < 600
    assert err.message.rstrip().endswith((".", "?", ")"))
    if err.layer is not None:
        assert err.layer in err.message
    body = err.to_dict()
    assert json.loads(json.dumps(body)) == body
    assert body["code"] == err.code and body["message"] == err.message
    assert set(body) <= {"code", "message", "layer", "detail"}
    assert ("layer" in body) == (err.layer is not None)
    if err.layer is not None:
        assert body["layer"] == case["layer"]


@pytest.mark.parametrize("case", CASES[:12], ids=[case["id"] for case in CASES[:12]])
def test_build_refuses_the_same_way(case: dict[str, Any]) -> None:
    with pytest.raises(SpecError) as info:
        build(case["spec"], seed=0)
    assert info.value.code == case["code"]
