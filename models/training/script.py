"""Export a training as a plain torch script that reproduces it bit for bit on the CPU.

The script holds the model class (from :func:`models.codegen.to_python`) and the tutorials'
loop written out: the same data order (``torch.randperm`` on a ``torch.Generator(seed)``
each epoch), the same global seed (dropout), transforms as torch expressions, the same
optimizer, schedule, clipping and loss. Only the data comes from the playground's offline
loader (``models.datasets.load_split``: numpy reading the dataset's files). Run it as
``python train.py INIT.safetensors OUT.safetensors`` with the weights at step 0 (checkpoint
0 of the training) to get the weights the playground ends with.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import torch

from models.codegen import to_python
from models.datasets import DEFAULT_ROOTS, DataRoots, transformed_shape
from models.datasets.transforms import transform_source
from models.inference import infer
from models.limits import DEFAULT_LIMITS, Limits
from models.training.check import check_training
from models.training.config import TrainConfig, parse_config
from models.training.options import LOSSES, OPTIMIZERS, SCHEDULES, Option

_I = "    "


def _call(prefix: str, first: str, option: Option, args: dict[str, Any], extra=()) -> str:
    """``prefix + Class(first, arg=value, …)`` with only the args that differ from torch's."""
    defaults = {a.name: a.default for a in option.args}
    parts = [first] if first else []
    parts += [f"{k}={v!r}" for k, v in args.items() if k in extra or v != defaults.get(k)]
    return f"{prefix}{option.cls.__name__}({', '.join(parts)})"


def _model_source(spec: dict[str, Any], limits: Limits) -> tuple[str, str]:
    source = to_python(spec, infer(spec, limits=limits))
    source = source.split('\n\nif __name__ == "__main__":')[0].rstrip() + "\n"
    lines = source.splitlines()
    if lines[2:4] == ["import torch", "from torch import nn"]:
        lines = lines[5:]  # the docstring and the imports: the script has its own
    names = re.findall(r"^class (\w+)\(nn\.Module\):", "\n".join(lines), flags=re.M)
    return "\n".join(lines).strip() + "\n", names[-1]


def _targets(plan, var: str = "y") -> str:
    if plan.target == "binary":
        return f"{var}.float()[:, None]  # one 0/1 column"
    if plan.target == "onehot":
        return f"F.one_hot({var}, {plan.n_classes}).float()"
    return var


