"""Shared route dependencies as ``Annotated`` aliases: the app state, the workspace, a model."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from models.errors import SpecError
from server.state import AppState
from server.store import ModelRecord, Workspace

bearer = HTTPBearer(auto_error=False, description="the token from POST /api/workspaces")


def state_of(request: Request) -> AppState:
    """The app state, for dependencies: a ``Request`` parameter costs FastAPI nothing, where
    each dependency is one more level of its per-request dependency solving."""
    return request.app.state.playground


async def get_state(request: Request) -> AppState:
    # async: FastAPI runs a plain ``def`` dependency in its thread pool, a hop per request
    return state_of(request)


StateDep = Annotated[AppState, Depends(get_state)]


class Unauthorized(SpecError):
    def __init__(self, message: str) -> None:
        super().__init__("unauthorized", message)
        self.headers = {"WWW-Authenticate": "Bearer"}


Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def open_workspace(request: Request, credentials: HTTPAuthorizationCredentials | None) -> Workspace:
    """The workspace the bearer token opens, or 401."""
    if credentials is None:
        raise Unauthorized(
            "This route needs 'Authorization: Bearer <token>'; create a workspace with "
            "POST /api/workspaces to get a token."
        )
    # tokens are cached in memory, so this is usually no I/O at all (a miss reads the
    # database once per token per few minutes): no threadpool hop for it
    ws = state_of(request).store.workspace_for_token(credentials.credentials)
    if ws is None:
        raise Unauthorized("The bearer token does not open any workspace; create a new one.")
    return ws


async def get_workspace(request: Request, credentials: Credentials) -> Workspace:
    return open_workspace(request, credentials)


WorkspaceDep = Annotated[Workspace, Depends(get_workspace)]


async def get_model(model_id: str, request: Request, credentials: Credentials) -> ModelRecord:
    # the workspace is opened here, not through WorkspaceDep: each dependency level costs
    # FastAPI's solver tens of µs per request, and every model route takes this one
    ws = open_workspace(request, credentials)
    # from the store (its in-memory record cache first: no thread hop), never from the
    # worker's live models: a model deleted while a job on it was in flight must stay gone
    state = state_of(request)
    record = state.store.cached_model(ws.id, model_id)
    if record is None:
        record = await run_in_threadpool(state.store.get_model, ws.id, model_id)
    if record is None:
        raise SpecError(
            "model_not_found",
            f"This workspace has no model '{model_id}'; GET /api/models lists its models.",
        )
    return record


ModelDep = Annotated[ModelRecord, Depends(get_model)]
