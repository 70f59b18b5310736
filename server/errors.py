"""Every error leaves the server as ``{"error": {"code", "message", "layer"?, "detail"?}}``.

The engine raises :class:`models.errors.SpecError`; this module alone turns it, FastAPI's
validation errors and unknown routes into that one JSON shape.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from models.errors import SpecError

log = logging.getLogger("playground")


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message}
    body.update({k: v for k, v in extra.items() if v is not None})
    return {"error": body}


def _spec_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, SpecError)
    headers = getattr(exc, "headers", None)
    return JSONResponse({"error": exc.to_dict()}, status_code=exc.status, headers=headers)


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
