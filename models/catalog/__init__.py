"""The layer catalog: every supported layer type, the single source of truth.

``CATALOG`` maps a type name (``"Conv2d"``) to its :class:`LayerType`;
:func:`lookup` finds one (with a suggestion for a misspelt name) and
:func:`catalog_json` is the description the API serves and the UI turns into forms.
"""

from __future__ import annotations

import difflib
from typing import Any

from models.catalog import activation, conv, linear, norm, recurrent, transformer
from models.catalog.registry import Arg, Example, LayerType, Source
from models.errors import SpecError

CATEGORIES = {
    "linear": "Linear",
    "convolution": "Convolution",
    "pooling": "Pooling",
    "recurrent": "Recurrent & embedding",
    "transformer": "Transformer",
    "normalization": "Normalization",
    "dropout": "Dropout",
    "activation": "Activations",
    "merge": "Merges",
    "reshape": "Reshaping",
}

SECTIONS = {
    "module_parameter": "Module & Parameter",
    "linear": "Linear layers",
    "convolution": "Convolutional layers",
    "recurrent": "Recurrent layers",
    "transformer": "Transformers",
    "pooling": "Max pooling (and min pooling)",
    "normalization": "Normalization layers",
    "dropout": "Dropout layers",
    "activations": "Activation functions",
    "losses": "Loss functions",
    "beyond": "Beyond the tutorial",
}


def _register(*groups: list[LayerType]) -> dict[str, LayerType]:
    table: dict[str, LayerType] = {}
    seen: dict[str, str] = {}
    for group in groups:
        for entry in group:
            key = entry.type.lower()
            if key in seen:
                raise ValueError(f"layer type {entry.type} registered twice")
            if entry.category not in CATEGORIES or entry.section not in SECTIONS:
                raise ValueError(f"{entry.type}: unknown category or section")
            seen[key] = entry.type
            table[entry.type] = entry
    return table


CATALOG: dict[str, LayerType] = _register(
    linear.ENTRIES,
    conv.ENTRIES,
    recurrent.ENTRIES,
    transformer.ENTRIES,
    norm.ENTRIES,
    activation.ENTRIES,
)
_BY_LOWER = {k.lower(): v for k, v in CATALOG.items()}


def lookup(type_name: str, layer: str | None = None) -> LayerType:
    """The entry for ``type_name``; a SpecError with the closest names when there is none."""
    entry = CATALOG.get(type_name)
    if entry is not None:
        return entry
    near = _BY_LOWER.get(str(type_name).lower().removeprefix("nn.").removeprefix("torch.nn."))
    hint = [near.type] if near else difflib.get_close_matches(str(type_name), list(CATALOG), n=3)
    suggestion = f" Did you mean {' or '.join(hint)}?" if hint else ""
    raise SpecError(
        "unknown_layer_type",
        f"{layer or 'a layer'} has type '{type_name}', which is not in the catalog.{suggestion} "
        f"GET /api/catalog lists the {len(CATALOG)} supported types.",
        layer=layer,
        detail={"type": type_name, "suggestions": hint},
    )


def catalog_json() -> dict[str, Any]:
    """The whole catalog as JSON-ready data: categories, sections and one entry per type."""
    return {
        "categories": CATEGORIES,
        "sections": SECTIONS,
        "layers": [entry.describe() for entry in CATALOG.values()],
    }


__all__ = ["CATALOG", "Arg", "Example", "LayerType", "Source", "catalog_json", "lookup"]
