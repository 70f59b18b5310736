"""Handlers of the analysis messages: attribution, gradients, interventions, feature
visualization (``server.attribution_jobs``) and a Conv2d cell by hand."""

from __future__ import annotations

from typing import Any

import torch

from models.conv_by_hand import conv_by_hand
from models.errors import SpecError
from server import attribution_jobs as aj
from server.jobs import make_inputs
from server.ops import messages as m
from server.ops.models import at_checkpoint, on
from server.workers.context import Live, WorkerContext


def _at(ctx: WorkerContext, msg: Any, fn) -> dict[str, Any]:
    """``fn(built)`` on the live model, or on a copy at the request's checkpoint."""
    checkpoint = msg.request.checkpoint
    out = fn(at_checkpoint(ctx, on(ctx, msg), checkpoint).built)
    if checkpoint is not None:
        out["checkpoint"] = checkpoint.model_dump()
    return out


def attribute(ctx: WorkerContext, msg: m.Attribute) -> dict[str, Any]:
    return _at(ctx, msg, lambda b: aj.attribute_job(b, msg.request, ctx.settings, ctx.limits))


def gradients(ctx: WorkerContext, msg: m.Gradients) -> dict[str, Any]:
    return _at(ctx, msg, lambda b: aj.gradients_job(b, msg.request, ctx.settings, ctx.limits))


def intervene(ctx: WorkerContext, msg: m.Intervene) -> dict[str, Any]:
    return aj.intervene_job(on(ctx, msg), msg.request, ctx.settings, ctx.limits, ctx)


def featvis(ctx: WorkerContext, msg: m.FeatVis) -> dict[str, Any]:
    return aj.featvis_job(on(ctx, msg).built, msg.request, ctx.settings)


def _cell(live: Live, body: Any, settings, limits) -> dict[str, Any]:
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
    made = {n: one.tensor for n, one in make_inputs(spec, body.inputs, settings, limits).items()}
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


def conv_cell(ctx: WorkerContext, msg: m.ConvCell) -> dict[str, Any]:
    live = at_checkpoint(ctx, on(ctx, msg), msg.request.checkpoint)
    return _cell(live, msg.request, ctx.settings, ctx.limits)


HANDLERS = {
    m.Attribute: attribute,
    m.Gradients: gradients,
    m.Intervene: intervene,
    m.FeatVis: featvis,
    m.ConvCell: conv_cell,
}
