"""Schemas of the parameter table, one parameter's values, and freezing."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from server.schemas.common import TensorPayload, TensorStats
from server.schemas.runs import CheckpointRef


class ParameterRow(BaseModel):
    name: str
    module: str
    layer: str
    shape: list[int]
    count: int
    dtype: str
    device: str
    requires_grad: bool
    mean: float | None
    std: float | None
    min: float | None
    max: float | None


class BufferRow(BaseModel):
    name: str
    shape: list[int]
    count: int


class ParameterTotals(BaseModel):
    count: int
    trainable: int
    frozen: int
    bytes: int
    tensors: int


class ParameterTable(BaseModel):
    rows: list[ParameterRow]
    totals: ParameterTotals
    buffers: list[BufferRow] = []
    checkpoint: CheckpointRef | None = None  # set when the table is of a checkpoint


class ParameterValues(BaseModel):
    name: str
    requires_grad: bool
    tensor: TensorPayload
    stats: TensorStats


class GradPatch(BaseModel):
    """Set requires_grad of one parameter (conv1.weight) or of every parameter of a layer."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"requires_grad": False}]}
    )

    requires_grad: bool


class GradResult(BaseModel):
    changed: list[str]
    totals: ParameterTotals


class WeightsLoaded(BaseModel):
    tensors: int
    version: int
