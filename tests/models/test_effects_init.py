"""The effects package helpers: payload encoding of results and the cost check."""

from __future__ import annotations

import base64

import numpy as np
import pytest
import torch

from models.effects import check_cost, to_payloads
from models.errors import LimitError


def test_to_payloads_encodes_every_tensor_and_keeps_the_rest() -> None:
    result = {
        "a": torch.tensor([[1.5, 2.0]]),
        "n": 3,
        "nested": [{"b": torch.tensor([0.25])}, None, "text"],
    }
    out = to_payloads(result, "list")
    assert out["a"] == {
        "shape": [1, 2],
        "dtype": "float32",
        "encoding": "list",
        "data": [[1.5, 2.0]],
    }
    assert out["n"] == 3
    assert out["nested"][0]["b"]["data"] == [0.25]
    assert out["nested"][1:] == [None, "text"]
    assert torch.equal(result["a"], torch.tensor([[1.5, 2.0]]))  # the input is left alone


def test_integer_tensors_stay_exact_when_f16_is_asked() -> None:
    winners = torch.tensor([4097, 70000])  # float16 cannot hold these
    payload = to_payloads({"w": winners, "x": torch.tensor([0.5])}, "f16")
    assert payload["w"]["encoding"] == "f32"
    data = np.frombuffer(base64.b64decode(payload["w"]["data"]), dtype="<f4")
    assert data.tolist() == [4097.0, 70000.0]
    assert payload["x"]["encoding"] == "f16"


def test_check_cost() -> None:
    check_cost("work", 10, 10)
    check_cost("work", 10**12, None)
    with pytest.raises(LimitError) as err:
        check_cost("3 passes", 11, 10)
    assert err.value.code == "limit_exceeded"
    assert err.value.detail == {"limit": 10, "actual": 11, "limit_key": "max_input_elements"}
