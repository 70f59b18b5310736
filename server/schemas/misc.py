"""Schemas of workspaces, presets, validation, the catalog and health."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from server.schemas.common import ErrorDetail
from server.schemas.models import LENET_SPEC, LayerCost


class WorkspaceCreated(BaseModel):
    id: str
    token: str = Field(description="send as 'Authorization: Bearer <token>'; shown once")


class WorkspaceInfo(BaseModel):
    id: str
    models: int
    limits: dict[str, int | float]


class PresetBrief(BaseModel):
    name: str
    title: str
    description: str
    section: str
    layers: int


class PresetList(BaseModel):
    presets: list[PresetBrief]


class PresetDetail(PresetBrief):
    spec: dict[str, Any]
    default_inputs: dict[str, dict[str, Any]]
    seed: int


class ValidateRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"spec": LENET_SPEC}]}
    )

    spec: dict[str, Any]


class ValidateResult(BaseModel):
    """valid=false carries the error and the layers inferred before it."""

    valid: bool
    error: ErrorDetail | None = None
    spec: dict[str, Any] | None = None
    layers: list[LayerCost] = []
    outputs: dict[str, list[int]] = {}
    total_params: int = 0
    total_activation_bytes: int = 0
    total_flops: int = 0
    total_work: int = 0
    warnings: list[str] = []


class CatalogOut(BaseModel):
    categories: dict[str, str]
    sections: dict[str, str]
    layers: list[dict[str, Any]]


class Health(BaseModel):
    status: str
    device: str
    versions: dict[str, str] | None = Field(
        None,
        description="package versions: only for a workspace's token, or to anyone with "
        "PLAYGROUND_HEALTHZ_VERSIONS=true (they tell an attacker which bugs to try)",
    )
    worker: dict[str, Any]
