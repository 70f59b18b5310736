"""Bad training requests, as data: each is a SpecError with a code, a field and a clear message."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from models.datasets import DataRoots, availability
from models.errors import SpecError
from models.limits import DEFAULT_LIMITS
from models.presets import PRESETS
from models.training import check_training, options_public
from tests.models.test_training import DIGITS_MLP

CASES = json.loads((Path(__file__).parent / "bad_trainings.json").read_text())


def _linear(name: str, inputs: int, outputs: int) -> dict[str, Any]:
    return {
        "name": name,
        "inputs": {"x": {"shape": [1, inputs]}},
        "layers": [
            {
                "name": "fc",
                "type": "Linear",
                "args": {"in_features": inputs, "out_features": outputs},
            }
        ],
    }


SPECS = {
    "mlp2": _linear("Points", 2, 2),
    "mlp10": _linear("Points", 2, 10),
    "regressor": _linear("Regressor", 2, 1),
    "regressor_64": _linear("Regressor", 64, 1),
    "digits_mlp": DIGITS_MLP,
}


def _spec(name: str) -> dict[str, Any]:
    return SPECS[name] if name in SPECS else PRESETS[name].to_spec()


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_bad_training(case: dict[str, Any]) -> None:
    if case["config"]["dataset"] == "fashion_mnist" and availability("fashion_mnist", DataRoots()):
        pytest.skip("dataset-fashion-mnist is not installed")
    with pytest.raises(SpecError) as err:
        check_training(_spec(case["spec"]), case["config"], DataRoots(), DEFAULT_LIMITS)
    assert err.value.code == case["code"], err.value.message
    assert case["message"] in err.value.message
    field = (err.value.detail or {}).get("field")
    assert field == case["field"]


def test_good_configs_pass() -> None:
    roots, limits = DataRoots(), DEFAULT_LIMITS
    for loss in ("CrossEntropyLoss", "MSELoss", "BCEWithLogitsLoss"):
        plan = check_training(
            _spec("mlp2"), {"dataset": "xor", "loss": {"name": loss}}, roots, limits
        )
        assert plan.target == ("index" if loss == "CrossEntropyLoss" else "onehot")
    config = {"dataset": "gauss", "loss": {"name": "BCEWithLogitsLoss"}}
    assert check_training(_linear("P", 2, 1), config, roots, limits).target == "binary"


def test_options_are_data_with_torch_defaults() -> None:
    import torch

    options = options_public()
    adam = next(o for o in options["optimizers"] if o["name"] == "adam")
    lr = next(a for a in adam["args"] if a["name"] == "lr")
    assert lr["default"] == torch.optim.Adam([torch.zeros(1, requires_grad=True)]).defaults["lr"]
    adamw = next(o for o in options["optimizers"] if o["name"] == "adamw")
    assert next(a for a in adamw["args"] if a["name"] == "weight_decay")["default"] == 0.01
    assert {o["name"] for o in options["optimizers"]} == {
        "sgd",
        "adam",
        "adamw",
        "rmsprop",
        "adagrad",
    }
    assert {"MSELoss", "CrossEntropyLoss", "NLLLoss", "BCEWithLogitsLoss"} <= {
        o["name"] for o in options["losses"]
    }
    assert [o["name"] for o in options["schedules"]] == ["constant", "step", "cosine", "onecycle"]
    json.dumps(options)


def test_checkpoints_are_bounded_in_bytes() -> None:
    from models.errors import LimitError
    from models.limits import Limits

    spec = PRESETS["tiny_model"].to_spec()  # 1,002 parameters: about 5 kB a checkpoint
    spec["inputs"]["x"]["shape"] = [1, 2]
    spec["layers"][0]["args"]["in_features"] = 2
    spec["layers"][2]["args"]["out_features"] = 2
    config = {"dataset": "circle", "steps": 1000, "loss": {"name": "NLLLoss"}}
    roots = DataRoots()
    plan = check_training(spec, config, roots, Limits(max_checkpoint_bytes=10**5))
    assert plan.checkpoint_steps == [0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000]
    plan = check_training(spec, config, roots, Limits(max_checkpoint_bytes=20_000))
    assert len(plan.checkpoint_steps) == 3 and plan.checkpoint_steps[::2] == [0, 1000]
    with pytest.raises(LimitError) as err:
        check_training(spec, config, roots, Limits(max_checkpoint_bytes=10_000))
    assert err.value.detail["limit_key"] == "max_checkpoint_bytes"
