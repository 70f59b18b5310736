"""Read-only resources: the layer catalog, the presets, and spec validation."""

from __future__ import annotations

from fastapi import APIRouter

from models.catalog import catalog_json
from models.errors import SpecError
from models.presets import get_preset, preset_list
from server import jobs
from server.deps import StateDep
from server.errors import public, status_of
from server.routing import JsonRoute
from server.schemas.common import errors
from server.schemas.misc import (
    CatalogOut,
    PresetDetail,
    PresetList,
    ValidateRequest,
    ValidateResult,
)

router = APIRouter(prefix="/api", tags=["library"], route_class=JsonRoute)
_CATALOG = catalog_json()


@router.get("/catalog", response_model=CatalogOut, operation_id="getCatalog")
def catalog() -> dict:
    """Every layer type: torch class, typed args with defaults and ranges, docs, categories."""
    return _CATALOG


@router.get("/presets", response_model=PresetList, operation_id="listPresets")
def presets() -> dict:
    """The tutorial's models and a few more, as named specs."""
    return {"presets": preset_list()}


@router.get(
    "/presets/{name}", response_model=PresetDetail, responses=errors(404), operation_id="getPreset"
)
def preset(name: str) -> dict:
    """One preset: its spec, description and default inputs."""
    p = get_preset(name)
    return {
        "name": p.name,
        "title": p.title,
        "description": p.description,
        "section": p.section,
        "layers": len(p.spec["layers"]),
        "spec": p.spec,
        "default_inputs": p.default_inputs,
        "seed": p.seed,
    }


@router.post(
    "/validate",
    response_model=ValidateResult,
    responses=errors(413, 503),
    operation_id="validateSpec",
)
async def validate(body: ValidateRequest, state: StateDep) -> dict:
    """Check a spec and infer every layer's shape and cost on the meta device (no memory)."""
    key = state.verdicts.key(body.spec)
    verdict = state.verdicts.get(key)  # the same spec always gets the same verdict
    if verdict is not None:
        return verdict
    try:
        # no token needed: its own thread, small queue and time budget (server/worker.py)
        inference = await state.worker.call_anonymous(
            jobs.resolve, body.spec, state.limits, state.settings.validate_timeout_s
        )
    except SpecError as exc:
        status = status_of(exc)
        if status >= 500 or (status == 413 and exc.layer is None):
            raise  # busy, out of memory, over a limit: not a verdict on the spec
        partial = [vars(info) for info in getattr(exc, "partial", [])]
        verdict = {"valid": False, "error": public(exc), "layers": partial}
    else:
        out = inference.to_dict()
        verdict = {"valid": True, **{k: out[k] for k in ValidateResult.model_fields if k in out}}
    state.verdicts.put(key, verdict)
    return verdict
