"""Optimizers, losses and learning-rate schedules, described as data like the layer catalog.

Each option names its torch class and its arguments (type, range, and torch's own default,
read from the class's signature so the default lives in one place: torch). The browser
reads :func:`options_public`; :func:`validate_args` checks a request's args against it and
names the field at fault (``optimizer.args.lr``).
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from typing import Any, Literal

from torch import nn, optim
from torch.optim import lr_scheduler

from models.effects import losses as effect_losses
from models.errors import SpecError

Kind = Literal["float", "int", "bool", "pair"]
_NO_DEFAULT = object()


@dataclass(frozen=True)
class Arg:
    """One argument: its torch name, type, bounds (``low_open``: the low bound is excluded)."""

    name: str
    kind: Kind
    default: Any
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    doc: str = ""

    def public(self) -> dict[str, Any]:
        d = self.default
        return {
            "name": self.name,
            "kind": self.kind,
            "default": list(d) if isinstance(d, tuple) else d,
            "low": self.low,
            "high": self.high,
            "low_open": self.low_open,
            "doc": self.doc,
        }


@dataclass(frozen=True)
class Option:
    """A named choice (an optimizer, a loss, a schedule) and the args it takes."""

    name: str
    cls: type | None
    args: tuple[Arg, ...]
    doc: str

    def public(self) -> dict[str, Any]:
        cls = f"{self.cls.__module__}.{self.cls.__qualname__}" if self.cls else None
        return {
            "name": self.name,
            "torch": cls,
            "args": [a.public() for a in self.args],
            "doc": self.doc,
        }


def _arg(cls: type, name: str, kind: Kind, low=None, high=None, doc="", **kw: Any) -> Arg:
    """An Arg whose default is torch's (the class signature's), unless ``default`` is given."""
    default = kw.pop("default", _NO_DEFAULT)
    if default is _NO_DEFAULT:
        default = inspect.signature(cls).parameters[name].default
        if isinstance(default, int | float) and not isinstance(default, bool) and kind == "float":
            default = float(default)
    return Arg(name, kind, default, low, high, doc=doc, **kw)


def _lr(cls: type) -> Arg:
    return _arg(cls, "lr", "float", 0.0, 10.0, "learning rate", low_open=True)


def _wd(cls: type) -> Arg:
    return _arg(cls, "weight_decay", "float", 0.0, 1.0, "L2 penalty (AdamW: decoupled)")


def _adam_args(cls: type) -> tuple[Arg, ...]:
    return (
        _lr(cls),
        _arg(cls, "betas", "pair", 0.0, 1.0, "running-average coefficients (β1, β2)"),
        _arg(cls, "eps", "float", 0.0, 1.0, "added to the denominator", low_open=True),
        _wd(cls),
        _arg(cls, "amsgrad", "bool", doc="AMSGrad variant"),
    )


_OPTIMIZERS = [
    Option(
        "sgd",
        optim.SGD,
        (
            _lr(optim.SGD),
            _arg(optim.SGD, "momentum", "float", 0.0, 1.0, "momentum factor"),
            _arg(optim.SGD, "dampening", "float", 0.0, 1.0, "dampening of momentum"),
            _wd(optim.SGD),
            _arg(optim.SGD, "nesterov", "bool", doc="Nesterov momentum (needs momentum > 0)"),
        ),
        "Stochastic gradient descent, with momentum and Nesterov.",
    ),
    Option("adam", optim.Adam, _adam_args(optim.Adam), "Adam (Kingma & Ba)."),
    Option("adamw", optim.AdamW, _adam_args(optim.AdamW), "Adam with decoupled weight decay."),
    Option(
        "rmsprop",
        optim.RMSprop,
        (
            _lr(optim.RMSprop),
            _arg(optim.RMSprop, "alpha", "float", 0.0, 1.0, "smoothing constant"),
            _arg(
                optim.RMSprop, "eps", "float", 0.0, 1.0, "added to the denominator", low_open=True
            ),
            _wd(optim.RMSprop),
            _arg(optim.RMSprop, "momentum", "float", 0.0, 1.0, "momentum factor"),
            _arg(optim.RMSprop, "centered", "bool", doc="normalize by the gradient's variance"),
        ),
        "RMSprop (Hinton).",
    ),
    Option(
        "adagrad",
        optim.Adagrad,
        (
            _lr(optim.Adagrad),
            _arg(optim.Adagrad, "lr_decay", "float", 0.0, 1.0, "learning-rate decay"),
            _wd(optim.Adagrad),
            _arg(optim.Adagrad, "initial_accumulator_value", "float", 0.0, 10.0, "start value"),
            _arg(
                optim.Adagrad, "eps", "float", 0.0, 1.0, "added to the denominator", low_open=True
            ),
        ),
        "Adagrad.",
    ),
]
OPTIMIZERS: dict[str, Option] = {o.name: o for o in _OPTIMIZERS}

_LOSS_ARG_RANGES = {"beta": (0.0, 100.0), "delta": (0.0, 100.0), "label_smoothing": (0.0, 1.0)}
TRAINING_LOSSES = tuple(n for n in effect_losses.LOSSES if n != "KLDivLoss")


def _loss(name: str) -> Option:
    args = tuple(
        Arg(
            a,
            "float",
            effect_losses.DEFAULTS[a],
            *_LOSS_ARG_RANGES[a],
            low_open=a != "label_smoothing",
        )
        for a in effect_losses.ARGS.get(name, ())
        if a in _LOSS_ARG_RANGES
    )
    return Option(name, getattr(nn, name), args, effect_losses.FORMULAS[name])


LOSSES: dict[str, Option] = {n: _loss(n) for n in TRAINING_LOSSES}

_SCHEDULES = [
    Option("constant", None, (), "The optimizer's learning rate at every step."),
    Option(
        "step",
        lr_scheduler.StepLR,
        (
            Arg("step_size", "int", 100, 1, 10**7, doc="steps between decays"),
            _arg(lr_scheduler.StepLR, "gamma", "float", 0.0, 1.0, "decay factor"),
        ),
        "StepLR: multiply the rate by gamma every step_size steps.",
    ),
    Option(
        "cosine",
        lr_scheduler.CosineAnnealingLR,
        (
            Arg("T_max", "int", None, 1, 10**7, doc="steps of the half cosine (default: all)"),
            _arg(lr_scheduler.CosineAnnealingLR, "eta_min", "float", 0.0, 10.0, "lowest rate"),
        ),
        "CosineAnnealingLR: from lr down to eta_min along a half cosine.",
    ),
    Option(
        "onecycle",
        lr_scheduler.OneCycleLR,
        (
            Arg("max_lr", "float", None, 0.0, 10.0, low_open=True, doc="peak (default: lr)"),
            _arg(lr_scheduler.OneCycleLR, "pct_start", "float", 0.0, 1.0, "share of warm-up"),
            _arg(lr_scheduler.OneCycleLR, "div_factor", "float", 1.0, 1e6, "lr0 = max_lr / it"),
            _arg(lr_scheduler.OneCycleLR, "final_div_factor", "float", 1.0, 1e9, "end = lr0 / it"),
        ),
        "OneCycleLR over the whole run (stepped every batch).",
    ),
]
SCHEDULES: dict[str, Option] = {o.name: o for o in _SCHEDULES}


def lookup(table: dict[str, Option], name: str, what: str, field: str) -> Option:
    """The option called ``name``; a SpecError listing the known ones otherwise."""
    option = table.get(name)
    if option is None:
        raise SpecError(
            f"unknown_{what}",
            f"There is no {what} {name!r}. Choose one of: {', '.join(table)}.",
            detail={"field": field, "known": list(table)},
        )
    return option


def _number(value: Any, arg: Arg, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _bad(f"{field} must be a number, not {value!r}", field)
    if not math.isfinite(value):
        raise _bad(f"{field} must be a finite number, not {value}", field)
    if arg.kind == "int" and value != int(value):
        raise _bad(f"{field} must be a whole number, not {value}", field)
    low_ok = arg.low is None or (value > arg.low if arg.low_open else value >= arg.low)
    if not low_ok or (arg.high is not None and value > arg.high):
        low = f"> {arg.low}" if arg.low_open else f"≥ {arg.low}"
        raise _bad(f"{field} must be {low} and ≤ {arg.high}; got {value}", field)
    return int(value) if arg.kind == "int" else float(value)


def _bad(message: str, field: str) -> SpecError:
    return SpecError("invalid_training_arg", message, detail={"field": field})


def validate_args(option: Option, args: dict[str, Any], field: str) -> dict[str, Any]:
    """The option's args with defaults filled; unknown names, wrong types and ranges raise."""
    known = {a.name: a for a in option.args}
    for name in args:
        if name not in known:
            listing = ", ".join(known) or "none"
            raise _bad(
                f"{option.name} takes no arg {name!r}; its args are: {listing}", f"{field}.{name}"
            )
    out: dict[str, Any] = {}
    for arg in option.args:
        value = args.get(arg.name, arg.default)
        where = f"{field}.{arg.name}"
        if value is None and arg.default is None:
            out[arg.name] = None
        elif arg.kind == "bool":
            if not isinstance(value, bool):
                raise _bad(f"{where} must be true or false, not {value!r}", where)
            out[arg.name] = value
        elif arg.kind == "pair":
            if not isinstance(value, list | tuple) or len(value) != 2:
                raise _bad(f"{where} must be two numbers, not {value!r}", where)
            out[arg.name] = tuple(_number(v, arg, where) for v in value)
        else:
            out[arg.name] = _number(value, arg, where)
    return out


def options_public() -> dict[str, Any]:
    """Everything ``GET /api/training/options`` returns."""
    return {
        "optimizers": [o.public() for o in OPTIMIZERS.values()],
        "losses": [o.public() for o in LOSSES.values()],
        "schedules": [o.public() for o in SCHEDULES.values()],
    }
