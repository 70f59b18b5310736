"""Schemas of datasets and trainings: what a training is asked, where it stands, its parts."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from models.training import TrainConfig
from server.schemas.common import TensorPayload

Status = Literal["queued", "running", "paused", "done", "failed", "cancelled", "interrupted"]


class TrainingCreate(TrainConfig):
    """A training: dataset and transforms, optimizer, loss, schedule, batch, length, seed."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "dataset": "fashion_mnist",
                    "transforms": [{"kind": "scale"}, {"kind": "pad", "size": 32}],
                    "optimizer": {"name": "adam", "args": {"lr": 0.001}},
                    "loss": {"name": "CrossEntropyLoss"},
                    "batch_size": 64,
                    "epochs": 1,
                    "seed": 0,
                },
                {
                    "dataset": "spiral",
                    "optimizer": {"name": "sgd", "args": {"lr": 0.1, "momentum": 0.9}},
                    "loss": {"name": "CrossEntropyLoss"},
                    "batch_size": 32,
                    "steps": 500,
                },
            ]
        },
    )


class CheckpointOut(BaseModel):
    step: int
    bytes: int = Field(description="size of the safetensors weights")
    created: float


class TrainingPublic(BaseModel):
    id: str
    model_id: str
    model_version: int = Field(description="the model version the training started from")
    status: Status
    step: int = Field(description="steps done")
    total_steps: int
    epoch: int
    progress: float = Field(description="step / total_steps")
    latest: dict[str, float | int | None] = Field(
        description="the latest metrics: loss, accuracy, lr, test_loss, test_accuracy"
    )
    error: str | None = None
    last_event: int = Field(description="the number of the latest event (the SSE id)")
    config: dict[str, Any]
    created: float
    updated: float


class TrainingList(BaseModel):
    trainings: list[TrainingPublic]


class CheckpointList(BaseModel):
    training: str
    checkpoints: list[CheckpointOut]


class RestoreOut(BaseModel):
    model_id: str
    version: int = Field(description="the model's new version, holding the checkpoint")
    step: int


class DatasetPublic(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str
    task: str
    available: bool
    unavailable_reason: str | None = None


class DatasetList(BaseModel):
    datasets: list[DatasetPublic]


class SampleOut(BaseModel):
    dataset: str
    split: Literal["train", "test"]
    index: int
    tensor: TensorPayload
    label: Any = Field(description="the class index (a list of tag indices for tagging)")
    class_name: str | list[str] | None = None
