"""Weights uploads: streamed to a temporary file under their cap, a few at a time, and
loaded from that file one tensor at a time.

A 250 MiB upload held in memory costs its bytes twice while Starlette joins the chunks,
then once more as tensors; four at once raised the server's peak memory by about 1 GB.
Here the body goes to a temporary file as it arrives (``BodyGuard`` stops it at
``PLAYGROUND_MAX_UPLOAD_BYTES`` and at the request deadline), at most
``PLAYGROUND_MAX_CONCURRENT_UPLOADS`` uploads are read at once (then 503 with
``Retry-After``), and the worker checks the file in two passes that each hold one tensor:
first every name, shape, dtype and value, then the copy into the model.
"""

from __future__ import annotations

import mmap
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

import torch
from fastapi import Request
from safetensors import safe_open
from torch import nn

from models.errors import SpecError
from models.weights import check_against, read_header

RETRY_AFTER_S = 5


class UploadsBusy(SpecError):
    """Every upload slot is taken: 503 with ``Retry-After``."""

    def __init__(self, slots: int) -> None:
        super().__init__(
            "uploads_busy",
            f"The server is already receiving {slots} weights upload(s), its limit "
            f"(PLAYGROUND_MAX_CONCURRENT_UPLOADS). Try again in {RETRY_AFTER_S} s.",
            status=503,
            detail={"retry_after_s": RETRY_AFTER_S, "limit": slots},
        )
        self.headers = {"Retry-After": str(RETRY_AFTER_S)}


class UploadSlots:
    """At most ``slots`` uploads at once; used on the event loop only (no lock)."""

    def __init__(self, slots: int) -> None:
        self.slots = slots
        self.taken = 0

    @contextmanager
    def take(self) -> Iterator[None]:
        if self.taken >= self.slots:
            raise UploadsBusy(self.slots)
        self.taken += 1
        try:
            yield
        finally:
            self.taken -= 1


async def spool(request: Request) -> IO[bytes]:
    """The request body in a temporary file (deleted when closed), read as it arrives."""
    file = tempfile.NamedTemporaryFile(prefix="upload-", suffix=".safetensors")  # noqa: SIM115
    try:
        async for chunk in request.stream():
            file.write(chunk)
        file.flush()
    except BaseException:
        file.close()
        raise
    return file


def load_file(model: nn.Module, path: str, *, max_header_bytes: int) -> int:
    """Check the safetensors file at ``path`` against the model, then copy it in; the number
    of tensors. Nothing changes unless every tensor passes (names, shapes, dtypes, finite
    values after the cast to the model's dtype); memory holds one tensor at a time."""
    with open(path, "rb") as file:
        if file.seek(0, 2) == 0:
            read_header(b"", max_header_bytes=max_header_bytes)  # refuses it: too short
        with mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
            header = read_header(data, max_header_bytes=max_header_bytes)  # type: ignore[arg-type]
    check_against(model, header)
    state = model.state_dict()
    try:
        reader = safe_open(path, framework="pt")  # checks the offsets against the file
    except Exception as exc:  # safetensors raises its own error types for corrupt data
        raise SpecError("bad_weights", f"The safetensors file is corrupt: {exc}") from None
    with reader:
        for name in state:  # pass 1: every value, cast as it will be stored
            value = reader.get_tensor(name).to(state[name].dtype)
            if value.is_floating_point() and not torch.isfinite(value).all():
                raise SpecError(
                    "bad_weights",
                    f"{name} contains NaN or infinite values (as {value.dtype}); nothing "
                    f"was changed.",
                )
        with torch.no_grad():  # pass 2: all checked, now copy every tensor in
            for name, target in state.items():
                target.copy_(reader.get_tensor(name).to(target.dtype))
    return len(state)
