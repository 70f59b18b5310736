"""``GET /metrics``: Prometheus' text format; only with PLAYGROUND_METRICS=true, and behind
``Authorization: Bearer <PLAYGROUND_METRICS_TOKEN>`` when a token is set."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from models.errors import SpecError
from server.schemas.common import errors

router = APIRouter(tags=["health"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={**errors(401), 200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
    operation_id="getMetrics",
)
def metrics(request: Request) -> Response:
    """Requests, latencies, the worker's queue, live models and trainings, for Prometheus."""
    expected = request.app.state.playground.settings.metrics_token
    if expected is not None:
        given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise SpecError(
                "unauthorized",
                "GET /metrics needs 'Authorization: Bearer <PLAYGROUND_METRICS_TOKEN>'.",
            )
    registry = request.app.state.metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
