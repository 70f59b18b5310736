"""Models of a workspace: create from a spec or preset, read, replace, delete, summarize."""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Response

from models.codegen import to_python
from models.errors import LimitError
from models.introspect import module_tree, summary
from models.presets import get_preset
from server import jobs
from server.deps import ModelDep, StateDep, WorkspaceDep
from server.routing import JsonRoute
from server.schemas.common import errors
from server.schemas.models import (
    CodeOut,
    ModelCreate,
    ModelList,
    ModelPublic,
    ModelUpdate,
    SummaryOut,
)
from server.store import ModelRecord
from server.worker import Live

router = APIRouter(prefix="/api/models", tags=["models"], route_class=JsonRoute)


def _fresh_seed() -> int:
    return secrets.randbelow(2**31)


def public(live: Live, **extra) -> dict:
    rec = live.record
    inference = live.built.inference
    return {
        "id": rec.id,
        "name": rec.name,
        "seed": rec.seed,
        "version": rec.version,
        "spec": rec.spec,
        "summary": inference.to_dict(),
        "created": rec.created,
        "updated": rec.updated,
        "labels": inference.spec.labels,
        "preset": rec.preset,
        **extra,
    }


@router.post(
    "",
    status_code=201,
    response_model=ModelPublic,
    responses=errors(404, 409, 413, 503),
    operation_id="createModel",
)
async def create_model(body: ModelCreate, ws: WorkspaceDep, state: StateDep) -> dict:
    """Build a model from a spec or a preset; with a seed its weights are reproducible."""
    limit = state.settings.max_models_per_workspace
    if state.store.count_models(ws.id) >= limit:
        raise LimitError(
            f"This workspace already holds {limit} models, its limit. Delete one first.",
            detail={"limit": limit, "limit_key": "max_models_per_workspace"},
        )
    preset = get_preset(body.preset) if body.preset else None
    spec = preset.spec if preset else body.spec
    seed = body.seed if body.seed is not None else preset.seed if preset else _fresh_seed()
    inference = await state.worker.call(jobs.resolve, spec, state.limits)
    record = ModelRecord(
        id=state.store.new_model_id(),
        workspace_id=ws.id,
        spec=inference.spec.model_dump(exclude_none=True),
        seed=seed,
        params=inference.total_params,
        preset=preset.name if preset else None,
    )
    live = await state.worker.with_model(record, state.worker.commit)
    return public(live)


@router.get("", response_model=ModelList, operation_id="listModels")
def list_models(ws: WorkspaceDep, state: StateDep) -> dict:
    """The workspace's models, oldest first."""
    models = [
        {
            "id": r.id,
            "name": r.name,
            "version": r.version,
            "layers": len(r.spec["layers"]),
            "total_params": r.params,
            "updated": r.updated,
        }
        for r in state.store.list_models(ws.id)
    ]
    return {"models": models, "limit": state.settings.max_models_per_workspace}


@router.get(
    "/{model_id}",
    response_model=ModelPublic,
    responses=errors(404, 409, 503),
    operation_id="getModel",
)
async def read_model(record: ModelDep, state: StateDep) -> dict:
    """One model: its resolved spec, seed, version and per-layer inference."""
    live = await state.worker.with_model(record, lambda live: live)
    return public(live)


@router.put(
    "/{model_id}",
    response_model=ModelPublic,
    responses=errors(404, 409, 413, 503),
    operation_id="replaceModel",
)
async def replace_model(body: ModelUpdate, record: ModelDep, state: StateDep) -> dict:
    """A new spec: layers with the same name, type and args keep their weights."""
    state.trainings.check_idle(record.id, "a new spec")
    live, kept, fresh = await state.worker.with_model(
        record, lambda live: jobs.update_model(live, body.spec, state.worker, state.limits)
    )
    return public(live, kept=kept, reinitialized=fresh)


@router.delete("/{model_id}", status_code=204, responses=errors(404), operation_id="deleteModel")
def delete_model(record: ModelDep, ws: WorkspaceDep, state: StateDep) -> Response:
    """Delete a model and drop it from memory."""
    state.store.delete_model(ws.id, record.id)
    state.worker.forget(record.id)
    return Response(status_code=204)


@router.get(
    "/{model_id}/summary",
    response_model=SummaryOut,
    responses=errors(404, 409, 503),
    operation_id="getModelSummary",
)
async def model_summary(record: ModelDep, state: StateDep) -> dict:
    """The module tree exactly as print(model) shows it, and one row per layer."""

    def job(live: Live) -> dict:
        rows = summary(live.model, live.built.inference)
        inference = live.built.inference
        return {
            "module_tree": module_tree(live.model),
            "layers": rows,
            "total_params": inference.total_params,
            "trainable_params": sum(p.numel() for p in live.model.parameters() if p.requires_grad),
            "total_activation_bytes": inference.total_activation_bytes,
            "total_flops": inference.total_flops,
            "total_work": inference.total_work,
        }

    return await state.worker.with_model(record, job)


@router.get(
    "/{model_id}/code",
    response_model=CodeOut,
    responses=errors(404, 409, 503),
    operation_id="getModelCode",
)
async def model_code(record: ModelDep, state: StateDep) -> dict:
    """The model as a readable, self-contained nn.Module class in Python."""
    code = await state.worker.with_model(
        record, lambda live: to_python(live.built.inference.spec, live.built.inference)
    )
    return {"class_name": record.name, "code": code}
