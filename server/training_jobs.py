"""Training jobs: named messages with plain-data arguments and results, run on the worker.

A training crosses the worker boundary only as these messages (a training id, a time
budget), never as a closure or a live module, so the same job can run in another process
or on a Ray actor. The worker side reads the training and the model from the store by id,
keeps the running :class:`models.training.Trainer` in its own context between slices, and
saves each slice (events, checkpoints, progress) inside the job: a client hears of a step
only once it is on disk.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from models.build import Built, build
from models.errors import SpecError
from models.training import TrainConfig, Trainer, check_training
from models.weights import load_safetensors, to_safetensors
from server.errors import public
from server.workers.context import Live, WorkerContext

log = logging.getLogger("playground.training")
LATEST_KEYS = ("loss", "accuracy", "lr", "test_loss", "test_accuracy", "step", "epoch")


# -- the messages ----------------------------------------------------------------------------
@dataclass(frozen=True)
class TrainPlan:
    """Check a configuration against a model spec on the meta device; the plan as data."""

    spec: dict[str, Any]
    config: dict[str, Any]


@dataclass(frozen=True)
class TrainSlice:
    """Run a training for about ``max_seconds`` (or ``max_steps`` steps) and save it."""

    training_id: str
    max_seconds: float
    max_steps: int | None = None
    workspace_id: str = ""  # pins the job to the worker that holds the trainer


@dataclass(frozen=True)
class TrainStop:
    """Stop a training for good (cancelled): its model keeps the weights reached."""

    training_id: str
    status: str = "cancelled"
    workspace_id: str = ""


@dataclass(frozen=True)
class CheckpointRestore:
    """Make a checkpoint's weights the model's current ones (a new version)."""

    workspace_id: str
    model_id: str
    training_id: str
    step: int


# -- the handlers ------------------------------------------------------------------------------
def plan(ctx: WorkerContext, msg: TrainPlan) -> dict[str, Any]:
    config = TrainConfig.model_validate(msg.config)
    made = check_training(msg.spec, config, ctx.roots, ctx.limits)
    return {
        "total_steps": made.total_steps,
        "steps_per_epoch": made.steps_per_epoch,
        "checkpoint_steps": list(made.checkpoint_steps),
        "cost": made.cost,
        "config": config.model_dump(mode="json"),
    }


def _latest(previous: dict[str, Any], events: list[dict[str, Any]]) -> dict[str, Any]:
    latest = dict(previous)
    for event in events:
        latest.update({k: event[k] for k in LATEST_KEYS if event.get(k) is not None})
    return latest


def _trainer(ctx: WorkerContext, training_id: str) -> tuple[Trainer, Live] | None:
    """The training's trainer on this worker, made on its first slice (None: it is gone)."""
    held = ctx.trainers.get(training_id)
    if held is not None:
        return held
    rec = ctx.store.trainings.by_id(training_id)
    if rec is None or not rec.active:
        return None
    model = ctx.store.get_model(rec.workspace_id, rec.model_id)
    if model is None:
        return None
    live = ctx.live_model(model)
    config = TrainConfig.model_validate(rec.config)
    made = check_training(live.record.spec, config, ctx.roots, ctx.limits)
    trainer = Trainer(live.model, made, config, ctx.device, ctx.roots)
    ctx.trainers[training_id] = (trainer, live)
    return trainer, live


def _commit_weights(ctx: WorkerContext, live: Live) -> int:
    """Save the trained weights as a new version of the model (inside the job)."""
    latest = ctx.store.get_model(live.record.workspace_id, live.record.id)
    if latest is None:
        raise SpecError("model_not_found", "The model was deleted during training.")
    record = latest.changed(weights=to_safetensors(live.model))
    saved = ctx.commit(Live(record, live.built, live.nbytes))
    return saved.record.version


