"""What the store keeps: workspaces (their tokens only as hashes) and model records."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Workspace:
    id: str
    token_hash: str
    created: float
    last_used: float = field(default=0.0, compare=False)  # when it was read; moves on


@dataclass(frozen=True)
class ModelRecord:
    """One saved model. ``weights`` is a safetensors blob, or None: "as built from the seed".

    A record read from the store may leave its weights there: then ``weights`` is None and
    ``weights_loader`` reads them; :meth:`load_weights` covers both cases. Such a record
    also knows how to read the model's latest stored version (``fetch_latest``): a job
    queued behind changes to the same model builds from that one.
    """

    id: str
    workspace_id: str
    spec: dict[str, Any]  # the resolved spec ("auto" filled)
    seed: int
    params: int = 0  # parameter count, for listings without loading the model
    weights: bytes | None = None
    frozen: tuple[str, ...] = ()  # parameter names with requires_grad=False
    version: int = 1
    created: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)
    preset: str | None = None  # the preset it was created from
    weights_loader: Callable[[], bytes | None] | None = field(
        default=None, repr=False, compare=False
    )
    fetch_latest: Callable[[], ModelRecord | None] | None = field(
        default=None, repr=False, compare=False
    )

    @property
    def name(self) -> str:
        return str(self.spec.get("name", "Model"))

    @property
    def weights_deferred(self) -> bool:
        """The weights are those already stored for this version, not carried here."""
        return self.weights is None and self.weights_loader is not None

    def load_weights(self) -> bytes | None:
        """The safetensors bytes (read from the store when deferred), or None: as seeded."""
        loader = self.weights_loader
        return loader() if self.weights is None and loader is not None else self.weights

    def changed(self, **updates: Any) -> ModelRecord:
        if "weights" in updates:  # new weights (or None: as seeded) replace the stored ones
            updates.setdefault("weights_loader", None)
        return replace(self, version=self.version + 1, updated=time.time(), **updates)
