"""Corrections to the OpenAPI document FastAPI generates, so that it states what the
validation does.

- A discriminated union (``Field(discriminator="kind")``) needs its tag in every input, but
  each member declares the tag with a default (``kind: Literal["random"] = "random"``), so the
  document listed ``kind`` as optional and clients (and fuzzers) left it out. The OpenAPI
  specification asks for the discriminator property to be required in each member schema.
- Each operation lists the errors it can answer with, in the one error body: those its route
  declares (``errors(404, 503)``), and those every route of its kind has: 400, 413 and 415
  for a method with a body (server/middleware.py's BodyGuard), 401 behind a bearer token,
  422 with parameters or a body (FastAPI's validation, in our shape, not its own).
- The ``spec`` of a body that builds a model (``SPEC_BODIES``) is described by the spec's
  JSON Schema (``models.spec.Spec``), not as any object. It is still read as an object and
  checked by the engine, whose messages name the layer at fault. ``POST /api/validate`` keeps
  an object: it judges any object, answering a spec that breaks the schema with a verdict
  (``valid: false``), not a 4xx; its description points to the schema.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from models.spec import Spec
from server.schemas.common import ERROR_STATUSES

ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}
BODY_METHODS = {"post", "put", "patch"}
SPEC_BODIES = {"ModelCreate", "ModelUpdate"}  # refused with a 4xx unless a valid spec
JUDGED_SPEC_BODIES = {"ValidateRequest"}  # any object, answered with a verdict


def require_discriminators(schema: dict[str, Any]) -> None:
    """Add each discriminator's property to ``required`` of every schema it maps to."""
    components = schema.get("components", {}).get("schemas", {})

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            tag = node.get("discriminator", {}).get("propertyName")
            if tag:
                refs = list(node["discriminator"].get("mapping", {}).values())
                refs += [m["$ref"] for m in node.get("oneOf", []) if "$ref" in m]
                for ref in refs:
                    member = components.get(ref.rsplit("/", 1)[-1])
                    if member is not None and tag not in member.setdefault("required", []):
                        member["required"].append(tag)
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(schema)


def _error(status: int) -> dict[str, Any]:
    return {
        "description": ERROR_STATUSES[status],
        "content": {"application/json": {"schema": ERROR_REF}},
    }


def list_errors(schema: dict[str, Any]) -> None:
    """Add the errors every operation of its kind can answer with; every error (4xx, 5xx)
    in the one ``ErrorBody``. FastAPI's own validation schemas go (our 422 replaces them)."""
    for path, operations in schema.get("paths", {}).items():
        for method, op in operations.items():
            responses = op.setdefault("responses", {})
            wanted: set[int] = set()
            if method in BODY_METHODS and path.startswith("/api/"):
                wanted |= {400, 413, 415}
            security = op.get("security", [])
            if security and {} not in security:
                wanted.add(401)
            if op.get("parameters") or op.get("requestBody"):
                wanted.add(422)
            for status in sorted(wanted):
                responses.setdefault(str(status), _error(status))
            for status, answer in responses.items():
                if status.isdigit() and int(status) >= 400:
                    answer.setdefault("content", {})["application/json"] = {"schema": ERROR_REF}
                    if int(status) in ERROR_STATUSES:
                        answer["description"] = ERROR_STATUSES[int(status)]
    components = schema.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)


def spec_schemas(schema: dict[str, Any]) -> None:
    """Describe the ``spec`` of request bodies by the spec's own JSON Schema."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    spec = Spec.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, definition in spec.pop("$defs", {}).items():
        components.setdefault(name, definition)
    components.setdefault("Spec", spec)
    ref = {"$ref": "#/components/schemas/Spec"}
    for name in JUDGED_SPEC_BODIES:
        field = components.get(name, {}).get("properties", {}).get("spec")
        if field is not None:
            field["description"] = (
                "any object; judged against the spec's schema (#/components/schemas/Spec), "
                "the verdict says what to change"
            )
    for name in SPEC_BODIES:
        field = components.get(name, {}).get("properties", {}).get("spec")
        if field is not None:
            nullable = {"type": "null"} in field.get("anyOf", [])
            keep = {k: v for k, v in field.items() if k in ("description", "default")}
            field.clear()
            field.update({"anyOf": [ref, {"type": "null"}]} if nullable else dict(ref))
            field.update(keep)


def install(app: FastAPI) -> None:
    """Correct the app's OpenAPI document (each time it is asked for: the corrections are
    idempotent, and FastAPI rebuilds the document when routes change)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        schema = build()
        require_discriminators(schema)
        list_errors(schema)
        spec_schemas(schema)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented hook
