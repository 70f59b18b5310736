"""Schemathesis checks of the playground's own, for the live fuzz (``SCHEMATHESIS_HOOKS``).

Schemathesis' ``positive_data_acceptance`` expects a 2xx for every request its schema
allows. The playground refuses some of those on purpose, with a 4xx naming what to change:
the spec is checked against the layer catalog (``/api/catalog`` serves each layer's
arguments; the OpenAPI document describes a spec only as an object), shapes must fit, a
loss's reduction must be one that loss takes. Those are not disagreements between the
document and the validation. This check keeps the one that is: a request the document
allows refused by the request validation itself (``invalid_request``) at a named field.
"""

from __future__ import annotations

import schemathesis


@schemathesis.check
def schema_valid_fields_are_accepted(ctx, response, case):
    """A request the OpenAPI allows is never refused for one of its fields' types or
    bounds (422 ``invalid_request`` with a field's location)."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code != 422:
        return None
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        return None
    if error.get("code") != "invalid_request":
        return None
    fields = [p["loc"] for p in error.get("detail", []) if p.get("loc") != "body"]
    if fields:
        raise AssertionError(
            f"A request the OpenAPI allows was refused at {', '.join(fields)}: "
            f"{error.get('message')}"
        )
    return None
