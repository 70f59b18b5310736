"""Trainings of a model: start, follow (Server-Sent Events), pause, step, cancel, checkpoints."""

from __future__ import annotations

import asyncio
import json
from functools import partial
from typing import Annotated, Any

import torch
from fastapi import APIRouter, Header, Query, Request, Response
from fastapi import Path as PathParam
from sse_starlette.sse import EventSourceResponse
from starlette.concurrency import run_in_threadpool

from models.datasets import load_split
from models.errors import SpecError
from server.deps import ModelDep, state_of
from server.ops.messages import TrainingScript
from server.routing import JsonRoute
from server.schemas.common import errors
from server.schemas.trainings import (
    CheckpointList,
    RestoreOut,
    TrainingCreate,
    TrainingList,
    TrainingPublic,
)
from server.training_jobs import CheckpointRestore, TrainPlan
from server.training_store import TrainingRecord
from server.trainings import find_training
from server.worker import Busy

router = APIRouter(prefix="/api/models", tags=["trainings"], route_class=JsonRoute)
TID = "/{model_id}/trainings/{training_id}"
REPLAY_BATCH = 500


def public(rec: TrainingRecord) -> dict[str, Any]:
    return {
        "id": rec.id,
        "model_id": rec.model_id,
        "model_version": rec.model_version,
        "status": rec.status,
        "step": rec.step,
        "total_steps": rec.total_steps,
        "epoch": rec.epoch,
        "progress": rec.step / rec.total_steps if rec.total_steps else 0.0,
        "latest": rec.latest,
        "error": rec.error,
        "last_event": rec.seq,
        "config": rec.config,
        "created": rec.created,
        "updated": rec.updated,
    }


async def _training(request: Request, record, training_id: str) -> TrainingRecord:
    return await find_training(state_of(request).store, record, training_id)


@router.post(
    "/{model_id}/trainings",
    status_code=202,
    response_model=TrainingPublic,
    responses=errors(404, 409, 413, 503),
    operation_id="createTraining",
)
async def create_training(body: TrainingCreate, record: ModelDep, request: Request) -> dict:
    """Start training the model; 202 at once, then follow it with …/events or GET."""
    state = state_of(request)
    manager = state.trainings
    roots = manager.ctx.roots
    async with manager.creating:  # the one-per-workspace check and the start are one step
        other = manager.in_workspace(record.workspace_id)
        if other is not None:
            raise SpecError(
                "training_active",
                f"This workspace already has a training in progress ('{other}'); one at a "
                f"time per workspace. Cancel it or wait until it is done.",
                detail={"training": other},
            )
        limit = state.settings.max_trainings
        if len(manager.drivers) >= limit:
            raise Busy(
                "trainings_full",
                f"{limit} trainings are running on this server, the most "
                f"PLAYGROUND_MAX_TRAININGS allows. Try again in a minute.",
                retry_after=60,
            )
        plan = await state.worker.submit(TrainPlan(record.spec, body.model_dump(mode="json")))
        for split in ("train", "test"):  # read off the worker (Fashion-MNIST: ~0.7 s, once)
            await run_in_threadpool(
                partial(load_split, body.dataset, split, params=body.dataset_params, roots=roots)
            )
        rec = await run_in_threadpool(
            state.store.trainings.create,
            record.workspace_id,
            record.id,
            record.version,
            plan["config"],
            plan["total_steps"],
        )
        manager.start(rec.id, record.workspace_id, record.id)
    return public(rec)


@router.get(
    "/{model_id}/trainings",
    response_model=TrainingList,
    responses=errors(404),
    operation_id="listTrainings",
)
async def list_trainings(record: ModelDep, request: Request) -> dict:
    """The model's trainings, oldest first."""
    store = state_of(request).store
    recs = await run_in_threadpool(store.trainings.list, record.workspace_id, record.id)
    return {"trainings": [public(r) for r in recs]}


