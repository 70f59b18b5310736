"""Why did it predict that? Gradients and attribution through Captum.

Gradients of a run (a class score, or a loss against labels) are :mod:`models.gradients`.

:func:`attribute` runs one of Captum's methods on one float input: Saliency, Integrated
Gradients (steps, baseline), SmoothGrad (``NoiseTunnel`` over Saliency), Grad-CAM on a layer
with spatial maps (``LayerGradCam``, upsampled to the input with
``LayerAttribution.interpolate``) and Occlusion (window, stride). The arguments handed to
Captum are returned with the result (``captum_args``), so a caller can repeat the call.

Every cost is counted before it is spent: :func:`passes` is the number of forward passes a
method makes; :func:`check_cost` compares it, and it times the model's forward FLOPs, with
:class:`AttributionLimits`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field

from models.build import SpecModel
from models.errors import SpecError
from models.inference import Inference
from models.limits import DEFAULT_LIMITS
from models.rng import cuda_indices, seed_streams

Method = Literal["saliency", "integrated_gradients", "smoothgrad", "gradcam", "occlusion"]
METHODS: tuple[str, ...] = Method.__args__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class AttributionLimits:
    """Bounds of one attribution or gradient request; the server fills them from settings."""

    max_passes: int = 1_024  # forward(+backward) passes of one request
    max_flops: int = 50 * 10**9  # passes × the model's forward FLOPs
    max_activation_bytes: int = 256 * 2**20  # what one batched pass may hold


DEFAULT_ATTRIBUTION_LIMITS = AttributionLimits()


class AttributionOptions(BaseModel):
    """Which method, on which input and output, explaining which class, with its settings."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    method: Method
    input: str | None = Field(None, max_length=64, description="the float input (default: first)")
    output: str | None = Field(None, max_length=64, description="the output (default: first)")
    target: int | None = Field(
        None,
        ge=0,
        le=1_000_000,
        description="class index on the output's last dim (default: the predicted class)",
    )
    steps: int = Field(50, ge=1, le=100_000, description="integrated_gradients: path steps")
    baseline: float = Field(0.0, description="integrated_gradients, occlusion: the reference value")
    samples: int = Field(10, ge=1, le=100_000, description="smoothgrad: noisy copies")
    stdev: float = Field(0.15, ge=0, le=1e6, description="smoothgrad: noise standard deviation")
    seed: int = Field(0, ge=0, le=2**63 - 1, description="smoothgrad: seeds the noise")
    layer: str | None = Field(None, max_length=64, description="gradcam: a layer with maps")
    window: list[int] = Field([4, 4], min_length=1, max_length=4, description="occlusion")
    stride: list[int] = Field([2, 2], min_length=1, max_length=4, description="occlusion")


# -- forward ---------------------------------------------------------------------------------
def _pick_input(model: SpecModel, inputs: Mapping[str, torch.Tensor], name: str | None) -> str:
    name = name or model.input_names[0]
    if name not in model.input_names:
        raise SpecError(
            "invalid_input",
            f"The model has no input {name!r}; its inputs are {', '.join(model.input_names)}.",
        )
    if not inputs[name].is_floating_point():
        raise SpecError(
            "attribution_needs_float_input",
            f"Input {name!r} holds token ids (integers): no gradient reaches it. Ask for "
            "gradients at the embedding layer instead (gradients with layers: [its name]).",
        )
    return name


def output_index(model: SpecModel, name: str | None) -> int:
    if name is None:
        return 0
    if name not in model.output_names:
        raise SpecError(
            "invalid_output",
            f"The model has no output {name!r}; its outputs are {', '.join(model.output_names)}.",
        )
    return model.output_names.index(name)


def forward_fn(
    model: SpecModel,
    inputs: Mapping[str, torch.Tensor],
    input_name: str,
    output: int = 0,
) -> Callable[[torch.Tensor], torch.Tensor]:
    """``x -> the chosen output`` with the other inputs held fixed (what Captum calls)."""
    others = {k: v for k, v in inputs.items() if k != input_name}

    def fn(x: torch.Tensor) -> torch.Tensor:
        out = model.run_plan({**others, input_name: x})
        return out[output] if isinstance(out, tuple) else out

    return fn


def _layer_shapes(inference: Inference) -> dict[str, list[int]]:
    return {info.name: info.output_shape for info in inference.layers}


