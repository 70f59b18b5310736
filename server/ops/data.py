"""Handlers of the data messages: a dataset's sample, a 2-D set's points, a training script."""

from __future__ import annotations

from typing import Any

from models.datasets import get_sample, load_split
from models.tensors import encode
from models.training.script import training_script
from server.ops import messages as m
from server.workers.context import WorkerContext

MAX_POINTS = 5000


def sample(ctx: WorkerContext, msg: m.DatasetSample) -> dict[str, Any]:
    """The sample as stored (before transforms), encoded, and its label."""
    x, label = get_sample(msg.name, msg.split, msg.index, roots=ctx.roots)  # type: ignore[arg-type]
    return {"tensor": encode(x, "f32"), "label": label}


def points(ctx: WorkerContext, msg: m.DatasetPoints) -> dict[str, Any]:
    data = load_split(msg.name, msg.split, roots=ctx.roots)  # type: ignore[arg-type]
    n = min(len(data), MAX_POINTS)
    return {
        "dataset": msg.name,
        "split": msg.split,
        "x": data.x[:n].tolist(),  # type: ignore[union-attr]
        "label": data.y[:n].reshape(n, -1)[:, 0].tolist(),  # type: ignore[union-attr]
    }


def script(ctx: WorkerContext, msg: m.TrainingScript) -> str:
    return training_script(
        msg.spec,
        msg.config,
        frozen=msg.frozen,
        roots=ctx.roots,
        limits=ctx.limits,
        threads=msg.threads,
    )


HANDLERS = {
    m.DatasetSample: sample,
    m.DatasetPoints: points,
    m.TrainingScript: script,
}
