"""Convolution by hand: one cell of a Conv2d's map, unrolled (patch, kernel, products, sum)."""

from __future__ import annotations

from typing import Annotated, Any

import torch
from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from models.conv_by_hand import conv_by_hand
from models.errors import SpecError
from models.inputs import InputMaker, make_input
from server.deps import ModelDep, state_of
from server.jobs import DEFAULT_MAKER
from server.routing import JsonRoute
from server.schemas.common import errors
from server.schemas.runs import CheckpointRef
from server.training_jobs import checkpoint_model
from server.worker import Live

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


def _cell(live: Live, body: ConvByHandRequest, settings, limits) -> dict[str, Any]:
    spec = live.built.inference.spec
    model = live.model
    modules = dict(model.named_modules())
    conv = modules.get(body.layer) if body.layer else None
    if not isinstance(conv, torch.nn.Conv2d):
        convs = [n for n, m in modules.items() if isinstance(m, torch.nn.Conv2d)]
        raise SpecError(
            "not_a_conv",
            f"'{body.layer}' is not a Conv2d layer of this model; its Conv2d layers are "
            f"{', '.join(convs) or 'none'}.",
            detail={"field": "layer"},
        )
    made = {}
    for name, inp in spec.inputs.items():
        made[name] = make_input(
            body.inputs.get(name) or DEFAULT_MAKER,
            inp.shape,
            inp.dtype,
            vocab=inp.vocab,
            max_elements=limits.max_input_elements,
            max_pixels=settings.max_image_pixels,
            name=name,
        ).tensor
    seen: list[torch.Tensor] = []
    hook = conv.register_forward_pre_hook(lambda _m, args: seen.append(args[0].detach()))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(**made)
            return conv_by_hand(conv, seen[0], body.channel, body.row, body.col)
    finally:
        hook.remove()
        model.train(was_training)


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
    ctx = state.trainings.ctx

    def job(live: Live) -> dict:
        if body.checkpoint is not None:
            copy = checkpoint_model(ctx, live, body.checkpoint.training, body.checkpoint.step)
            live = Live(live.record, copy, live.nbytes)
        return _cell(live, body, state.settings, state.limits)

    return await state.worker.with_model(record, job)