@router.get(TID, response_model=TrainingPublic, responses=errors(404), operation_id="getTraining")
async def get_training(training_id: str, record: ModelDep, request: Request) -> dict:
    """Where a training stands: status, step, latest metrics."""
    return public(await _training(request, record, training_id))


@router.get(
    TID + "/events",
    responses={
        **errors(404),
        200: {
            "description": "Server-Sent Events: `id` is the event's number, `event` its kind "
            "(status, step, eval), `data` JSON. Resume with `Last-Event-ID` or `?after=`.",
            "content": {
                "text/event-stream": {
                    "schema": {  # one event, as a client's SSE parser gives it
                        "type": "object",
                        "properties": {
                            "id": {"type": "string", "description": "the event's number"},
                            "event": {
                                "type": "string",
                                "enum": ["status", "step", "eval", "checkpoint"],
                            },
                            "data": {"type": "string", "contentMediaType": "application/json"},
                        },
                        "required": ["data"],
                    }
                }
            },
        },
    },
    response_class=Response,  # errors are JSON; the 200 is the event stream
    operation_id="streamTrainingEvents",
)
async def training_events(
    training_id: str,
    record: ModelDep,
    request: Request,
    after: Annotated[int | None, Query(ge=0, le=2**31, description="replay after this id")] = None,
    last_event_id: Annotated[str | None, Header(max_length=20)] = None,
) -> EventSourceResponse:
    """The training's metrics as they come, from the first (or after a given id) to the end."""
    rec = await _training(request, record, training_id)
    start = after
    if start is None and last_event_id is not None:
        if not last_event_id.strip().isdigit():
            raise SpecError(
                "invalid_request", "Last-Event-ID must be an event number (the SSE id)."
            )
        start = int(last_event_id)
    state = state_of(request)
    manager, store = state.trainings, state.store

    async def stream():
        queue = manager.subscribe(rec.id)  # before the replay: no event falls in between
        seq = start or 0
        try:
            while True:
                batch = await run_in_threadpool(
                    store.trainings.events_after, rec.id, seq, REPLAY_BATCH
                )
                for number, event in batch:
                    seq = number
                    yield {"id": str(number), "event": event["kind"], "data": json.dumps(event)}
                if len(batch) < REPLAY_BATCH:
                    break
            if not manager.running(rec.id):
                return  # finished (or interrupted): everything was in the store
            while True:
                items = await queue.get()
                if items is None:  # the training ended, or this subscriber fell behind
                    tail = await run_in_threadpool(store.trainings.events_after, rec.id, seq)
                    for number, event in tail:
                        yield {"id": str(number), "event": event["kind"], "data": json.dumps(event)}
                    return
                for number, event in items:
                    if number > seq:
                        seq = number
                        yield {"id": str(number), "event": event["kind"], "data": json.dumps(event)}
        finally:
            manager.unsubscribe(rec.id, queue)

    return EventSourceResponse(stream(), ping=15, send_timeout=30)


async def _command(request: Request, record, training_id: str, verb: str) -> dict:
    rec = await _training(request, record, training_id)
    manager = state_of(request).trainings
    if verb == "pause":
        await manager.pause(rec.id)
    elif verb == "resume":
        await manager.resume(rec.id)
    elif verb == "step":
        manager.step(rec.id)
        await asyncio.sleep(0)
    else:
        await manager.cancel(rec.id)
    return public(await _training(request, record, training_id))


@router.post(
    TID + "/pause",
    response_model=TrainingPublic,
    responses=errors(404, 409),
    operation_id="pauseTraining",
)
async def pause_training(training_id: str, record: ModelDep, request: Request) -> dict:
    """Pause after the current slice; the trainer keeps its state."""
    return await _command(request, record, training_id, "pause")


@router.post(
    TID + "/resume",
    response_model=TrainingPublic,
    responses=errors(404, 409, 503),
    operation_id="resumeTraining",
)
async def resume_training(training_id: str, record: ModelDep, request: Request) -> dict:
    """Go on from where the training was paused."""
    return await _command(request, record, training_id, "resume")


