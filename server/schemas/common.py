"""Schemas shared by several resources: errors, tensor payloads, statistics."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

# torch.manual_seed's range, as models/inputs.py bounds its seeds: 2**63 is exact as a JSON
# number (a float), where 2**63 - 1 rounds up to it and let fuzzers send 2**63 + 191.
Seed = Annotated[int, Field(ge=0, lt=2**63)]


class ErrorDetail(BaseModel):
    code: str = Field(examples=["shape_mismatch"])
    message: str = Field(
        examples=[
            "fc1 expects 576 input features, but flat gives 400 (16×5×5). "
            "Set in_features to 400 or use 'auto'."
        ]
    )
    layer: str | None = Field(None, examples=["fc1"])
    detail: Any = None
    request_id: str | None = Field(
        None, description="5xx only: the X-Request-ID header, which names the server's log line"
    )


class ErrorBody(BaseModel):
    """The one error shape of the API."""

    error: ErrorDetail


class TensorPayload(BaseModel):
    """A tensor: base64 little-endian float16/float32 in C order, nested lists, or (for
    drawing) u8 codes: value ≈ offset + code × scale (models/tensors.py)."""

    shape: list[int]
    dtype: str
    encoding: Literal["u8", "f16", "f32", "list"]
    data: Any
    scale: float | None = Field(None, description="u8: (max - min) / 255 of the values sent")
    offset: float | None = Field(None, description="u8: the minimum of the values sent")
    exact_crc32: int | None = Field(
        None, description="u8: CRC-32 of the same values' f32 bytes (to check exact ones)"
    )
    true_shape: list[int] | None = Field(None, description="set when downsampled for display")
    downsampled: bool | None = None


class Histogram(BaseModel):
    """``len(counts)`` equal bins over ``range`` = [lo, hi], as ``torch.histc``: bin i spans
    lo + i·w to lo + (i + 1)·w with w = (hi - lo) / len(counts), and the maximum falls in
    the last bin. When all values are equal the range is widened around them."""

    counts: list[int]
    range: tuple[float, float]


class TensorStats(BaseModel):
    """Statistics of a tensor; std is the population std (unbiased=False). A statistic that
    is not finite (or of an empty tensor) is null, or absent where the route leaves out
    nulls (runs, effects)."""

    shape: list[int]
    numel: int
    mean: float | None = None
    std: float | None = None
    min: float | None = None
    max: float | None = None
    zero_fraction: float | None = None
    nan_count: int
    inf_count: int = 0
    histogram: Histogram


# What each error status means; a route lists the ones it can answer with ``errors(...)``, and
# server/openapi.py adds those every route of its kind has (400/413/415 for a body, 401 for a
# token, 422 for parameters). server/errors.py's STATUS maps the codes to these statuses.
ERROR_STATUSES: dict[int, str] = {
    400: "The body is not readable JSON, or is nested too deeply",
    401: "Missing or malformed bearer token",
    403: "The class access code is missing or wrong, or the request came from another site",
    404: "Something the request names (a model, layer, training, dataset …) does not exist",
    409: "The model changed meanwhile, is being trained, or the resource cannot do it now",
    413: "Over a configured limit: the body's size, or the cost of what it asks",
    415: "The body's Content-Type is not the route's",
    422: "A mistake in the request, in words",
    503: "The device is busy or out of memory, or the job ran out of time; retry",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` of a route that can answer with these error statuses."""
    return {s: {"model": ErrorBody, "description": ERROR_STATUSES[s]} for s in statuses}
