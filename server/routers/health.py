"""Health and readiness: device, versions, worker load; 503 "starting" while warming up."""

from __future__ import annotations

import platform

import fastapi
import torch
from fastapi import APIRouter, Request, Response

from server.deps import Credentials, StateDep
from server.schemas.misc import Health

router = APIRouter(tags=["health"])
VERSIONS = {
    "python": platform.python_version(),
    "torch": torch.__version__,
    "fastapi": fastapi.__version__,
}


STARTING = {
    "model": Health,
    "description": 'Still warming up (server/readiness.py): "status": "starting"; ready in '
    "Retry-After seconds or so. Requests are served meanwhile, the first ones slower.",
    "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}},
}


@router.get(
    "/healthz",
    response_model=Health,
    response_model_exclude_none=True,
    openapi_extra={"security": [{}]},  # with the HTTPBearer FastAPI lists: optional
    responses={503: STARTING},
    operation_id="getHealth",
)
def healthz(
    state: StateDep, credentials: Credentials, request: Request, response: Response
) -> dict:
    """Ready (200, "ok") or warming up (503, "starting"); the device; versions for a token."""
    ready = request.app.state.readiness.ready
    if not ready:  # a readiness probe must see not-ready; liveness: the answer itself
        response.status_code = 503
        response.headers["Retry-After"] = "1"
    shown = state.settings.healthz_versions or (
        credentials is not None
        and state.store.workspace_for_token(credentials.credentials) is not None
    )
    return {
        "status": "ok" if ready else "starting",
        "device": str(state.worker.device),
        "versions": VERSIONS if shown else None,
        "worker": state.worker.stats(),
    }
