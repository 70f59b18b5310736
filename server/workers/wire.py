"""Errors across the pipe as plain data: a worker's ``SpecError`` comes back as the same error.

An exception is not pickled (its class may not take its attributes back as arguments): its
class name among the few the server knows, its message and its attributes go, and the server
makes the error again. Anything else that went wrong in a job is a bug: a logged 500.
"""

from __future__ import annotations

from typing import Any

from models.errors import LimitError, SpecError
from server.worker import Busy, WorkerLost

KNOWN = {c.__name__: c for c in (SpecError, LimitError, Busy, WorkerLost)}


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
