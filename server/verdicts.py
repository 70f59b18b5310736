"""A memory of recent ``/api/validate`` verdicts, keyed by the spec's canonical JSON.

Shape inference depends only on the spec and the server's limits, so the same spec always
gets the same verdict. A class validates the same few specs again and again (every student
opens the same preset, the builder validates as one types and again on undo), and one
inference of the LSTM tagger costs about 25 ms of the device thread's time, where a lookup
costs a few microseconds on the event loop. Only verdicts are kept (valid, or the error
and the layers before it); refusals that are not about the spec (busy, over a limit) are
not. Specs whose JSON is longer than ``max_spec_chars`` are not kept, so that the memory
stays bounded: at most ``size`` entries of at most ``max_spec_chars`` characters plus a
verdict (about 300 bytes per layer).
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from typing import Any


class VerdictCache:
    """Least recently used first out; used from the event loop only (no lock)."""

    def __init__(self, size: int = 256, max_spec_chars: int = 32_768) -> None:
        self.size = size
        self.max_spec_chars = max_spec_chars
        self._verdicts: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def key(self, spec: dict[str, Any]) -> str | None:
        """The spec's digest, or None when it is too long to keep (or not JSON at all)."""
        try:
            text = json.dumps(spec, sort_keys=True, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError):
            return None
        if len(text) > self.max_spec_chars:
            return None
        return hashlib.sha256(text.encode()).hexdigest()

    def get(self, key: str | None) -> dict[str, Any] | None:
        verdict = self._verdicts.get(key) if key is not None else None
        if verdict is None:
            self.misses += 1
            return None
        self.hits += 1
        self._verdicts.move_to_end(key)
        return verdict

    def put(self, key: str | None, verdict: dict[str, Any]) -> None:
        if key is None or self.size < 1:
            return
        self._verdicts[key] = verdict
        self._verdicts.move_to_end(key)
        while len(self._verdicts) > self.size:
            self._verdicts.popitem(last=False)

    def __len__(self) -> int:
        return len(self._verdicts)