def check_layer(inference: Inference, name: str, purpose: str) -> list[int]:
    """The layer's inferred output shape; ``unknown_layer`` naming the layers when there is none."""
    shapes = _layer_shapes(inference)
    if name not in shapes:
        raise SpecError(
            "unknown_layer",
            f"The model has no layer {name!r} for {purpose}; its layers are {', '.join(shapes)}.",
            layer=name,
            detail={"layers": list(shapes)},
        )
    return shapes[name]


# -- cost ------------------------------------------------------------------------------------
def _window_geometry(
    opts: AttributionOptions, shape: list[int]
) -> tuple[tuple[int, ...], tuple[int, ...], int]:
    """Occlusion's window and strides over the input without its batch dim, and the count."""
    dims = shape[1:]
    if len(opts.window) > len(dims) or len(opts.stride) != len(opts.window):
        raise SpecError(
            "invalid_occlusion",
            f"window {opts.window} and stride {opts.stride} must have the same length, at most "
            f"{len(dims)} (the input is {dims} without its batch).",
        )
    lead = len(dims) - len(opts.window)
    window = tuple(dims[:lead]) + tuple(opts.window)
    stride = tuple(dims[:lead]) + tuple(opts.stride)
    count = 1
    for d, w, s in zip(dims, window, stride, strict=True):
        if w < 1 or s < 1 or w > d:
            raise SpecError(
                "invalid_occlusion",
                f"each window size must be between 1 and the input's size ({dims[lead:]}) and "
                f"each stride at least 1; got window {opts.window}, stride {opts.stride}.",
            )
        count *= (d - w) // s + 1
    return window, stride, count


def passes(opts: AttributionOptions, input_shape: list[int]) -> int:
    """Forward passes (each with its backward, but occlusion's) that the method makes."""
    if opts.method == "integrated_gradients":
        return opts.steps + 2  # the path, then the inputs and the baseline for the delta
    if opts.method == "smoothgrad":
        return opts.samples
    if opts.method == "occlusion":
        return _window_geometry(opts, input_shape)[2] + 1
    return 1


_HINTS = {
    "integrated_gradients": "Use fewer steps. ",
    "smoothgrad": "Use fewer samples. ",
    "occlusion": "Use a larger window or stride. ",
}
_WHAT = {
    "integrated_gradients": "Integrated gradients with {steps} steps: the forward passes",
    "smoothgrad": "SmoothGrad with {samples} samples: the forward passes",
    "occlusion": "Occlusion (one forward pass per window): the forward passes",
}


def check_cost(n_passes: int, flops: int, limits: AttributionLimits, what: str, hint: str) -> None:
    """Raise LimitError when passes or passes × FLOPs is over (``limit_key`` names which)."""
    DEFAULT_LIMITS.check(what, n_passes, limits.max_passes, "max_attribution_passes", hint=hint)
    DEFAULT_LIMITS.check(
        f"{what.split(':')[0]}: forward passes × FLOPs",
        n_passes * max(flops, 1),
        limits.max_flops,
        "max_attribution_flops",
        hint=hint,
    )


