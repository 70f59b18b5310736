"""Jobs that run on the worker thread: everything here may call torch.

Route handlers validate the request, pick the job and await it through the
worker; they never touch a tensor themselves.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from models import run_gradients
from models.build import Inference, build, infer
from models.catalog import lookup
from models.errors import SpecError
from models.inputs import DEFAULT_MAKER, MadeInput, make_input
from models.introspect import parameter_table, set_requires_grad
from models.limits import Deadline, Limits
from models.probe import describe, probe
from models.spec import Spec
from models.weights import to_safetensors
from server.schemas.runs import RunRequest
from server.settings import Settings
from server.store import ModelRecord
from server.uploads import load_file
from server.workers.context import Live, WorkerContext, state_bytes


def resolve(spec: dict[str, Any], limits: Limits, budget_s: float | None = None) -> Inference:
    """Infer a spec on the meta device (the job behind /validate and model creation), within
    ``budget_s`` seconds when given (checked between layers)."""
    deadline = (
        Deadline(budget_s, "This validation", "validate_timeout_s")
        if budget_s is not None
        else None
    )
    return infer(spec, limits=limits, deadline=deadline)


# -- update: keep the weights of unchanged layers -------------------------------------------
def _full_args(layer) -> dict[str, Any]:
    return lookup(layer.type, layer.name).validate_args(layer.name, layer.args)


def update_model(
    live: Live, spec: dict[str, Any], worker: WorkerContext, limits: Limits
) -> tuple[Live, list[str], list[str]]:
    """Build the new spec; copy the state of layers whose name, type and args are unchanged."""
    inference = infer(spec, limits=limits)
    old_spec = live.built.inference.spec
    old_layers = {layer.name: layer for layer in old_spec.layers}
    built = build(inference.spec, seed=live.record.seed, device=worker.device, inference=inference)
    built.model.eval()  # resting mode, as the worker keeps every live model
    kept, fresh = [], []
    old_model = live.model
    for layer in inference.spec.layers:
        old = old_layers.get(layer.name)
        same = old is not None and old.type == layer.type and _full_args(old) == _full_args(layer)
        if same:
            built.model.get_submodule(layer.name).load_state_dict(
                old_model.get_submodule(layer.name).state_dict()
            )
            kept.append(layer.name)
        elif any(True for _ in built.model.get_submodule(layer.name).parameters()):
            fresh.append(layer.name)
    frozen = [n for n in live.record.frozen if n.split(".")[0] in kept]
    for name, param in built.model.named_parameters():
        param.requires_grad_(name not in frozen)
    record = live.record.changed(
        spec=inference.spec.model_dump(exclude_none=True),
        weights=to_safetensors(built.model) if kept else None,  # None: "as seeded"
        frozen=tuple(frozen),
        params=inference.total_params,
    )
    new_live = Live(record, built, state_bytes(built.model))
    worker.commit(new_live)
    return new_live, kept, fresh


# -- run --------------------------------------------------------------------------------------
def make_inputs(
    spec: Spec, makers: Mapping[str, Any], settings: Settings, limits: Limits
) -> dict[str, MadeInput]:
    """Every input of ``spec`` from its maker (``DEFAULT_MAKER`` where none is given), on the
    CPU: what a run, an attribution and convolution by hand feed the model."""
    unknown = [n for n in makers if n not in spec.inputs]
    if unknown:
        raise SpecError(
            "invalid_input",
            f"The model has no input {', '.join(unknown)}; its inputs are "
            f"{', '.join(spec.inputs)}.",
        )
    return {
        name: make_input(
            makers.get(name) or DEFAULT_MAKER,
            inp.shape,
            inp.dtype,
            vocab=inp.vocab,
            max_elements=limits.max_input_elements,
            max_pixels=settings.max_image_pixels,
            name=name,
            data_roots=settings.data_roots(),
        )
        for name, inp in spec.inputs.items()
    }


def run_model(
    live: Live,
    req: RunRequest,
    settings: Settings,
    limits: Limits,
    worker: WorkerContext,
    *,
    persist: bool = True,
) -> dict[str, Any]:
    """Make the inputs, check their cost, probe every captured layer, encode the result.

    A train-mode run moves BatchNorm running statistics, as in PyTorch: the new state is
    saved as a new version of the record before the result goes out (unless ``persist`` is
    off: a run of a checkpoint's copy changes nothing stored).
    """
    started = time.perf_counter()
    inference = live.built.inference
    work, cost = inference.total_work, inference
    spec = inference.spec
    made = make_inputs(spec, req.inputs, settings, limits)
    shapes = {n: list(m.tensor.shape) for n, m in made.items()}
    if shapes != inference.input_shapes:  # other shapes than declared: check them on meta first
        cost = infer(spec, input_shapes=shapes, limits=limits)
        work = cost.total_work
    capture = "all" if req.capture == "all" else [] if req.capture == "none" else req.capture
    if req.gradients is not None:  # the backward is a second pass: checked before the first
        from server.attribution_jobs import attribution_limits  # it imports this module

        per_run = attribution_limits(settings)
        run_gradients.check_cost(cost.total_flops, cost.total_activation_bytes, per_run)
    computing = time.perf_counter()
    result = probe(
        live.model,
        {n: m.tensor for n, m in made.items()},
        mode=req.mode,
        capture=capture,
        seed=req.seed,
        deadline=Deadline.for_work(work, limits),
        gradients=req.gradients,
    )
    compute_ms = (time.perf_counter() - computing) * 1000
    max_el = settings.max_display_elements if req.downsample else None
    # the inputs' exact float32 statistics are a layer's, computed in the same batch
    inputs = {n: m.tensor for n, m in made.items()}
    out = describe(
        result, encoding=req.encoding, max_elements=max_el, stats=req.stats, inputs=inputs
    )
    for n, m in made.items():
        entry = out["inputs"][n]
        entry.update(tokens=m.tokens, label=m.label)
        if m.tokens or not req.stats:  # token ids have no statistics worth showing
            entry["stats"] = None
    if result.gradients is not None:
        run_gradients.describe_gradients(
            out, result.gradients, encoding=req.encoding, max_elements=max_el, stats=req.stats
        )
    out["labels"] = spec.labels
    if persist and req.mode == "train" and next(live.model.buffers(), None) is not None:
        save_state(live, worker)
    out["compute_ms"] = compute_ms
    out["elapsed_ms"] = (time.perf_counter() - started) * 1000
    return out


def save_state(live: Live, worker: WorkerContext) -> ModelRecord:
    """Write the live model's current state into a new version of its record."""
    record = live.record.changed(weights=to_safetensors(live.model))
    worker.commit(Live(record, live.built, live.nbytes))
    return record


# -- parameters -----------------------------------------------------------------------------
def patch_grad(
    live: Live, target: str, flag: bool, worker: WorkerContext
) -> tuple[ModelRecord, list[str], dict]:
    changed = set_requires_grad(live.model, target, flag)
    frozen = tuple(n for n, p in live.model.named_parameters() if not p.requires_grad)
    record = live.record.changed(frozen=frozen)
    worker.commit(Live(record, live.built, live.nbytes))
    return record, changed, parameter_table(live.model)["totals"]


def upload_weights(
    live: Live, path: str, worker: WorkerContext, *, max_header_bytes: int = 1 << 20
) -> tuple[ModelRecord, int]:
    """Load the checked safetensors file at ``path`` (header capped at ``max_header_bytes``)
    into the model."""
    # checks everything before changing anything
    count = load_file(live.model, path, max_header_bytes=max_header_bytes)
    record = live.record.changed(weights=to_safetensors(live.model))
    worker.commit(Live(record, live.built, live.nbytes))
    return record, count
