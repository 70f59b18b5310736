"""Schemathesis checks of the playground's own, for the live fuzz (``SCHEMATHESIS_HOOKS``).

Schemathesis' ``positive_data_acceptance`` expects a 2xx for every request its schema
allows. The playground refuses some of those on purpose, with a 4xx naming what to change:
the spec is checked against the layer catalog (``/api/catalog`` serves each layer's
arguments; the OpenAPI document describes a spec only as an object), shapes must fit, a
loss's reduction must be one that loss takes. Those are not disagreements between the
document and the validation. This check keeps the one that is: a request the document
allows refused by the request validation itself (``invalid_request``) for a field's type or
bounds (not for a rule across fields, such as a random input's ``high > low``).

Requests with an integer past 2**53 are not judged: schemathesis computes the boundary
values of a bound such as torch's seed limit (``< 2**63``) in floats, and sends 2**63 + 190
as a value below it.
"""

from __future__ import annotations

from typing import Any

import schemathesis

EXACT = 2**53  # the last integer a float (a JSON number in most parsers) holds exactly


def _has_huge_integer(value: Any) -> bool:
    if isinstance(value, dict):
        return any(_has_huge_integer(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_huge_integer(v) for v in value)
    return isinstance(value, int) and not isinstance(value, bool) and abs(value) > EXACT


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
    if error.get("code") != "invalid_request" or _has_huge_integer(case.body):
        return None
    # "Value error, ...": a rule across fields written as a validator (high > low), which a
    # JSON Schema cannot state; a type or a bound the document gives reads otherwise
    fields = [
        p["loc"]
        for p in error.get("detail", [])
        if p.get("loc") != "body" and not str(p.get("problem", "")).startswith("Value error")
    ]
    if fields:
        raise AssertionError(
            f"A request the OpenAPI allows was refused at {', '.join(fields)}: "
            f"{error.get('message')}"
        )
    return None
