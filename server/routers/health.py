"""Liveness: device, versions, worker load."""

from __future__ import annotations

import platform

import fastapi
import torch
from fastapi import APIRouter

from server.deps import StateDep
from server.schemas.misc import Health

router = APIRouter(tags=["health"])
VERSIONS = {
    "python": platform.python_version(),
    "torch": torch.__version__,
    "fastapi": fastapi.__version__,
}


@router.get("/healthz", response_model=Health)
def healthz(state: StateDep) -> dict:
    """The server is up; which device the worker owns; package versions."""
    return {
        "status": "ok",
        "device": str(state.worker.device),
        "versions": VERSIONS,
        "worker": state.worker.stats(),
    }
