"""Parameters and weights: the table, one parameter's values, freezing, safetensors I/O."""

from __future__ import annotations

import re
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Query, Request, Response

from models.errors import SpecError
from models.tensors import Encoding
from server.deps import ModelDep, StateDep
from server.ops.messages import Parameter, Parameters, SetGrad, WeightsIn, WeightsOut
from server.routing import JsonRoute
from server.schemas.common import errors
from server.schemas.parameters import (
    GradPatch,
    GradResult,
    ParameterTable,
    ParameterValues,
    WeightsLoaded,
)
from server.trainings import find_training
from server.uploads import spool


def content_disposition(filename: str) -> str:
    """``attachment`` with ``filename`` for any name: RFC 6266's ``filename*=UTF-8''…``
    (percent-encoded, RFC 5987) and a plain ASCII ``filename`` for old clients, in which
    anything but letters, digits and ``._-`` becomes ``_``. Never a character that is not
    allowed in a header value (a name ending in a newline made the server drop the
    connection)."""
    fallback = re.sub(r"[^A-Za-z0-9._-]", "_", filename) or "weights.safetensors"
    encoded = quote(filename, safe="")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"


router = APIRouter(prefix="/api/models", tags=["parameters"], route_class=JsonRoute)


@router.get(
    "/{model_id}/parameters",
    response_model=ParameterTable,
    responses=errors(404, 409, 503),
    operation_id="listParameters",
)
async def parameters(
    record: ModelDep,
    state: StateDep,
    training: Annotated[str | None, Query(max_length=64, description="a training's id")] = None,
    step: Annotated[int | None, Query(ge=0, le=2**31, description="its checkpoint")] = None,
) -> dict:
    """One row per named_parameters() entry, with statistics and totals; with ``training``
    and ``step``, the weights of that checkpoint (requires_grad stays the model's)."""
    at = (record.workspace_id, record.id, record.version)
    if training is None and step is None:
        return await state.worker.submit(Parameters(*at))
    if training is None or step is None:
        raise SpecError("invalid_request", "A checkpoint needs both 'training' and 'step'.")
    await find_training(state.store, record, training)
    return await state.worker.submit(Parameters(*at, training=training, step=step))


@router.get(
    "/{model_id}/parameters/{name}",
    response_model=ParameterValues,
    responses=errors(404, 409, 503),
    operation_id="getParameter",
)
async def parameter(
    name: str, record: ModelDep, state: StateDep, encoding: Encoding = "f16"
) -> dict:
    """The values of one parameter (e.g. conv1.weight) as a tensor payload."""
    return await state.worker.submit(
        Parameter(record.workspace_id, record.id, record.version, name=name, encoding=encoding)
    )


@router.patch(
    "/{model_id}/parameters/{name}",
    response_model=GradResult,
    responses=errors(404, 409, 503),
    operation_id="setParameterGrad",
)
async def set_grad(name: str, body: GradPatch, record: ModelDep, state: StateDep) -> dict:
    """Freeze or unfreeze one parameter, or every parameter of a layer (name = layer)."""
    state.trainings.check_idle(record.id, "freezing or unfreezing a parameter")
    return await state.worker.submit(
        SetGrad(
            record.workspace_id,
            record.id,
            record.version,
            name=name,
            requires_grad=body.requires_grad,
        )
    )


@router.get(
    "/{model_id}/weights",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}, **errors(404, 409, 503)},
    operation_id="downloadWeights",
)
async def download_weights(record: ModelDep, state: StateDep) -> Response:
    """The state_dict (parameters and buffers) as a safetensors file."""
    data = await state.worker.submit(WeightsOut(record.workspace_id, record.id, record.version))
    filename = f"{record.name}-{record.id}.safetensors"
    return Response(
        data,
        media_type="application/octet-stream",
        headers={"Content-Disposition": content_disposition(filename)},
    )


@router.put(
    "/{model_id}/weights",
    response_model=WeightsLoaded,
    responses=errors(404, 409, 503),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        }
    },
    operation_id="uploadWeights",
)
async def upload_weights(request: Request, record: ModelDep, state: StateDep) -> dict:
    """Load a safetensors file, checked against the model's names and shapes (never pickle)."""
    state.trainings.check_idle(record.id, "uploading weights")
    # 503 when PLAYGROUND_MAX_CONCURRENT_UPLOADS are in progress; the file goes on close
    with state.uploads.take(), await spool(request) as file:
        return await state.worker.submit(
            WeightsIn(
                record.workspace_id,
                record.id,
                record.version,
                path=file.name,
                max_header_bytes=state.settings.max_safetensors_header_bytes,
            )
        )
