"""Schemas of the model resource: create, update, read, summary."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from models.presets import PRESETS
from server.schemas.common import Seed

LENET_SPEC = PRESETS["lenet5"].spec


class LayerCost(BaseModel):
    """What shape inference found for one layer (on the meta device)."""

    name: str
    type: str
    args: dict[str, Any]
    inputs: list[str]
    output_shape: list[int]
    output_dtype: str
    extras: dict[str, list[int]]
    params: int
    activation_bytes: int
    flops: int
    auto: list[str] = []
    work: int = Field(0, description="estimated work, units of about 1 ns (models/cost.py)")


class InferenceOut(BaseModel):
    spec: dict[str, Any] = Field(description="the resolved spec: 'auto' sizes filled")
    layers: list[LayerCost]
    input_shapes: dict[str, list[int]]
    outputs: dict[str, list[int]]
    total_params: int
    total_activation_bytes: int
    total_flops: int
    warnings: list[str]
    total_work: int = 0


class ModelCreate(BaseModel):
    """A spec, or the name of a preset; an optional seed makes the weights reproducible."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"preset": "lenet5", "seed": 0}, {"spec": LENET_SPEC}]},
    )

    spec: dict[str, Any] | None = None
    preset: str | None = Field(None, max_length=64)
    seed: Seed | None = None

    @model_validator(mode="after")
    def _one_source(self) -> ModelCreate:
        if (self.spec is None) == (self.preset is None):
            raise ValueError("give exactly one of 'spec' or 'preset'")
        return self


class ModelUpdate(BaseModel):
    """A new spec for an existing model; unchanged layers keep their weights."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"spec": LENET_SPEC}]}
    )

    spec: dict[str, Any]


class ModelPublic(BaseModel):
    id: str
    name: str
    seed: int
    version: int
    spec: dict[str, Any]
    summary: InferenceOut
    created: float
    updated: float
    preset: str | None = Field(None, description="the preset it was created from, if any")
    labels: list[str] | None = None
    reinitialized: list[str] | None = Field(
        None, description="after PUT: the layers whose weights were re-initialized"
    )
    kept: list[str] | None = Field(None, description="after PUT: the layers that kept weights")


class ModelBrief(BaseModel):
    id: str
    name: str
    version: int
    layers: int
    total_params: int
    updated: float


class ModelList(BaseModel):
    models: list[ModelBrief]
    limit: int


class LayerRow(BaseModel):
    name: str
    type: str
    output_shape: list[int]
    extras: dict[str, list[int]] = {}
    params: int
    trainable: int
    activation_bytes: int
    flops: int
    work: int = Field(0, description="estimated work, units of about 1 ns (models/cost.py)")


class SummaryOut(BaseModel):
    """The model as PyTorch prints it, and one row per layer."""

    module_tree: str = Field(description="exactly str(model)")
    layers: list[LayerRow]
    total_params: int
    trainable_params: int
    total_activation_bytes: int
    total_flops: int
    total_work: int = 0


class CodeOut(BaseModel):
    class_name: str
    code: str = Field(description="a self-contained Python file defining the nn.Module")
