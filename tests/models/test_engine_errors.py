"""The engine's errors carry a code and the numbers, never an HTTP status nor the name of a
server setting (models/errors.py): ``server/errors.py`` alone maps codes to statuses and names
the setting behind a limit's ``limit_key``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from models.build import build
from models.errors import LimitError, SpecError
from models.limits import Limits

MODELS = Path(__file__).resolve().parents[2] / "models"


def test_a_spec_error_has_no_status() -> None:
    with pytest.raises(TypeError):
        SpecError("unknown_layer", "no layer 'x'", status=404)  # type: ignore[call-arg]
    assert not hasattr(SpecError("bad_tensor", "m"), "status")


@pytest.mark.parametrize("path", sorted(MODELS.rglob("*.py")), ids=lambda p: p.name)
def test_the_engine_names_no_setting_and_no_status(path: Path) -> None:
    text = path.read_text()
    assert "PLAYGROUND_" not in text, f"{path} names a server setting"
    assert not re.search(r"\bstatus=\d", text), f"{path} gives an HTTP status"


def test_a_limit_says_which_by_its_key() -> None:
    with pytest.raises(LimitError) as info:
        Limits(max_params=10).check("The parameter count", 11, 10, "max_params", hint="Less. ")
    err = info.value
    assert err.code == "limit_exceeded"
    assert err.detail == {"limit": 10, "actual": 11, "limit_key": "max_params"}
    assert (
        err.message == "The parameter count would be 11; this playground allows at most 10. Less."
    )


@pytest.mark.parametrize("bad", [9, -1])
def test_token_indices_outside_an_embedding_are_the_users_mistake(bad: int) -> None:
    """torch's own refusal is an IndexError naming neither the layer nor the range; the engine
    checks the indices first (a 4xx), and runs the ones torch takes exactly as torch does."""
    spec = {
        "name": "Lookup",
        "inputs": {"x": {"shape": [3], "dtype": "int64"}},
        "layers": [
            {"name": "emb", "type": "Embedding", "args": {"num_embeddings": 9, "embedding_dim": 4}}
        ],
    }
    model = build(spec, seed=0).model
    with pytest.raises(IndexError):
        model.emb(torch.tensor([0, bad, 1]))  # the oracle refuses it too
    with pytest.raises(SpecError) as info:
        model(torch.tensor([0, bad, 1]))
    err = info.value
    assert (err.code, err.layer) == ("token_out_of_range", "emb")
    assert err.detail == {"lowest": 0, "highest": 8, "actual": bad}
    assert "0–8" in err.message and str(bad) in err.message
    ok = torch.tensor([0, 8, 1])
    assert torch.equal(model(ok), model.emb(ok))
