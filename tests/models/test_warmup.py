"""models/warmup.py: one warm-up per process leaves every preset's layers remembered."""

from __future__ import annotations

import pytest

from models import inference, warmup
from models.inference import infer
from models.presets import PRESETS


def test_after_the_warm_up_a_preset_is_inferred_from_memory(monkeypatch) -> None:
    warmup.warm_up()
    warmup.warm_up()  # idempotent
    assert warmup.is_warm()

    def cold(*_args, **_kwargs):
        raise AssertionError("measured again")

    monkeypatch.setattr(inference._Walk, "_measure", cold)
    for name in ("lenet5", "mlp", "transformer"):
        assert infer(PRESETS[name].spec).layers


def test_measuring_is_what_the_memory_saves(monkeypatch) -> None:
    """The check above can fail: a spec nobody inferred is measured."""
    monkeypatch.setattr(inference._Walk, "_measure", lambda *a, **k: 1 / 0)
    spec = {
        "inputs": {"x": {"shape": [1, 7]}},
        "layers": [
            {"name": "fc", "type": "Linear", "args": {"in_features": 7, "out_features": 13}}
        ],
    }
    with pytest.raises(ZeroDivisionError):
        infer(spec)
