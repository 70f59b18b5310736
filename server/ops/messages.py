"""The jobs that cross the worker boundary, as named messages of plain data.

A message is a frozen dataclass of strings, numbers, bytes, lists, dicts and the route's
validated pydantic request (plain data too: the standard library pickles it); its result is
plain data. None holds a closure, a live module or a store handle, so the same message runs
in a thread of the server, in a worker process or on a Ray actor. A message on a model names
it by workspace id, model id and the version the route read (:class:`OnModel`); the worker
side builds that version or a newer stored one. Training's messages are in
``server.training_jobs``. ``workspace_id`` (when a message has one) pins the job to a worker.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class OnModel:
    """A job on one of a workspace's models, at ``version`` or newer."""

    workspace_id: str
    model_id: str
    version: int


# -- models ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Create:
    """Build a new model from a spec and save it at version 1; the model as the API shows it."""

    workspace_id: str
    model_id: str
    spec: dict[str, Any]
    seed: int
    preset: str | None = None


@dataclass(frozen=True, kw_only=True)
class Read(OnModel):
    """The model as the API shows it (spec, seed, version, per-layer inference)."""


@dataclass(frozen=True, kw_only=True)
class Update(OnModel):
    """A new spec; layers with the same name, type and args keep their weights."""

    spec: dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class Summary(OnModel):
    """print(model) and one row per layer."""


@dataclass(frozen=True, kw_only=True)
class Code(OnModel):
    """The model as a Python class."""


@dataclass(frozen=True, kw_only=True)
class Run(OnModel):
    """Run inputs through the model (a ``RunRequest``); a train-mode run saves its state."""

    request: Any


# -- parameters -------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class Parameters(OnModel):
    """The parameter table (at a training's checkpoint when both are given)."""

    training: str | None = None
    step: int | None = None


@dataclass(frozen=True, kw_only=True)
class Parameter(OnModel):
    """One parameter's values."""

    name: str
    encoding: str = "f16"


@dataclass(frozen=True, kw_only=True)
class SetGrad(OnModel):
    """Freeze or unfreeze a parameter or a layer's parameters; saved."""

    name: str
    requires_grad: bool


@dataclass(frozen=True, kw_only=True)
class WeightsOut(OnModel):
    """The state_dict as safetensors bytes."""


@dataclass(frozen=True, kw_only=True)
class WeightsIn(OnModel):
    """Load the checked safetensors file at ``path`` (on this machine) into the model; saved.
    A worker on another machine gets the file's bytes in ``data`` instead (``inlined``)."""

    path: str
    max_header_bytes: int = 1 << 20
    data: bytes | None = None


# -- effects, analysis, data ----------------------------------------------------------------
@dataclass(frozen=True)
class Effect:
    """An effects-lab experiment (its request says which), on a model's layer when named."""

    workspace_id: str
    model_id: str | None
    request: Any
    version: int = 0


@dataclass(frozen=True, kw_only=True)
class Attribute(OnModel):
    request: Any


@dataclass(frozen=True, kw_only=True)
class Gradients(OnModel):
    request: Any


@dataclass(frozen=True, kw_only=True)
class Intervene(OnModel):
    request: Any


@dataclass(frozen=True, kw_only=True)
class FeatVis(OnModel):
    request: Any


@dataclass(frozen=True, kw_only=True)
class ConvCell(OnModel):
    """One cell of a Conv2d's map worked out by hand."""

    request: Any


@dataclass(frozen=True)
class DatasetSample:
    name: str
    split: str
    index: int


@dataclass(frozen=True)
class DatasetPoints:
    name: str
    split: str


@dataclass(frozen=True)
class TrainingScript:
    """A plain-PyTorch script reproducing a training."""

    spec: dict[str, Any]
    config: dict[str, Any]
    frozen: tuple[str, ...]
    threads: int
