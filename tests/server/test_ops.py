"""The jobs that cross the worker boundary are named messages of plain data: frozen
dataclasses with no callable, module or store field, that the standard library pickles."""

from __future__ import annotations

import dataclasses
import pickle

from server.ops import HANDLERS
from server.ops.messages import Effect, Run, Update
from server.schemas.effects import PoolingRequest
from server.schemas.runs import RunRequest

FORBIDDEN = ("Callable", "Module", "Store", "Live", "Worker", "Context", "Built")


def test_every_job_is_a_frozen_dataclass_of_plain_fields():
    assert len(HANDLERS) >= 20
    for cls in HANDLERS:
        assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen, cls
        for f in dataclasses.fields(cls):
            assert not any(word in str(f.type) for word in FORBIDDEN), (cls, f.name, f.type)


def test_messages_with_requests_survive_pickle():
    run = RunRequest.model_validate(
        {"inputs": {"x": {"kind": "random", "seed": 1}}, "capture": "all"}
    )
    for msg in (
        Run("ws", "model", 3, request=run),
        Update("ws", "model", 3, spec={"name": "M", "layers": []}),
        Effect("ws", None, PoolingRequest.model_validate({"preset": "tutorial"})),
    ):
        assert pickle.loads(pickle.dumps(msg)) == msg