def training_script(
    spec: dict[str, Any],
    config: TrainConfig | dict[str, Any],
    *,
    frozen: Sequence[str] = (),
    roots: DataRoots = DEFAULT_ROOTS,
    limits: Limits = DEFAULT_LIMITS,
    threads: int | None = None,
) -> str:
    """Python source that trains the spec's model as ``config`` says, in plain torch.

    ``frozen`` names the parameters whose ``requires_grad`` is off (they stay fixed).
    ``threads``: torch's intra-op threads the training ran with (default: this process's);
    the script sets the same (with another count a matrix product's sums run in another
    order: not bit for bit).
    """
    threads = threads or torch.get_num_threads()
    config = parse_config(config)
    plan = check_training(spec, config, roots, limits)
    model_src, class_name = _model_source(spec, limits)
    info = plan.dataset
    opt = OPTIMIZERS[config.optimizer.name]
    sched = SCHEDULES[config.schedule.name]
    loss = LOSSES[config.loss.name]
    params = config.dataset_params or None
    roots_arg = (
        ""
        if roots == DEFAULT_ROOTS
        else f", roots=DataRoots(Path({str(roots.fashion_mnist_dir)!r}))"
    )
    out = [
        f'"""Train {class_name} on {info.name}: exported from the PyTorch Model Playground.',
        "",
        "It reproduces the playground's training bit for bit on the CPU. Usage:",
        "    python train.py INIT.safetensors OUT.safetensors",
        "INIT holds the weights at step 0 (the training's first checkpoint).",
        '"""',
        "",
        "import sys",
        *(["from pathlib import Path"] if roots_arg else []),
        "",
        "import torch",
        "import torch.nn.functional as F",
        "from safetensors.torch import load_file, save_file",
        "from torch import nn",
        "",
        f"from models.datasets import {'DataRoots, ' if roots_arg else ''}load_split  # offline",
        "",
        "",
        model_src.rstrip(),
        "",
        "",
        f"SEED = {config.seed}",
        f"STEPS = {plan.total_steps}",
        f"BATCH_SIZE = {config.batch_size if plan.batched else 1}",
        "",
        "",
        "def inputs(x):",
    ]
    if plan.batched:
        out.append(
            f'{_I}"""A batch of stored samples {tuple(info.sample_shape)} -> the model\'s input."""'
        )
        out.append(f"{_I}x = x.float()")
        out += [
            _I + line
            for line in transform_source(config.transforms, info.sample_shape, info.value_range)
        ]
        shape = transformed_shape(info.sample_shape, config.transforms)
        out.append(f"{_I}return x  # (B, {', '.join(map(str, shape))})")
    else:
        out.append(f'{_I}"""One sequence of token ids, fed as it is."""')
        out.append(f"{_I}return x")
    out += ["", "", "def main(init_path, out_path):"]
    out.append(f"{_I}torch.set_num_threads({threads})  # as the playground ran it: same sums")
    out.append(f"{_I}model = {class_name}()")
    out.append(f"{_I}model.load_state_dict(load_file(init_path))")
    out += [f"{_I}model.get_parameter({name!r}).requires_grad_(False)" for name in frozen]
    out += [
        f"{_I}train = load_split({info.name!r}, 'train', params={params!r}{roots_arg})",
        f"{_I}torch.manual_seed(SEED)  # the global generator: dropout draws from it",
        f"{_I}order = torch.Generator().manual_seed(SEED)  # the data order",
        f"{_I}params = [p for p in model.parameters() if p.requires_grad]",
        f"{_I}optimizer = {_call('torch.optim.', 'params', opt, plan.optimizer_args)}",
    ]
    if sched.cls is not None:
        extra = ("T_max", "max_lr", "total_steps", "step_size")
        made = _call("torch.optim.lr_scheduler.", "optimizer", sched, plan.schedule_args, extra)
        out.append(f"{_I}scheduler = {made}")
    out.append(f"{_I}loss_fn = {_call('nn.', '', loss, plan.loss_args)}")
    shuffle = (
        "torch.randperm(len(train), generator=order)"
        if config.shuffle
        else "torch.arange(len(train))"
    )
    body = [
        "idx = perm[i : i + BATCH_SIZE]",
        "x = inputs(train.x[idx])" if plan.batched else "x = inputs(train.x[int(idx[0])])",
        f"y = {_targets(plan, 'train.y[idx]' if plan.batched else 'train.y[int(idx[0])]')}",
        "optimizer.zero_grad()",
        "loss = loss_fn(model(x), y)",
        "loss.backward()",
    ]
    if config.grad_clip is not None:
        body.append(f"nn.utils.clip_grad_norm_(params, {config.grad_clip!r})")
    body.append("optimizer.step()")
    if sched.cls is not None:
        body.append("scheduler.step()")
    body.append("step += 1")
    out += [
        f"{_I}model.train()",
        f"{_I}step = 0",
        f"{_I}while step < STEPS:",
        f"{_I * 2}perm = {shuffle}  # one epoch",
        f"{_I * 2}for i in range(0, len(train), BATCH_SIZE):",
        f"{_I * 3}if step == STEPS:",
        f"{_I * 4}break",
        *[_I * 3 + line for line in body],
        f"{_I}save_file({{k: v.contiguous() for k, v in model.state_dict().items()}}, out_path)",
        f"{_I}print(f'trained {{step}} steps; last loss {{loss.item():.4f}}')",
        "",
        "",
        'if __name__ == "__main__":',
        f"{_I}main(sys.argv[1], sys.argv[2])",
    ]
    return "\n".join(out) + "\n"