@router.post(
    TID + "/step",
    response_model=TrainingPublic,
    responses=errors(404, 409, 503),
    operation_id="stepTraining",
)
async def step_training(training_id: str, record: ModelDep, request: Request) -> dict:
    """One step (one batch) of a paused training; its events come on the stream."""
    return await _command(request, record, training_id, "step")


@router.post(
    TID + "/cancel",
    response_model=TrainingPublic,
    responses=errors(404, 409),
    operation_id="cancelTraining",
)
async def cancel_training(training_id: str, record: ModelDep, request: Request) -> dict:
    """Stop for good; the model keeps the weights reached (also saved as a checkpoint)."""
    return await _command(request, record, training_id, "cancel")


@router.get(
    TID + "/checkpoints",
    response_model=CheckpointList,
    responses=errors(404),
    operation_id="listCheckpoints",
)
async def list_checkpoints(training_id: str, record: ModelDep, request: Request) -> dict:
    """The steps whose weights were saved (log-spaced: 0, 1, 2, 5, 10, 20, 50, …, last)."""
    rec = await _training(request, record, training_id)
    store = state_of(request).store
    return {
        "training": rec.id,
        "checkpoints": await run_in_threadpool(store.trainings.checkpoint_list, rec.id),
    }


@router.get(
    TID + "/checkpoints/{step}/weights",
    response_class=Response,
    responses={
        **errors(404),
        200: {"content": {"application/octet-stream": {"schema": {"type": "string"}}}},
    },
    operation_id="downloadCheckpointWeights",
)
async def checkpoint_weights(
    training_id: str,
    step: Annotated[int, PathParam(ge=0, le=2**31)],
    record: ModelDep,
    request: Request,
) -> Response:
    """The checkpoint's weights as a safetensors file."""
    rec = await _training(request, record, training_id)
    store = state_of(request).store
    data = await run_in_threadpool(store.trainings.checkpoint, rec.id, step)
    if data is None:
        raise SpecError(
            "checkpoint_not_found",
            f"This training has no checkpoint at step {step}; GET …/checkpoints lists them.",
        )
    return Response(
        data,
        media_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="{rec.id}-step{step}.safetensors"'},
    )


@router.post(
    TID + "/checkpoints/{step}/restore",
    response_model=RestoreOut,
    responses=errors(404, 409, 503),
    operation_id="restoreCheckpoint",
)
async def restore(
    training_id: str,
    step: Annotated[int, PathParam(ge=0, le=2**31)],
    record: ModelDep,
    request: Request,
) -> dict:
    """Make the model's weights those of the checkpoint at ``step`` (step 0: as initialized)."""
    rec = await _training(request, record, training_id)
    manager = state_of(request).trainings
    manager.check_idle(record.id, "restoring a checkpoint")
    out = await manager.worker.submit(
        CheckpointRestore(record.workspace_id, record.id, rec.id, step)
    )
    return {"model_id": record.id, **out}


@router.get(
    TID + "/script",
    response_class=Response,  # errors are JSON; the 200 is Python source
    responses={**errors(404), 200: {"content": {"text/x-python": {"schema": {"type": "string"}}}}},
    operation_id="getTrainingScript",
)
async def training_script(training_id: str, record: ModelDep, request: Request) -> Response:
    """A plain-PyTorch script reproducing this training bit for bit from its step-0 weights
    (GET …/checkpoints/0/weights)."""
    rec = await _training(request, record, training_id)
    state = state_of(request)
    source = await state.worker.submit(
        TrainingScript(record.spec, rec.config, record.frozen, torch.get_num_threads())
    )
    return Response(
        source,
        media_type="text/x-python",
        headers={"Content-Disposition": f'attachment; filename="train_{rec.id}.py"'},
    )
