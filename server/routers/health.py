"""Liveness: device, versions, worker load."""

from __future__ import annotations

import platform

import fastapi
import torch
from fastapi import APIRouter

from server.deps import Credentials, StateDep
from server.schemas.misc import Health

router = APIRouter(tags=["health"])
VERSIONS = {
    "python": platform.python_version(),
    "torch": torch.__version__,
    "fastapi": fastapi.__version__,
}


@router.get(
    "/healthz",
    response_model=Health,
    response_model_exclude_none=True,
    openapi_extra={"security": [{}]},  # with the HTTPBearer FastAPI lists: optional
    operation_id="getHealth",
)
def healthz(state: StateDep, credentials: Credentials) -> dict:
    """The server is up; which device the worker owns; package versions (for a token)."""
    shown = state.settings.healthz_versions or (
        credentials is not None
        and state.store.workspace_for_token(credentials.credentials) is not None
    )
    return {
        "status": "ok",
        "device": str(state.worker.device),
        "versions": VERSIONS if shown else None,
        "worker": state.worker.stats(),
    }
