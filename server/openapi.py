"""Corrections to the OpenAPI document FastAPI generates, so that it states what the
validation does.

- A discriminated union (``Field(discriminator="kind")``) needs its tag in every input, but
  each member declares the tag with a default (``kind: Literal["random"] = "random"``), so the
  document listed ``kind`` as optional and clients (and fuzzers) left it out. The OpenAPI
  specification asks for the discriminator property to be required in each member schema.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI


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


def install(app: FastAPI) -> None:
    """Correct the app's OpenAPI document (each time it is asked for: the corrections are
    idempotent, and FastAPI rebuilds the document when routes change)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        schema = build()
        require_discriminators(schema)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented hook
