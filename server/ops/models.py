"""Handlers of the model messages: create, read, update, summary, code, validate, run."""

from __future__ import annotations

from typing import Any

from models.codegen import to_python
from models.introspect import module_tree, summary
from server import jobs
from server.ops import messages as m
from server.records import ModelRecord
from server.training_jobs import checkpoint_model
from server.workers.context import Live, WorkerContext


def public(live: Live) -> dict[str, Any]:
    """The model as the API shows it (``ModelPublic`` less the route's extras)."""
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
    }


def on(ctx: WorkerContext, msg: m.OnModel) -> Live:
    return ctx.live(msg.workspace_id, msg.model_id, msg.version)


def create(ctx: WorkerContext, msg: m.Create) -> dict[str, Any]:
    inference = jobs.resolve(msg.spec, ctx.limits)
    record = ModelRecord(
        id=msg.model_id,
        workspace_id=msg.workspace_id,
        spec=inference.spec.model_dump(exclude_none=True),
        seed=msg.seed,
        params=inference.total_params,
        preset=msg.preset,
    )
    return public(ctx.commit(ctx.load(record)))


def read(ctx: WorkerContext, msg: m.Read) -> dict[str, Any]:
    return public(on(ctx, msg))


def update(ctx: WorkerContext, msg: m.Update) -> dict[str, Any]:
    live, kept, fresh = jobs.update_model(on(ctx, msg), msg.spec, ctx, ctx.limits)
    return {**public(live), "kept": kept, "reinitialized": fresh}


def model_summary(ctx: WorkerContext, msg: m.Summary) -> dict[str, Any]:
    live = on(ctx, msg)
    inference = live.built.inference
    return {
        "module_tree": module_tree(live.model),
        "layers": summary(live.model, inference),
        "total_params": inference.total_params,
        "trainable_params": sum(p.numel() for p in live.model.parameters() if p.requires_grad),
        "total_activation_bytes": inference.total_activation_bytes,
        "total_flops": inference.total_flops,
        "total_work": inference.total_work,
    }


def code(ctx: WorkerContext, msg: m.Code) -> str:
    live = on(ctx, msg)
    return to_python(live.built.inference.spec, live.built.inference)


def at_checkpoint(ctx: WorkerContext, live: Live, checkpoint: Any) -> Live:
    """``live`` itself, or a copy holding a training's checkpoint (``CheckpointRef``)."""
    if checkpoint is None:
        return live
    copy = checkpoint_model(ctx, live, checkpoint.training, checkpoint.step)
    return Live(live.record, copy, live.nbytes)


def run(ctx: WorkerContext, msg: m.Run) -> dict[str, Any]:
    req = msg.request
    live = on(ctx, msg)
    if req.checkpoint is None:
        return jobs.run_model(live, req, ctx.settings, ctx.limits, ctx)
    at_step = at_checkpoint(ctx, live, req.checkpoint)
    out = jobs.run_model(at_step, req, ctx.settings, ctx.limits, ctx, persist=False)
    out["checkpoint"] = {"training": req.checkpoint.training, "step": req.checkpoint.step}
    return out


HANDLERS = {
    m.Create: create,
    m.Read: read,
    m.Update: update,
    m.Summary: model_summary,
    m.Code: code,
    m.Run: run,
}
