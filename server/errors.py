"""Every error leaves the server as ``{"error": {"code", "message", "layer"?, "detail"?}}``.

The engine raises :class:`models.errors.SpecError` with a code and the numbers; this module
alone maps its code to an HTTP status (:data:`STATUS`), names the setting behind a limit and
turns it, FastAPI's validation errors and unknown routes into that one JSON shape.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from models.errors import SpecError
from server.settings import Settings

log = logging.getLogger("playground")


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message}
    body.update({k: v for k, v in extra.items() if v is not None})
    return {"error": body}


# The one table from an error's code to its HTTP status; every other code is a mistake in the
# request: 422. Engine and server raise SpecError with a code only.
STATUS: dict[str, int] = {
    # who may ask
    "unauthorized": 401,
    "access_code_required": 403,
    "access_code_wrong": 403,
    "cross_site_request": 403,
    # a named thing that is not there
    "unknown_layer": 404,
    "unknown_parameter": 404,
    "unknown_preset": 404,
    "unknown_dataset": 404,
    "sample_out_of_range": 404,
    "not_a_point_set": 404,
    "model_not_found": 404,
    "workspace_not_found": 404,
    "training_not_found": 404,
    "checkpoint_not_found": 404,
    # the state of a resource forbids it now
    "conflict": 409,
    "dataset_unavailable": 409,
    "model_training": 409,
    "training_active": 409,
    "training_running": 409,
    "training_finished": 409,
    # over a configured limit
    "limit_exceeded": 413,
    # the server, not the request: retry later
    "busy": 503,
    "worker_lost": 503,
    "out_of_memory": 503,
    "deadline_exceeded": 503,
    "uploads_busy": 503,
    "trainings_full": 503,
}
DEFAULT_STATUS = 422


def status_of(exc: SpecError) -> int:
    """The HTTP status of an engine or server error, from its code."""
    return STATUS.get(exc.code, DEFAULT_STATUS)


def setting_name(key: str) -> str | None:
    """The environment variable of a setting (``max_params`` → ``PLAYGROUND_MAX_PARAMS``);
    None when no setting has that name."""
    if key not in Settings.model_fields:
        return None
    return f"{Settings.model_config.get('env_prefix', '')}{key}".upper()


def public(exc: SpecError) -> dict[str, Any]:
    """The error's JSON (``to_dict``) with the setting behind its limit named: the engine
    gives ``detail["limit_key"]`` (``max_params``), the server adds ``detail["setting"]``
    (``PLAYGROUND_MAX_PARAMS``) and says to raise it."""
    body = exc.to_dict()
    detail = body.get("detail")
    key = detail.get("limit_key") if isinstance(detail, dict) else None
    env = setting_name(key) if isinstance(key, str) else None
    if env is not None:
        body["detail"] = {**detail, "setting": env}
        body["message"] = f"{body['message'].rstrip()} Or raise {env}."
    return body


def _spec_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, SpecError)
    headers = getattr(exc, "headers", None)
    return JSONResponse({"error": public(exc)}, status_code=status_of(exc), headers=headers)


def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    if errors and errors[0].get("type") == "json_invalid":  # not JSON at all: the 400 of /docs
        where = errors[0].get("ctx", {}).get("error", "")
        message = "The body is not valid JSON" + (f" ({where})" if where else "") + "."
        return JSONResponse(error_body("bad_request", message), status_code=400)
    problems = []
    for err in errors[:10]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        problems.append({"loc": loc, "problem": err.get("msg", "invalid")})
    first = problems[0] if problems else {"loc": "body", "problem": "invalid"}
    message = f"The request is not valid: {first['loc']}: {first['problem']}"
    if len(problems) > 1:
        message += f" (and {len(problems) - 1} more)"
    return JSONResponse(error_body("invalid_request", message, detail=problems), status_code=422)


CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "body_timeout",  # BodyGuard's: the body did not arrive in time
    413: "body_too_large",  # the only HTTPException 413: BodyGuard's
    415: "unsupported_media_type",
    429: "rate_limited",
}


def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = CODES.get(exc.status_code, "http_error")
    message = str(exc.detail)
    if exc.status_code == 404 and message == "Not Found":
        message = f"No route {request.method} {request.url.path}; see /docs for the API."
    headers = exc.headers
    if exc.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path}; see /docs."
        allow = ", ".join(allowed_methods(request, (headers or {}).get("Allow")))
        headers = {**(headers or {}), "Allow": allow}
    return JSONResponse(error_body(code, message), status_code=exc.status_code, headers=headers)


def allowed_methods(request: Request, allow: str | None) -> list[str]:
    """Every method the API takes at this path, from its OpenAPI document, with the ones
    Starlette's 405 names (``allow``): Starlette names only the methods of the first route
    that matched the path, and GET and POST /api/models are two routes."""
    # imported here: security imports middleware, which imports this module
    from server.security import path_pattern

    methods = {m.strip() for m in (allow or "").split(",") if m.strip()}
    for template, operations in request.app.openapi()["paths"].items():
        if path_pattern(template).match(request.url.path):
            methods |= {m.upper() for m in operations}
    return sorted(methods)


def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse(
        error_body("internal_error", "The server hit a bug; it has been logged."), status_code=500
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(SpecError, _spec_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
