"""Workspaces: a private space of models, opened by a secret bearer token."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter

from models.errors import LimitError
from server.deps import StateDep, WorkspaceDep
from server.schemas.common import ERRORS
from server.schemas.misc import WorkspaceCreated, WorkspaceInfo

router = APIRouter(prefix="/api/workspaces", tags=["workspaces"])


@router.post("", status_code=201, response_model=WorkspaceCreated, responses=ERRORS)
def create_workspace(state: StateDep) -> dict:
    """Create a workspace; the token in the answer is shown once."""
    limit = state.settings.max_workspaces
    if state.store.count_workspaces() >= limit:
        raise LimitError(
            f"This playground already has {limit:,} workspaces, its limit. Ask the teacher to "
            f"raise PLAYGROUND_MAX_WORKSPACES.",
            detail={"limit": limit, "setting": "PLAYGROUND_MAX_WORKSPACES"},
        )
    ws, token = state.store.create_workspace()
    return {"id": ws.id, "token": token}


@router.get("/me", response_model=WorkspaceInfo, responses=ERRORS)
def my_workspace(ws: WorkspaceDep, state: StateDep) -> dict:
    """The workspace this token opens, its model count and the limits in force."""
    limits = asdict(state.limits) | {
        "max_models_per_workspace": state.settings.max_models_per_workspace,
        "max_body_bytes": state.settings.max_body_bytes,
        "max_upload_bytes": state.settings.max_upload_bytes,
    }
    return {"id": ws.id, "models": state.store.count_models(ws.id), "limits": limits}
