"""A 2-D dataset's points in one answer (for drawing them under a decision boundary)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request

from models.datasets import DATASETS
from models.errors import SpecError
from server.deps import state_of
from server.ops.messages import DatasetPoints
from server.schemas.common import errors

router = APIRouter(prefix="/api", tags=["datasets"])


@router.get(
    "/datasets/{name}/points/{split}",
    responses=errors(404, 409, 503),
    operation_id="getDatasetPoints",
)
async def dataset_points(name: str, split: Literal["train", "test"], request: Request) -> dict:
    """Every point of a 2-D set's split (at most 5,000) with its label, as stored."""
    info = DATASETS.get(name)
    if info is None or tuple(info.sample_shape) != (2,):
        flat = [n for n, i in DATASETS.items() if tuple(i.sample_shape) == (2,)]
        raise SpecError(
            "not_a_point_set",
            f"'{name}' is not a 2-D point set; these are: {', '.join(flat)}.",
        )
    state = state_of(request)
    return await state.worker.submit(DatasetPoints(name, split))
