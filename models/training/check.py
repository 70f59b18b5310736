"""check_training: everything about a training checked on the meta device before it runs.

The dataset exists and is available, its samples (after the transforms) fit the model's
input, the loss fits the model's output and the dataset's targets, the optimizer and the
schedule take their args, the batch fits the split, and the whole cost (steps × batch ×
forward and backward FLOPs, plus the evaluations) is under ``Limits.max_train_flops``.
Every failure is a SpecError whose ``detail["field"]`` names the request field to change.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from models.build import infer
from models.datasets import DATASETS as _DATASETS
from models.datasets import (
    DataRoots,
    DatasetInfo,
    availability,
    load_split,
    split_size,
    transformed_shape,
)
from models.datasets.transforms import Scale
from models.errors import LimitError, SpecError, fmt_shape
from models.inference import Inference
from models.limits import Limits
from models.spec import Spec, parse_spec
from models.training.config import TrainConfig, parse_config
from models.training.options import LOSSES, OPTIMIZERS, SCHEDULES, lookup, validate_args

Target = Literal["index", "binary", "onehot", "value"]
REGRESSION_LOSSES = ("MSELoss", "L1Loss", "SmoothL1Loss", "HuberLoss")
BACKWARD_FACTOR = 2  # backward ≈ twice the forward's FLOPs (the usual estimate)
EVAL_CHUNK = 500  # test samples per forward while evaluating


@dataclass
class TrainPlan:
    """What check_training found: sizes, steps, targets, checked args and the cost."""

    dataset: DatasetInfo
    input_name: str
    sample_shape: tuple[int, ...]  # after transforms
    batched: bool  # the model input has a batch dimension in front of the sample
    train_size: int
    test_size: int
    steps_per_epoch: int
    total_steps: int
    eval_every: int
    checkpoint_steps: list[int]
    target: Target  # how labels become the loss's target
    n_classes: int
    output_shape: list[int]  # for the checked batch
    optimizer_args: dict[str, Any]
    loss_args: dict[str, Any]
    schedule_args: dict[str, Any]
    cost: dict[str, int] = field(default_factory=dict)

    def public(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset.name,
            "input": self.input_name,
            "sample_shape": list(self.sample_shape),
            "train_size": self.train_size,
            "test_size": self.test_size,
            "steps_per_epoch": self.steps_per_epoch,
            "total_steps": self.total_steps,
            "eval_every": self.eval_every,
            "checkpoint_steps": self.checkpoint_steps,
            "cost": self.cost,
        }


def log_steps(total: int, most: int) -> list[int]:
    """0, 1, 2, 5, 10, 20, 50, … below ``total``, and ``total``; at most ``most`` of them.

    When there are more, 0 and the last stay and the rest are thinned evenly (in log scale).
    """
    steps = [0]
    decade = 1
    while decade < total:
        steps += [s for s in (decade, 2 * decade, 5 * decade) if s < total]
        decade *= 10
    steps.append(total)
    if len(steps) > most:
        inner = steps[1:-1]
        keep = most - 2
        picked = (
            [inner[round(i * (len(inner) - 1) / (keep - 1))] for i in range(keep)]
            if keep > 1
            else inner[-1:]
            if keep == 1
            else []
        )
        steps = [0, *sorted(set(picked)), total]
    return steps


def _bad(code: str, message: str, field_name: str, **detail: Any) -> SpecError:
    return SpecError(code, message, detail={"field": field_name, **detail})


def _input(spec: Spec, config: TrainConfig) -> str:
    names = list(spec.inputs)
    if config.input is not None:
        if config.input not in spec.inputs:
            raise _bad(
                "unknown_input",
                f"{spec.name} has no input {config.input!r}; its inputs are {', '.join(names)}",
                "input",
            )
        if len(names) > 1:
            raise _bad(
                "too_many_inputs",
                f"training feeds one input; {spec.name} has {len(names)} ({', '.join(names)})",
                "input",
            )
        return config.input
    if len(names) != 1:
        raise _bad(
            "too_many_inputs",
            f"training feeds one input; {spec.name} has {len(names)} ({', '.join(names)})",
            "input",
        )
    return names[0]


def _fits(declared: list[int], sample: tuple[int, ...]) -> bool:
    return len(declared) == len(sample) and all(
        s < 0 or d == s for d, s in zip(declared, sample, strict=True)
    )


def _shape(shape) -> str:
    return "×".join("L" if int(d) < 0 else str(int(d)) for d in shape)


def _shape_hint(declared: list[int], sample: tuple[int, ...]) -> str:
    inner = declared[1:]
    if (
        len(inner) == len(sample) >= 2
        and inner[:-2] == list(sample[:-2])
        and inner[-1] == inner[-2]
        and inner[-1] > max(sample[-2:])
    ):
        return f"add the pad-to-{inner[-1]} transform or change the input"
    if len(inner) == 1 and inner[0] == math.prod(sample):
        return "add the flatten transform or change the input"
    if len(sample) == 1 and math.prod(inner) == sample[0]:
        return "remove the flatten transform or change the input"
    return f"change the input's shape to 1×{_shape(sample)}"


def _placement(spec: Spec, name: str, info: DatasetInfo, sample: tuple[int, ...]) -> bool:
    """True when the input is batched (B, *sample); False when it is one sample (tagging)."""
    inp = spec.inputs[name]
    declared = list(inp.shape)
    dtype = getattr(inp, "dtype", "float32") or "float32"
    if (dtype == "int64") != (info.dtype == "int64"):
        raise _bad(
            "dtype_mismatch",
            f"{spec.name}'s input {name} is {dtype}; {info.name} gives {info.dtype} samples: "
            f"choose a dataset of {dtype} samples or change the input's dtype",
            "dataset",
        )
    if len(declared) == len(sample) + 1 and _fits(declared[1:], sample):
        return True
    if _fits(declared, sample) and any(s < 0 for s in sample):
        return False
    raise _bad(
        "shape_mismatch",
        f"{spec.name} reads {fmt_shape(declared)}; {info.name} gives {_shape(sample)}: "
        f"{_shape_hint(declared, sample)}",
        "transforms",
        expected=declared,
        actual=list(sample),
    )


def _target(loss: str, info: DatasetInfo, out: list[int], last: str, batched: bool) -> Target:
    n = len(info.classes)
    per = out[-1] if out else 0
    if info.task == "regression":
        if loss not in REGRESSION_LOSSES:
            raise _bad(
                "loss_mismatch",
                f"{loss} needs class labels, but {info.name} is a regression set (its targets are "
                f"numbers): use {', '.join(REGRESSION_LOSSES)}",
                "loss.name",
            )
        if len(out) != 2 or per != 1:
            raise _bad(
                "loss_mismatch",
                f"{info.name} has one number per sample; {last} gives {fmt_shape(out)}: "
                "make the last layer give 1 value per sample (B×1)",
                "loss.name",
            )
        return "value"
    if len(out) != 2:
        what = "per word" if info.task == "tagging" else "per sample"
        raise _bad(
            "loss_mismatch",
            f"{loss} needs one row of scores {what} (2-D output); {last} gives {fmt_shape(out)}",
            "loss.name",
        )
    if loss in ("CrossEntropyLoss", "NLLLoss") or per != 1:
        if per != n:
            raise _bad(
                "loss_mismatch",
                f"{last} gives {per} scores per {'word' if info.task == 'tagging' else 'sample'}; "
                f"{info.name} has {n} classes: set its out_features to {n}",
                "loss.name",
                expected=n,
                actual=per,
            )
        return "index" if loss in ("CrossEntropyLoss", "NLLLoss") else "onehot"
    if n != 2:
        raise _bad(
            "loss_mismatch",
            f"{last} gives 1 score per sample, which fits 2 classes; {info.name} has {n}: "
            f"set its out_features to {n} and use CrossEntropyLoss",
            "loss.name",
        )
    return "binary"


def _check_args(config: TrainConfig, total: int) -> tuple[dict, dict, dict]:
    opt = lookup(OPTIMIZERS, config.optimizer.name, "optimizer", "optimizer.name")
    opt_args = validate_args(opt, config.optimizer.args, "optimizer.args")
    loss = lookup(LOSSES, config.loss.name, "loss", "loss.name")
    loss_args = validate_args(loss, config.loss.args, "loss.args")
    sched = lookup(SCHEDULES, config.schedule.name, "schedule", "schedule.name")
    sched_args = validate_args(sched, config.schedule.args, "schedule.args")
    if sched.name == "cosine" and sched_args["T_max"] is None:
        sched_args["T_max"] = total
    if sched.name == "onecycle":
        if sched_args["max_lr"] is None:
            sched_args["max_lr"] = opt_args["lr"]
        sched_args["total_steps"] = total
    probe = torch.zeros(1, requires_grad=True)
    try:  # torch's own checks (nesterov needs momentum, …), on a throwaway parameter
        optimizer = opt.cls([probe], **opt_args)
    except (ValueError, TypeError) as exc:
        raise _bad("invalid_training_arg", f"{opt.name}: {exc}", "optimizer.args") from None
    if sched.cls is not None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                sched.cls(optimizer, **sched_args)
        except (ValueError, TypeError) as exc:
            raise _bad("invalid_training_arg", f"{sched.name}: {exc}", "schedule.args") from None
    return opt_args, loss_args, sched_args


def check_training(
    spec: Spec | dict[str, Any],
    config: TrainConfig | dict[str, Any],
    roots: DataRoots,
    limits: Limits,
) -> TrainPlan:
    """Check a training on the meta device and plan it; nothing is loaded or allocated."""
    config = parse_config(config)
    spec = parse_spec(spec, max_layers=limits.max_layers)
    info = _DATASETS.get(config.dataset)
    if info is None:
        raise _bad(
            "unknown_dataset",
            f"There is no dataset {config.dataset!r}. Known datasets: {', '.join(_DATASETS)}.",
            "dataset",
        )
    reason = availability(info.name, roots)
    if reason is not None:
        raise SpecError("dataset_unavailable", reason, detail={"field": "dataset"})
    train_size = split_size(info.name, "train", config.dataset_params)
    test_size = split_size(info.name, "test", config.dataset_params)
    if any(isinstance(t, Scale) for t in config.transforms) and info.value_range is None:
        raise _bad(
            "invalid_transform",
            f"scale needs a dataset with a known value range; {info.name} has none: "
            "use normalize instead",
            "transforms",
        )
    sample = transformed_shape(info.sample_shape, config.transforms)
    name = _input(spec, config)
    batched = _placement(spec, name, info, sample)
    if not batched and config.transforms:
        raise _bad(
            "invalid_transform",
            f"{info.name}'s samples are token sequences: remove the transforms",
            "transforms",
        )
    if not batched and config.batch_size != 1:
        raise _bad(
            "invalid_batch_size",
            f"{spec.name} reads one {info.name} sample at a time: set batch_size to 1",
            "batch_size",
        )
    if config.batch_size > train_size:
        raise _bad(
            "invalid_batch_size",
            f"batch_size {config.batch_size} is larger than {info.name}'s train split "
            f"({train_size:,} samples): use at most {train_size:,}",
            "batch_size",
        )
    if info.vocab:
        vocab = spec.inputs[name].vocab
        if vocab is None or list(vocab[: len(info.vocab)]) != list(info.vocab):
            raise _bad(
                "vocab_mismatch",
                f"{info.name}'s token ids index its vocabulary ({', '.join(info.vocab)}); "
                f"declare the same vocab on input {name}",
                "dataset",
            )

    steps_per_epoch = math.ceil(train_size / config.batch_size)
    total = config.steps if config.steps is not None else (config.epochs or 1) * steps_per_epoch
    opt_args, loss_args, sched_args = _check_args(config, total)

    longest = 0 if batched else max(len(x) for x in load_split(info.name, "train").x)
    shape = [config.batch_size, *sample] if batched else [longest if d < 0 else d for d in sample]
    inference: Inference = infer(spec, input_shapes={name: shape}, limits=limits)
    if len(inference.outputs) != 1:
        raise _bad(
            "too_many_outputs",
            f"training needs one output; {spec.name} has {len(inference.outputs)} "
            f"({', '.join(inference.outputs)})",
            "loss.name",
        )
    ((last, out),) = inference.outputs.items()
    target = _target(config.loss.name, info, list(out), last, batched)

    fwd = inference.total_flops  # one batch (or the longest sentence)
    eval_every = config.eval_every or steps_per_epoch
    evals = total // eval_every + (total % eval_every != 0)
    eval_batches = math.ceil(test_size / config.batch_size) if batched else test_size
    per_eval = fwd * eval_batches
    cost = {
        "forward_flops_per_step": fwd,
        "flops_per_step": fwd * (1 + BACKWARD_FACTOR),
        "eval_flops": per_eval * evals,
        "total_flops": fwd * (1 + BACKWARD_FACTOR) * total + per_eval * evals,
    }
    limits.check(
        "The training's cost in FLOPs (steps × batch × forward and backward, plus evaluations)",
        cost["total_flops"],
        limits.max_train_flops,
        "max_train_flops",
        hint="Train for fewer steps or epochs, or use a smaller model. ",
    )
    state_bytes = 4 * inference.total_params + 1024  # float32 weights; buffers are small
    most = min(config.checkpoints, limits.max_checkpoint_bytes // max(state_bytes, 1))
    if most < 2:
        raise LimitError(
            f"two checkpoints (step 0 and the last) would take {2 * state_bytes:,} bytes; the "
            f"limit is {limits.max_checkpoint_bytes:,}. Use a smaller model.",
            detail={
                "field": "checkpoints",
                "limit": limits.max_checkpoint_bytes,
                "actual": 2 * state_bytes,
                "limit_key": "max_checkpoint_bytes",
            },
        )
    return TrainPlan(
        info, name, sample, batched, train_size, test_size, steps_per_epoch, total,
        eval_every, log_steps(total, most), target, len(info.classes), list(out),
        opt_args, loss_args, sched_args, cost,
    )  # fmt: skip