def train_slice(ctx: WorkerContext, msg: TrainSlice) -> dict[str, Any]:
    """One slice of steps; the numbered events saved, and where the training stands."""
    rec = ctx.store.trainings.by_id(msg.training_id)
    if rec is None or not rec.active:
        ctx.trainers.pop(msg.training_id, None)
        return {"status": rec.status if rec else "gone", "events": []}
    try:
        held = _trainer(ctx, msg.training_id)
        if held is None:
            return {"status": "gone", "events": []}
        trainer, live = held
        ctx.adopt(live)  # runs meanwhile see the model as it trains
        result = trainer.advance(msg.max_seconds, msg.max_steps)
        events = list(result.events)
        events += [{"kind": "checkpoint", "step": step} for step, _ in result.checkpoints]
        # the driver owns running <-> paused; a slice only starts or ends a training
        status = "paused" if rec.status == "paused" else "running"
        fields: dict[str, Any] = {}
        if result.done:
            status = fields["status"] = "done"
            version = _commit_weights(ctx, live)
            ctx.trainers.pop(msg.training_id, None)
            events.append(
                {"kind": "status", "status": "done", "step": trainer.step, "model_version": version}
            )
        elif rec.status == "queued":
            fields["status"] = "running"
            events.insert(0, {"kind": "status", "status": "running", "step": rec.step})
        numbered = ctx.store.trainings.save(
            msg.training_id,
            events=events,
            checkpoints_reached=list(result.checkpoints),
            step=trainer.step,
            epoch=trainer.epoch,
            latest=_latest(rec.latest, events),
            **fields,
        )
    except Exception as exc:
        ctx.trainers.pop(msg.training_id, None)
        message = (
            public(exc)["message"] if isinstance(exc, SpecError) else f"{type(exc).__name__}: {exc}"
        )
        if not isinstance(exc, SpecError):
            log.exception("training %s failed", msg.training_id)
        numbered = ctx.store.trainings.save(
            msg.training_id,
            events=[{"kind": "status", "status": "failed", "step": rec.step, "error": message}],
            status="failed",
            error=message,
        )
        return {"status": "failed", "events": numbered}
    return {"status": status, "step": trainer.step, "events": numbered}


def train_stop(ctx: WorkerContext, msg: TrainStop) -> dict[str, Any]:
    """Cancel: drop the trainer; the model keeps the weights reached (saved, with a
    checkpoint at that step so that the step can be gone back to)."""
    held = ctx.trainers.pop(msg.training_id, None)
    rec = ctx.store.trainings.by_id(msg.training_id)
    if rec is None or not rec.active:
        return {"status": rec.status if rec else "gone", "events": []}
    reached: list[tuple[int, bytes]] = []
    event: dict[str, Any] = {"kind": "status", "status": msg.status, "step": rec.step}
    if held is not None:
        trainer, live = held
        have = {c["step"] for c in ctx.store.trainings.checkpoint_list(msg.training_id)}
        if trainer.step not in have:
            reached.append((trainer.step, to_safetensors(live.model)))
        event["model_version"] = _commit_weights(ctx, live)
    numbered = ctx.store.trainings.save(
        msg.training_id, events=[event], checkpoints_reached=reached, status=msg.status
    )
    return {"status": msg.status, "events": numbered}


def restore_checkpoint(ctx: WorkerContext, msg: CheckpointRestore) -> dict[str, Any]:
    weights = ctx.store.trainings.checkpoint(msg.training_id, msg.step)
    if weights is None:
        steps = [c["step"] for c in ctx.store.trainings.checkpoint_list(msg.training_id)]
        raise SpecError(
            "checkpoint_not_found",
            f"This training has no checkpoint at step {msg.step}; its checkpoints are at "
            f"steps {', '.join(map(str, steps)) or '(none yet)'}.",
        )
    model = ctx.store.get_model(msg.workspace_id, msg.model_id)
    if model is None:
        raise SpecError("model_not_found", "The model was deleted.")
    live = ctx.live_model(model)
    load_safetensors(live.model, weights)
    record = live.record.changed(weights=weights)
    saved = ctx.commit(Live(record, live.built, live.nbytes))
    return {"version": saved.record.version, "step": msg.step}


def checkpoint_model(ctx: WorkerContext, live: Live, training_id: str, step: int) -> Built:
    """A copy of ``live``'s model holding a checkpoint's weights (for a run "at step k")."""
    weights = ctx.store.trainings.checkpoint(training_id, step)
    if weights is None:
        raise SpecError(
            "checkpoint_not_found",
            f"Training '{training_id}' has no checkpoint at step {step}; GET its checkpoints "
            f"to see the steps saved.",
        )
    copy = build(
        live.record.spec,
        seed=live.record.seed,
        device=ctx.device,
        inference=live.built.inference,
    )
    load_safetensors(copy.model, weights)
    copy.model.eval()
    return copy


HANDLERS = {
    TrainPlan: plan,
    TrainSlice: train_slice,
    TrainStop: train_stop,
    CheckpointRestore: restore_checkpoint,
}
