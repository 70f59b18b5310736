"""Runs: feed inputs through a model and capture every layer's activation."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from server.deps import ModelDep, state_of
from server.ops.messages import Run
from server.routing import JsonRoute
from server.schemas.common import errors
from server.schemas.runs import RunRequest, RunResult
from server.trainings import find_training
from server.workers.wire import render_json

router = APIRouter(prefix="/api/models", tags=["runs"], route_class=JsonRoute)


class RunJSONResponse(JSONResponse):
    """JSON by pydantic-core's encoder (``render_json``), or the bytes a worker process or a
    Ray actor rendered already (``server.workers.wire.for_the_wire``)."""

    def render(self, content: object) -> bytes:
        return content if isinstance(content, bytes) else render_json(content)


@router.post(
    "/{model_id}/run",
    response_model=RunResult,
    response_model_exclude_none=True,
    responses=errors(404, 409, 413, 503),
    operation_id="runModel",
)
async def run(body: RunRequest, record: ModelDep, request: Request) -> RunJSONResponse:
    """Run inputs (tensor, random, constant, tokens or image) and return outputs and activations.

    A run in train mode updates BatchNorm running statistics, exactly as PyTorch does.
    """
    # The result is built by models.probe.describe in the RunResult shape (the schema tests
    # check it); it goes out as it is: re-validating ~60 KB of payloads per run cost more
    # than the forward pass itself.
    state = state_of(request)  # not a StateDep: each dependency costs ~10 µs per request
    if body.checkpoint is not None:
        await find_training(state.store, record, body.checkpoint.training)
    elif body.mode == "train" and state.trainings.drivers:
        state.trainings.check_idle(record.id, "a train-mode run (it moves BatchNorm statistics)")
    result = await state.worker.submit(
        Run(record.workspace_id, record.id, record.version, request=body)
    )
    return RunJSONResponse(result)
