"""The training request as one pydantic model: strict, no extra keys, every field bounded."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from models.datasets.transforms import Transform
from models.errors import SpecError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class OptimizerConfig(_Strict):
    """An optimizer of ``models.training.OPTIMIZERS`` and its args (torch's names)."""

    name: str = Field("adam", max_length=32)
    args: dict[str, Any] = Field(default_factory=dict, max_length=16)


class LossConfig(_Strict):
    """A loss of ``models.training.LOSSES`` and its args."""

    name: str = Field("CrossEntropyLoss", max_length=32)
    args: dict[str, Any] = Field(default_factory=dict, max_length=8)


class ScheduleConfig(_Strict):
    """A learning-rate schedule of ``models.training.SCHEDULES``, stepped after every batch."""

    name: str = Field("constant", max_length=32)
    args: dict[str, Any] = Field(default_factory=dict, max_length=8)


class RecordConfig(_Strict):
    """What to record while training (each costs a little time; 0 or None turns it off)."""

    accuracy: bool = True
    grad_flow_every: int | None = Field(10, ge=1, le=10**6, description="steps; per-layer norms")
    histograms_every: int | None = Field(None, ge=1, le=10**6, description="steps")
    histogram_bins: int = Field(30, ge=2, le=200)
    confusion: bool = True


class TrainConfig(_Strict):
    """The training part of a request."""

    dataset: str = Field(max_length=64)
    dataset_params: dict[str, Any] = Field(default_factory=dict, max_length=16)
    transforms: list[Transform] = Field(default_factory=list, max_length=8)
    input: str | None = Field(None, max_length=64, description="model input fed (default: only)")
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    loss: LossConfig = Field(default_factory=LossConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    batch_size: int = Field(32, ge=1, le=4096)
    epochs: int | None = Field(None, ge=1, le=1000, description="default 1 when steps is unset")
    steps: int | None = Field(None, ge=1, le=10**7)
    shuffle: bool = True
    seed: int = Field(0, ge=0, lt=2**63)
    grad_clip: float | None = Field(None, gt=0, le=1e6, description="max total gradient norm")
    eval_every: int | None = Field(None, ge=1, le=10**7, description="steps (default: each epoch)")
    record: RecordConfig = Field(default_factory=RecordConfig)
    checkpoints: int = Field(20, ge=2, le=100, description="most checkpoints kept")

    @model_validator(mode="after")
    def _one_length(self) -> TrainConfig:
        if self.epochs is not None and self.steps is not None:
            raise ValueError("give epochs or steps, not both")
        return self


def parse_config(data: TrainConfig | dict[str, Any]) -> TrainConfig:
    """Validate a config given as a dict; errors become SpecError naming the field."""
    if isinstance(data, TrainConfig):
        return data
    try:
        return TrainConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise SpecError(
            "invalid_training",
            f"{loc + ': ' if loc else ''}{err['msg']}",
            detail={"field": loc or None},
        ) from None
