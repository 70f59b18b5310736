"""Handlers of the parameter messages: the table, one parameter, freezing, weights in and out."""

from __future__ import annotations

import tempfile
from typing import Any

from models.introspect import parameter_table, parameter_values
from models.stats import tensor_stats
from models.tensors import encode
from models.weights import to_safetensors
from server import jobs
from server.ops import messages as m
from server.ops.models import on
from server.training_jobs import checkpoint_model
from server.workers.context import WorkerContext


def parameters(ctx: WorkerContext, msg: m.Parameters) -> dict[str, Any]:
    live = on(ctx, msg)
    if msg.training is None or msg.step is None:
        return parameter_table(live.model)
    copy = checkpoint_model(ctx, live, msg.training, msg.step).model
    frozen = {n for n, p in live.model.named_parameters() if not p.requires_grad}
    for name, param in copy.named_parameters():
        param.requires_grad_(name not in frozen)
    return {**parameter_table(copy), "checkpoint": {"training": msg.training, "step": msg.step}}


def parameter(ctx: WorkerContext, msg: m.Parameter) -> dict[str, Any]:
    model = on(ctx, msg).model
    values = parameter_values(model, msg.name)
    return {
        "name": msg.name,
        "requires_grad": bool(model.get_parameter(msg.name).requires_grad),
        "tensor": encode(values, msg.encoding),  # type: ignore[arg-type]
        "stats": tensor_stats(values),
    }


def set_grad(ctx: WorkerContext, msg: m.SetGrad) -> dict[str, Any]:
    _, changed, totals = jobs.patch_grad(on(ctx, msg), msg.name, msg.requires_grad, ctx)
    return {"changed": changed, "totals": totals}


def weights_out(ctx: WorkerContext, msg: m.WeightsOut) -> bytes:
    return to_safetensors(on(ctx, msg).model)


def weights_in(ctx: WorkerContext, msg: m.WeightsIn) -> dict[str, Any]:
    if msg.data is None:  # the server's own spooled file, on this machine
        return _weights_in(ctx, msg, msg.path)
    with tempfile.NamedTemporaryFile(suffix=".safetensors") as file:  # sent from afar
        file.write(msg.data)
        file.flush()
        return _weights_in(ctx, msg, file.name)


def _weights_in(ctx: WorkerContext, msg: m.WeightsIn, path: str) -> dict[str, Any]:
    saved, count = jobs.upload_weights(
        on(ctx, msg), path, ctx, max_header_bytes=msg.max_header_bytes
    )
    return {"tensors": count, "version": saved.version}


HANDLERS = {
    m.Parameters: parameters,
    m.Parameter: parameter,
    m.SetGrad: set_grad,
    m.WeightsOut: weights_out,
    m.WeightsIn: weights_in,
}
