"""Jobs of routers/attributions.py; they run on the worker thread and may call torch."""

from __future__ import annotations

import time
from typing import Any

import torch

from models.attribution import AttributionLimits, attribute
from models.build import Built
from models.errors import SpecError
from models.featvis import visualize
from models.gradients import gradients
from models.inputs import MadeInput
from models.interventions import check, intervened, patch_sources
from models.limits import Limits
from models.probe import model_device
from models.stats import tensor_stats, tensor_stats_many
from models.tensors import encode
from server import jobs
from server.schemas.attributions import (
    AttributeRequest,
    FeatVisRequest,
    GradientsRequest,
    InterveneRequest,
)
from server.settings import Settings
from server.workers.context import Live, WorkerContext


def attribution_limits(settings: Settings) -> AttributionLimits:
    return AttributionLimits(
        max_passes=settings.max_attribution_passes,
        max_flops=settings.max_attribution_flops,
        max_activation_bytes=settings.max_activation_bytes,
    )


def make_inputs(
    built: Built, makers: dict[str, Any], settings: Settings, limits: Limits
) -> dict[str, MadeInput]:
    """Every input of the model from its maker (missing ones: jobs.DEFAULT_MAKER), on the
    model's device, at the declared shapes (other shapes are a run's business)."""
    made = jobs.make_inputs(built.inference.spec, makers, settings, limits)
    device = model_device(built.model)
    for one in made.values():
        if one.tensor.device != device:  # each torch call costs ~10 µs in a request
            one.tensor = one.tensor.to(device)
    shapes = {n: list(m.tensor.shape) for n, m in made.items()}
    if shapes != built.inference.input_shapes:
        raise SpecError(
            "input_shape_mismatch",
            f"attribution runs at the declared input shapes {built.inference.input_shapes}; "
            f"the inputs made are {shapes}.",
        )
    return made


def _payload(t: torch.Tensor, encoding: str, max_el: int | None = None) -> dict[str, Any]:
    return {"tensor": encode(t, encoding, max_el), "stats": tensor_stats(t)}


def _payloads(
    ts: dict[str, torch.Tensor], encoding: str, max_el: int | None = None, stats: bool = True
) -> dict[str, dict[str, Any]]:
    """``{name: _payload(t)}``, the statistics of all of them in one batch (small CPU tensors
    share one NumPy pass: ``tensor_stats_many``), or none."""
    if not stats:
        return {n: {"tensor": encode(t, encoding, max_el)} for n, t in ts.items()}
    summaries = tensor_stats_many(list(ts.values()))
    return {
        n: {"tensor": encode(t, encoding, max_el), "stats": st}
        for (n, t), st in zip(ts.items(), summaries, strict=True)
    }


def _plain(v: Any) -> Any:
    if isinstance(v, torch.Tensor):  # the baseline input, sent back in words only
        return f"tensor {list(v.shape)}"
    return list(v) if isinstance(v, tuple) else v


def _inputs_out(made: dict[str, MadeInput], encoding: str) -> dict[str, Any]:
    return {n: {"tensor": encode(m.tensor, encoding), "tokens": m.tokens} for n, m in made.items()}


def attribute_job(
    built: Built, req: AttributeRequest, settings: Settings, limits: Limits
) -> dict[str, Any]:
    started = time.perf_counter()
    made = make_inputs(built, req.inputs, settings, limits)
    xs = {n: m.tensor for n, m in made.items()}
    baseline = None
    if req.baseline_input is not None:
        name = req.input or built.model.input_names[0]
        made_base = make_inputs(built, {name: req.baseline_input}, settings, limits)
        baseline = made_base[name].tensor
    # the request is an AttributionOptions (its subclass): no copy to make
    computing = time.perf_counter()
    res = attribute(
        built.model, built.inference, xs, req, attribution_limits(settings), baseline=baseline
    )
    compute_ms = (time.perf_counter() - computing) * 1000
    maps = {k: res[k] for k in ("attribution", "map") if k in res}
    maps = _payloads(maps, req.encoding, stats=req.stats)
    out = {
        "method": req.method,
        "target": res["target"],
        "passes": res["passes"],
        **maps,  # the attribution, and Grad-CAM's map at the layer's size
        "output": encode(res["output"], req.encoding),
        "labels": built.inference.spec.labels,
        "inputs": _inputs_out(made, req.encoding),
        "captum": {k: _plain(v) for k, v in res["captum_args"].items()},
    }
    if "delta" in res:
        out["delta"] = res["delta"]
    out["compute_ms"] = compute_ms
    out["elapsed_ms"] = (time.perf_counter() - started) * 1000
    return out


def gradients_job(
    built: Built, req: GradientsRequest, settings: Settings, limits: Limits
) -> dict[str, Any]:
    started = time.perf_counter()
    made = make_inputs(built, req.inputs, settings, limits)
    layers = [n for n, _, _ in built.model.plan] if req.layers == "all" else []
    layers = req.layers if isinstance(req.layers, list) else layers
    computing = time.perf_counter()
    res = gradients(
        built.model,
        {n: m.tensor for n, m in made.items()},
        layers=layers,
        params=req.parameters,
        target=req.target,
        loss=req.loss,
        output=req.output,
    )
    compute_ms = (time.perf_counter() - computing) * 1000
    max_el = settings.max_display_elements if req.downsample else None

    return {
        "inputs": _payloads(res["inputs"], req.encoding, max_el, req.stats),
        "activations": _payloads(res["activations"], req.encoding, max_el, req.stats),
        "parameters": _payloads(res["parameters"], req.encoding, max_el, req.stats),
        "output": encode(res["output"], req.encoding),
        "target": res["target"],
        "objective": res["objective"],
        "labels": built.inference.spec.labels,
        "compute_ms": compute_ms,
        "elapsed_ms": (time.perf_counter() - started) * 1000,
    }


def intervene_job(
    live: Live, req: InterveneRequest, settings: Settings, limits: Limits, worker: WorkerContext
) -> dict[str, Any]:
    """A run (jobs.run_model, nothing saved) with the interventions' hooks in place."""
    built = live.built
    check(built.inference, req.interventions)
    sources = {}
    for i, iv in enumerate(req.interventions):
        if iv.op == "patch":
            made = make_inputs(built, iv.source or {}, settings, limits)
            sources[i] = {n: m.tensor for n, m in made.items()}
    patches = patch_sources(built.model, req.interventions, sources)
    with intervened(
        built.model, req.interventions, patches, max_elements=limits.max_input_elements
    ):
        return jobs.run_model(live, req, settings, limits, worker, persist=False)


def featvis_job(built: Built, req: FeatVisRequest, settings: Settings) -> dict[str, Any]:
    started = time.perf_counter()
    res = visualize(
        built.model,
        built.inference,
        req,
        attribution_limits(settings),
        max_seconds=settings.max_featvis_seconds,
    )
    return {
        "input": _payload(res["input"], req.encoding),
        "objective": res["objective"],
        "steps": res["steps"],
        "elapsed_ms": (time.perf_counter() - started) * 1000,
    }
