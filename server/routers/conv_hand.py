"""Convolution by hand: one cell of a Conv2d's map, unrolled (patch, kernel, products, sum)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from models.errors import SpecError
from models.inputs import InputMaker
from server.deps import ModelDep, state_of
from server.ops.messages import ConvCell
from server.routing import JsonRoute
from server.schemas.common import errors
from server.schemas.runs import CheckpointRef

router = APIRouter(prefix="/api/models", tags=["runs"], route_class=JsonRoute)


class ConvByHandRequest(BaseModel):
    """Which cell of which Conv2d layer, for which inputs (as a run takes them)."""

    model_config = ConfigDict(extra="forbid")

    layer: str = Field(max_length=64, description="a Conv2d layer of the model")
    channel: int = Field(ge=0, le=1_000_000, description="output channel (the map)")
    row: int = Field(ge=0, le=1_000_000)
    col: int = Field(ge=0, le=1_000_000)
    inputs: Annotated[dict[str, InputMaker], Field(max_length=8)] = {}
    checkpoint: CheckpointRef | None = None


@router.post(
    "/{model_id}/conv_by_hand", responses=errors(404, 409, 413, 503), operation_id="convByHand"
)
async def conv_cell(body: ConvByHandRequest, record: ModelDep, request: Request) -> dict:
    """The patch of the layer's input under the kernel, the kernel, their element-wise
    products, the sum plus bias, and the map's value (eval mode), as torch computes them."""
    state = state_of(request)
    if body.checkpoint is not None:
        ref = body.checkpoint
        rec = await run_in_threadpool(state.store.trainings.get, record.workspace_id, ref.training)
        if rec is None or rec.model_id != record.id:
            raise SpecError(
                "training_not_found",
                f"Model '{record.id}' has no training '{ref.training}'.",
            )
    return await state.worker.submit(
        ConvCell(record.workspace_id, record.id, record.version, request=body)
    )