def _chunk(n: int, activation_bytes: int, limits: AttributionLimits) -> int:
    """How many copies of the input one batched pass may hold."""
    return max(1, min(n, limits.max_activation_bytes // max(activation_bytes, 1)))


# -- Captum ----------------------------------------------------------------------------------
def attribute(
    model: SpecModel,
    inference: Inference,
    inputs: Mapping[str, torch.Tensor],
    opts: AttributionOptions,
    limits: AttributionLimits = DEFAULT_ATTRIBUTION_LIMITS,
    *,
    baseline: torch.Tensor | None = None,
) -> dict[str, Any]:
    """Run ``opts.method`` through Captum; every cost is checked before the first pass.

    ``baseline`` (shaped like the input) replaces the constant ``opts.baseline`` for
    integrated gradients and occlusion.
    """
    from captum.attr import (
        IntegratedGradients,
        LayerAttribution,
        LayerGradCam,
        NoiseTunnel,
        Occlusion,
        Saliency,
    )

    name = _pick_input(model, inputs, opts.input)
    x = inputs[name]
    shape = list(x.shape)
    out_index = output_index(model, opts.output)
    layer_module = None
    if opts.method == "gradcam":
        if not opts.layer:
            raise SpecError("invalid_layer", "Grad-CAM needs a layer: name a convolution layer.")
        layer_shape = check_layer(inference, opts.layer, "Grad-CAM")
        if len(layer_shape) != 4 or len(shape) != 4:
            maps = [i.name for i in inference.layers if len(i.output_shape) == 4]
            raise SpecError(
                "gradcam_needs_conv_layer",
                f"Grad-CAM needs a layer with spatial maps (N, C, H, W) on an image input; "
                f"{opts.layer} gives {layer_shape}. Choose one of: {', '.join(maps) or 'none'}.",
                layer=opts.layer,
                detail={"layers": maps},
            )
        layer_module = model.get_submodule(opts.layer)
    n = passes(opts, shape)
    if opts.method in _WHAT:
        what = _WHAT[opts.method].format(steps=opts.steps, samples=opts.samples, n=n)
    else:
        what = f"{opts.method}: the forward passes"
    check_cost(n, inference.total_flops, limits, what, _HINTS.get(opts.method, ""))

    # Captum sets requires_grad itself, with a warning; the input is a leaf of its own here
    x = x.detach().clone().requires_grad_(opts.method != "occlusion")
    fn = forward_fn(model, inputs, name, out_index)
    seen: list[torch.Tensor] = []  # the model's output on ``x`` itself, computed once

    def captum_fn(t: torch.Tensor) -> torch.Tensor:
        # Captum's own forward on the input (Saliency's, Grad-CAM's, IG's delta, occlusion's
        # first) gives the output returned: no extra forward pass just for it
        out = fn(t)
        if t is x and not seen:
            seen.append(out.detach())
        return out

    classes = inference.outputs[model.output_names[out_index]][-1]
    if opts.target is None:  # the predicted class is needed before Captum runs
        with torch.no_grad():
            seen.append(fn(x))
    target = (
        opts.target if opts.target is not None else int(seen[0].reshape(-1, classes)[0].argmax())
    )
    if target >= classes:
        raise SpecError(
            "invalid_target",
            f"target {target} is out of range: the output has {classes} classes "
            f"(0..{classes - 1}).",
        )
    chunk = _chunk(n, inference.total_activation_bytes, limits)
    base: float | torch.Tensor = opts.baseline
    if baseline is not None:
        if baseline.shape != x.shape or not baseline.is_floating_point():
            raise SpecError(
                "invalid_baseline",
                f"the baseline must be a float tensor shaped like input {name!r} "
                f"({list(x.shape)}); it is {list(baseline.shape)}.",
            )
        base = baseline.to(x.device, x.dtype)
    result: dict[str, Any] = {"target": target, "passes": n}
    args: dict[str, Any] = {"target": target}
    with torch.enable_grad():
        if opts.method == "saliency":
            args.update(abs=True)
            attr = Saliency(captum_fn).attribute(x, **args)
        elif opts.method == "integrated_gradients":
            args.update(
                baselines=base, n_steps=opts.steps, internal_batch_size=chunk,
                return_convergence_delta=True,
            )  # fmt: skip
            attr, delta = IntegratedGradients(captum_fn).attribute(x, **args)
            result["delta"] = float(delta.abs().max())
        elif opts.method == "smoothgrad":
            args.update(nt_type="smoothgrad", nt_samples=opts.samples, stdevs=opts.stdev,
                        nt_samples_batch_size=chunk, abs=True)  # fmt: skip
            with torch.random.fork_rng(devices=cuda_indices(x.device)):
                seed_streams(opts.seed, cuda_indices(x.device))  # torch.manual_seed's numbers
                attr = NoiseTunnel(Saliency(captum_fn)).attribute(x, **args)
        elif opts.method == "gradcam":
            args.update(relu_attributions=True)
            raw = LayerGradCam(captum_fn, layer_module).attribute(x, **args)
            result["map"] = raw.detach()
            attr = LayerAttribution.interpolate(raw, tuple(shape[-2:]), "bilinear")
        else:
            window, stride, _ = _window_geometry(opts, shape)
            args.update(
                sliding_window_shapes=window, strides=stride, baselines=base,
                perturbations_per_eval=chunk,
            )  # fmt: skip
            attr = Occlusion(captum_fn).attribute(x, **args)
    if not seen:  # Captum never ran the input itself (SmoothGrad's noisy copies)
        with torch.no_grad():
            seen.append(fn(x))
    result["output"] = seen[0]
    result["attribution"] = attr.detach()
    result["captum_args"] = args
    return result


__all__ = [
    "METHODS",
    "AttributionLimits",
    "AttributionOptions",
    "attribute",
    "check_cost",
    "check_layer",
    "forward_fn",
    "output_index",
    "passes",
]
