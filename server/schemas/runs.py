"""Schemas of a run: inputs from makers, the mode, what to capture, and the result."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from models.inputs import InputMaker
from models.run_gradients import RunGradients
from server.schemas.common import Seed, TensorPayload, TensorStats


class CheckpointRef(BaseModel):
    """A checkpoint of one of the model's trainings: run the model as it was at that step."""

    model_config = ConfigDict(extra="forbid")

    training: str = Field(max_length=64, description="the training's id")
    step: int = Field(ge=0, le=2**31, description="a step with a checkpoint (GET its list)")


class RunRequest(BaseModel):
    """Inputs by name (missing ones: seeded random normal), mode, layers to capture."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "inputs": {"x": {"kind": "random", "distribution": "normal", "seed": 0}},
                    "mode": "eval",
                    "capture": "all",
                    "encoding": "f16",
                },
                {"inputs": {"sentence": {"kind": "tokens", "text": "The dog ate the apple"}}},
            ]
        },
    )

    inputs: Annotated[dict[str, InputMaker], Field(max_length=8)] = {}
    mode: Literal["eval", "train"] = "eval"
    capture: Literal["all", "none"] | Annotated[list[str], Field(max_length=10_000)] = "all"
    encoding: Literal["u8", "f16", "f32", "list"] = Field(
        "f16",
        description="u8: one byte per value for drawing (within scale/2; tensors of at most "
        "256 values, integers and non-finite ones go as f32); f32: exact",
    )
    seed: Seed | None = Field(None, description="seeds dropout in train mode")
    downsample: bool = Field(True, description="shrink maps too large to draw")
    checkpoint: CheckpointRef | None = Field(
        None, description="run the weights of a training's checkpoint instead of the current ones"
    )
    stats: bool = Field(
        True,
        description="statistics and a histogram of every captured tensor; false leaves them "
        "out (on LeNet-5 they are about a quarter of the run's time on the worker)",
    )
    gradients: RunGradients | None = Field(
        None,
        description="also differentiate a class score (or a loss) in the same forward and one "
        "backward: each captured layer and float input then carries its gradient",
    )


class Extra(BaseModel):
    tensor: TensorPayload
    stats: TensorStats | None = Field(None, description="absent when the run asked stats: false")


class ActivationOut(BaseModel):
    type: str
    tensor: TensorPayload
    stats: TensorStats | None = Field(None, description="absent when the run asked stats: false")
    extras: dict[str, Extra] = {}
    gradient: Extra | None = Field(None, description="when the run asked for gradients")


class GradientsOut(BaseModel):
    target: int | None = Field(description="the class differentiated (None: a loss)")
    objective: float = Field(description="the value differentiated")


class InputOut(BaseModel):
    tensor: TensorPayload
    tokens: list[str] | None = None
    label: int | float | list[int] | None = Field(
        None, description="a dataset sample's label (class index, value or tag indices)"
    )
    stats: TensorStats | None = Field(
        None, description="absent for token inputs and when the run asked stats: false"
    )
    gradient: Extra | None = Field(None, description="float inputs, when the run asked for them")


class RunResult(BaseModel):
    mode: Literal["eval", "train"]
    outputs: dict[str, TensorPayload]
    activations: dict[str, ActivationOut]
    inputs: dict[str, InputOut]
    labels: list[str] | None = None
    checkpoint: CheckpointRef | None = Field(None, description="set when run at a checkpoint")
    gradients: GradientsOut | None = Field(None, description="when the run asked for them")
    compute_ms: float = Field(
        description="of elapsed_ms, the forward with its hooks (and the backward, with gradients)"
    )
    elapsed_ms: float = Field(description="time spent on the worker: inputs, forward, encoding")
