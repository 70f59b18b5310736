"""Shape inference remembers each layer's measurement (models/layer_memo.py): a remembered
inference must equal a cold one in every number, error and warning, and the limits must
hold whatever was remembered before."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_catalog import ENTRIES, IDS, example_spec

from models import layer_memo
from models.build import infer
from models.errors import SpecError
from models.limits import Limits
from models.presets import PRESETS

BAD = json.loads((Path(__file__).parent / "bad_specs.json").read_text())


def cold_and_warm(spec, **kw):
    """The inference (or the error) with an empty memory, then again from memory."""
    results = []
    layer_memo.forget_all()
    for _ in range(2):
        try:
            results.append(infer(spec, **kw).to_dict())
        except SpecError as exc:
            results.append(("error", exc.to_dict(), [vars(i) for i in getattr(exc, "partial", [])]))
    return results


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_a_remembered_preset_equals_a_cold_one(name):
    cold, warm = cold_and_warm(PRESETS[name].spec)
    assert cold == warm


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_every_catalog_example_equals_cold(entry):
    cold, warm = cold_and_warm(example_spec(entry))
    assert cold == warm


@pytest.mark.parametrize("case", BAD, ids=[c["id"] for c in BAD])
def test_every_bad_spec_fails_the_same_way_from_memory(case):
    cold, warm = cold_and_warm(case["spec"])
    assert cold == warm


def test_warnings_come_back_from_memory():
    spec = PRESETS["transformer_classifier"].spec
    cold, warm = cold_and_warm(spec)
    assert cold["warnings"] == warm["warnings"]


def test_a_lower_limit_still_refuses_at_the_same_layer():
    spec = PRESETS["lenet5"].spec
    infer(spec)  # remembered under the default limits
    lower = (
        Limits(max_params=1_000),
        Limits(max_flops=10_000),
        Limits(max_activation_bytes=9_000),
    )
    for limits in lower:
        with pytest.raises(SpecError) as warm:
            infer(spec, limits=limits)
        layer_memo.forget_all()
        with pytest.raises(SpecError) as cold:
            infer(spec, limits=limits)
        assert warm.value.to_dict() == cold.value.to_dict()
        assert warm.value.code == "limit_exceeded" and warm.value.layer


def test_strides_are_kept_so_a_view_after_a_permute_fails_as_in_torch():
    """Permute gives a non-contiguous tensor: what follows sees the same strides from memory."""
    spec = {
        "name": "M",
        "inputs": {"x": {"shape": [2, 3, 4]}},
        "layers": [
            {"name": "p", "type": "Permute", "args": {"dims": [0, 2, 1]}},
            {"name": "f", "type": "Flatten", "args": {}},
            {"name": "u", "type": "Unflatten", "args": {"dim": 1, "unflattened_size": [3, 4]}},
        ],
    }
    cold, warm = cold_and_warm(spec)
    assert cold == warm


def test_the_memory_is_bounded(monkeypatch):
    monkeypatch.setattr(layer_memo, "SIZE", 3)
    layer_memo.forget_all()
    for width in range(1, 6):
        spec = {
            "name": "M",
            "inputs": {"x": {"shape": [1, 4]}},
            "layers": [
                {"name": "fc", "type": "Linear", "args": {"in_features": 4, "out_features": width}}
            ],
        }
        infer(spec)
    assert len(layer_memo._memo) == 3
