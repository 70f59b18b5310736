"""Schemas of "why did it predict that?": gradients, attribution, interventions, featvis."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from models.attribution import AttributionOptions
from models.featvis import FeatVisOptions
from models.gradients import LossTarget
from models.inputs import InputMaker
from models.interventions import Intervention
from server.schemas.common import TensorPayload, TensorStats
from server.schemas.runs import CheckpointRef, RunRequest

Inputs = Annotated[dict[str, InputMaker], Field(max_length=8)]
Encoding = Literal["f16", "f32", "list"]


class AttributeRequest(AttributionOptions):
    """Inputs (as for a run), the method and its settings; optionally at a checkpoint."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"method": "integrated_gradients", "steps": 32, "baseline": 0.0},
                {"method": "gradcam", "layer": "conv2", "target": 3},
                {"method": "occlusion", "window": [4, 4], "stride": [2, 2]},
            ]
        },
    )

    inputs: Inputs = Field(default_factory=dict)
    baseline_input: InputMaker | None = Field(
        None,
        description="integrated_gradients, occlusion: the baseline made like an input (e.g. a "
        "blurred image or another sample) instead of the constant baseline",
    )
    encoding: Encoding = "f32"
    checkpoint: CheckpointRef | None = None
    stats: bool = Field(
        True, description="statistics of the attribution (and map); false leaves them out"
    )


class Attributed(BaseModel):
    tensor: TensorPayload
    stats: TensorStats | None = Field(None, description="absent when asked stats: false")


class InputOut(BaseModel):
    tensor: TensorPayload
    tokens: list[str] | None = None


class AttributeResult(BaseModel):
    method: str
    target: int = Field(description="the class explained")
    passes: int = Field(description="forward passes made (the cost checked beforehand)")
    attribution: Attributed = Field(description="shaped like the input")
    map: Attributed | None = Field(None, description="gradcam: the map at the layer's size")
    delta: float | None = Field(None, description="integrated_gradients: convergence delta")
    output: TensorPayload
    labels: list[str] | None = None
    inputs: dict[str, InputOut]
    captum: dict = Field(description="the arguments given to Captum's attribute()")
    checkpoint: CheckpointRef | None = None
    compute_ms: float = Field(description="of elapsed_ms, the method itself (Captum's call)")
    elapsed_ms: float = Field(description="time spent on the worker: inputs, method, encoding")


class GradientsRequest(BaseModel):
    """d(class score or loss)/d(inputs, activations, parameters)."""

    model_config = ConfigDict(extra="forbid")

    inputs: Inputs = {}
    target: int | None = Field(None, ge=0, le=1_000_000, description="default: predicted")
    loss: LossTarget | None = Field(None, description="differentiate this loss instead")
    output: str | None = Field(None, max_length=64)
    layers: Literal["all", "none"] | Annotated[list[str], Field(max_length=1_000)] = "all"
    parameters: bool = False
    encoding: Encoding = "f16"
    downsample: bool = True
    checkpoint: CheckpointRef | None = None
    stats: bool = Field(True, description="statistics of each gradient; false leaves them out")


class Gradient(BaseModel):
    tensor: TensorPayload
    stats: TensorStats | None = Field(None, description="absent when asked stats: false")


class GradientsResult(BaseModel):
    inputs: dict[str, Gradient]
    activations: dict[str, Gradient]
    parameters: dict[str, Gradient]
    output: TensorPayload
    target: int | None = Field(None, description="the class differentiated (absent for a loss)")
    objective: float
    labels: list[str] | None = None
    checkpoint: CheckpointRef | None = None
    compute_ms: float = Field(description="of elapsed_ms, the forward and the backward")
    elapsed_ms: float = Field(description="time spent on the worker: inputs, passes, encoding")


class InterveneRequest(RunRequest):
    """A run with interventions applied at named layers, in order."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"interventions": [{"layer": "conv1", "op": "zero", "channels": [2]}]},
                {
                    "inputs": {"x": {"kind": "random", "seed": 1}},
                    "interventions": [
                        {"layer": "conv2", "op": "patch", "source": {"x": {"kind": "random"}}}
                    ],
                },
            ]
        },
    )

    interventions: Annotated[list[Intervention], Field(max_length=32)] = Field(default_factory=list)


class FeatVisRequest(FeatVisOptions):
    """Maximize a channel (or a class) from seeded noise."""

    encoding: Encoding = "f32"


class FeatVisResult(BaseModel):
    input: Attributed
    objective: list[float] = Field(description="the objective at each step")
    steps: int = Field(description="steps made (fewer when the time budget ran out)")
    elapsed_ms: float
