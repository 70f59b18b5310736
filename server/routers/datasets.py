"""Datasets that ship offline, their samples, and the training options (as data)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Request

from models.datasets import DATASETS, dataset_public
from models.errors import SpecError
from models.training import options_public
from server.deps import state_of
from server.ops.messages import DatasetSample
from server.schemas.common import errors
from server.schemas.trainings import DatasetList, DatasetPublic, SampleOut

router = APIRouter(prefix="/api", tags=["datasets"])


def _info(name: str):
    info = DATASETS.get(name)
    if info is None:
        raise SpecError(
            "unknown_dataset",
            f"There is no dataset '{name}'; GET /api/datasets lists them ({', '.join(DATASETS)}).",
        )
    return info


@router.get("/datasets", response_model=DatasetList, operation_id="listDatasets")
async def list_datasets(request: Request) -> dict:
    """Every dataset: task, sizes, sample shape, classes, licence, and whether it is here."""
    roots = state_of(request).trainings.ctx.roots
    return {"datasets": [dataset_public(info, roots) for info in DATASETS.values()]}


@router.get(
    "/datasets/{name}",
    response_model=DatasetPublic,
    responses=errors(404),
    operation_id="getDataset",
)
async def get_dataset(name: str, request: Request) -> dict:
    """One dataset's description."""
    return dataset_public(_info(name), state_of(request).trainings.ctx.roots)


@router.get(
    "/datasets/{name}/samples/{split}/{index}",
    response_model=SampleOut,
    responses=errors(404, 409, 503),
    operation_id="getDatasetSample",
)
async def get_dataset_sample(
    name: str,
    split: Literal["train", "test"],
    index: Annotated[int, Path(ge=0, le=10_000_000)],
    request: Request,
) -> dict:
    """One sample (as stored, before transforms) with its label and class name."""
    info = _info(name)
    state = state_of(request)
    out = await state.worker.submit(DatasetSample(name, split, index))
    label = out["label"]
    classes = info.classes
    if isinstance(label, list):
        class_name = [classes[i] for i in label] if classes else None
    else:
        class_name = classes[label] if classes and isinstance(label, int) else None
    return {
        "dataset": name,
        "split": split,
        "index": index,
        "tensor": out["tensor"],
        "label": label,
        "class_name": class_name,
    }


@router.get("/training/options", operation_id="getTrainingOptions")
async def get_training_options() -> dict:
    """Optimizers, losses, schedules and transforms with their arguments, as data."""
    return options_public()
