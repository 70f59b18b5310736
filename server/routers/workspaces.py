"""Workspaces: a private space of models, opened by a secret bearer token.

When the teacher sets a class access code (``PLAYGROUND_ACCESS_CODE``), creating a
workspace needs it in the ``X-Access-Code`` header; a workspace's own routes then need
only its token.

Creating a workspace is the one write that needs no token and may have no body, so a web
page on another site could send it from a student's browser with a plain form (a "simple"
request, sent without asking CORS). Browsers say where such a request comes from (``Origin``
on every POST, ``Sec-Fetch-Site`` too): one from another site is refused unless its origin
is one of ``PLAYGROUND_CORS_ORIGINS``. Clients that are not browsers send neither header.
"""

from __future__ import annotations

import hmac
from dataclasses import asdict
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Header, Request

from models.errors import LimitError, SpecError
from server.deps import StateDep, WorkspaceDep
from server.schemas.common import errors
from server.schemas.misc import WorkspaceCreated, WorkspaceInfo

router = APIRouter(prefix="/api/workspaces", tags=["workspaces"])


ASK = "Ask your teacher for the class access code."
AccessCode = Annotated[
    str | None,
    Header(
        alias="X-Access-Code",
        description="the class access code; needed only when the playground has one",
    ),
]


def check_access_code(expected: str | None, given: str | None) -> None:
    """Refuse (403) unless no code is set or ``given`` is it (compared in constant time)."""
    if not expected:
        return
    if not given:
        raise SpecError(
            "access_code_required",
            f"This playground needs the class access code to start a workspace: send it "
            f"in the X-Access-Code header. {ASK}",
        )
    if not hmac.compare_digest(given.encode(), expected.encode()):
        message = f"That is not the class access code. {ASK}"
        raise SpecError("access_code_wrong", message)


def check_same_site(request: Request, allowed: list[str]) -> None:
    """Refuse (403) a request a browser sent from another site's page, unless CORS allows
    that site: its ``Origin`` is not this server's (nor an allowed one), or, without an
    ``Origin``, its ``Sec-Fetch-Site`` says cross-site."""
    origin = request.headers.get("origin")
    if origin is not None:
        ours = urlsplit(origin).netloc == request.headers.get("host", "") and origin != "null"
        if ours or origin in allowed:
            return
    elif request.headers.get("sec-fetch-site", "same-origin") in ("same-origin", "none"):
        return
    raise SpecError(
        "cross_site_request",
        "A page of another site cannot create workspaces here. Open the playground itself, "
        "or ask the teacher to add that site to PLAYGROUND_CORS_ORIGINS.",
    )


@router.post(
    "",
    status_code=201,
    response_model=WorkspaceCreated,
    responses=errors(403, 413),
    operation_id="createWorkspace",
)
def create_workspace(request: Request, state: StateDep, access_code: AccessCode = None) -> dict:
    """Create a workspace (needs X-Access-Code when the class has one); the token is shown once."""
    check_same_site(request, state.settings.cors_origins)
    check_access_code(state.settings.access_code, access_code)
    limit = state.settings.max_workspaces
    if state.store.count_workspaces() >= limit:
        raise LimitError(
            f"This playground already has {limit:,} workspaces, its limit: ask the teacher to "
            f"delete unused ones.",
            detail={"limit": limit, "limit_key": "max_workspaces"},
        )
    ws, token = state.store.create_workspace()
    return {"id": ws.id, "token": token}


@router.get("/me", response_model=WorkspaceInfo, operation_id="getWorkspace")
def my_workspace(ws: WorkspaceDep, state: StateDep) -> dict:
    """The workspace this token opens, its model count and the limits in force."""
    limits = asdict(state.limits) | {
        "max_models_per_workspace": state.settings.max_models_per_workspace,
        "max_body_bytes": state.settings.max_body_bytes,
        "max_upload_bytes": state.settings.max_upload_bytes,
    }
    return {"id": ws.id, "models": state.store.count_models(ws.id), "limits": limits}
