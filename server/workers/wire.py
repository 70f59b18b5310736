"""What crosses from a worker process or a Ray actor back to the server.

Errors as plain data: a worker's ``SpecError`` comes back as the same error. An exception is
not pickled (its class may not take its attributes back as arguments): its class name among
the few the server knows, its message and its attributes go, and the server makes the error
again. Anything else that went wrong in a job is a bug: a logged 500.

A run's answer as its JSON bytes (:func:`for_the_wire`): rendered where the job ran, they
cross as one bytes object (no dict of a thousand objects to pickle and unpickle) and the
server sends them as they are, its event loop spared the rendering.
"""

from __future__ import annotations

from typing import Any

import pydantic_core

from models.errors import LimitError, SpecError
from server.worker import Busy, WorkerLost

KNOWN = {c.__name__: c for c in (SpecError, LimitError, Busy, WorkerLost)}


def render_json(content: Any) -> bytes:
    """JSON by pydantic-core's encoder (60 µs for LeNet-5's 57 KB run, where ``json`` takes
    330). Non-finite floats never reach it (statistics carry None, payloads are base64 or
    spelled-out strings); should one slip through it becomes null, still valid JSON."""
    return pydantic_core.to_json(content, inf_nan_mode="null")


def for_the_wire(msg: Any, result: Any) -> Any:
    """``result`` of ``msg`` as a worker sends it back: a run's as its JSON bytes (the route
    sends them as they are), anything else as it is."""
    from server.ops.messages import Run

    return render_json(result) if isinstance(msg, Run) else result


def pack_error(exc: SpecError) -> dict[str, Any]:
    name = type(exc).__name__
    if name not in KNOWN:
        name = "Busy" if isinstance(exc, Busy) else "SpecError"
    attrs = {k: v for k, v in vars(exc).items() if k != "partial"}
    return {"class": name, "message": str(exc), "attrs": attrs}


def unpack_error(payload: dict[str, Any]) -> Exception:
    if "bug" in payload:
        return RuntimeError(f"the worker process failed: {payload['bug']}")
    cls = KNOWN[payload["class"]]
    exc = cls.__new__(cls)
    Exception.__init__(exc, payload["message"])
    vars(exc).update(payload["attrs"])
    return exc
