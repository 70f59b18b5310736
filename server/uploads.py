"""Weights uploads: streamed to a temporary file under their cap, a few at a time, and
loaded from that file one tensor at a time.

A 250 MiB upload held in memory costs its bytes twice while Starlette joins the chunks,
then once more as tensors; four at once raised the server's peak memory by about 1 GB.
Here the body goes to a temporary file as it arrives (``BodyGuard`` stops it at
``PLAYGROUND_MAX_UPLOAD_BYTES`` and at the request deadline), at most
``PLAYGROUND_MAX_CONCURRENT_UPLOADS`` uploads are read at once (then 503 with
``Retry-After``), and the worker checks the file in two passes that each hold a piece of one
tensor: first every name, shape, dtype and value, then the copy into the model.
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
from starlette.concurrency import run_in_threadpool
from torch import nn

from models.errors import SpecError
from models.weights import DTYPES, check_against, read_header

RETRY_AFTER_S = 5
WRITE_BYTES = 1 << 20  # the body is written to its file in pieces of about this size
READ_BYTES = 16 << 20  # and read back, tensor by tensor, in pieces of at most this size


class UploadsBusy(SpecError):
    """Every upload slot is taken: 503 with ``Retry-After``."""

    def __init__(self, slots: int) -> None:
        super().__init__(
            "uploads_busy",
            f"The server is already receiving {slots} weights upload(s), its limit "
            f"(PLAYGROUND_MAX_CONCURRENT_UPLOADS). Try again in {RETRY_AFTER_S} s.",
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
    """The request body in a temporary file (deleted when closed), read as it arrives and
    written a MiB at a time in a thread (a write can wait for the disk, never the loop)."""
    file = tempfile.NamedTemporaryFile(prefix="upload-", suffix=".safetensors")  # noqa: SIM115
    try:
        pending: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            pending.append(chunk)
            size += len(chunk)
            if size >= WRITE_BYTES:
                await run_in_threadpool(file.write, b"".join(pending))
                pending, size = [], 0
        await run_in_threadpool(file.write, b"".join(pending))
        await run_in_threadpool(file.flush)
    except BaseException:
        file.close()
        raise
    return file


def load_file(model: nn.Module, path: str, *, max_header_bytes: int) -> int:
    """Check the safetensors file at ``path`` against the model, then copy it in; the number
    of tensors. Nothing changes unless every tensor passes (names, shapes, dtypes, finite
    values after the cast to the model's dtype). Tensors are read in pieces of at most
    ``READ_BYTES``: memory holds one piece at a time, however large the file."""
    with open(path, "rb") as file:
        if file.seek(0, 2) == 0:
            read_header(b"", max_header_bytes=max_header_bytes)  # refuses it: too short
        with mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
            header = read_header(data, max_header_bytes=max_header_bytes)  # type: ignore[arg-type]
            start = 8 + int.from_bytes(data[:8], "little")
    check_against(model, header)
    try:
        with safe_open(path, framework="pt") as opened:  # checks every offset against the file
            opened.keys()
    except Exception as exc:  # safetensors raises its own error types for corrupt data
        raise SpecError("bad_weights", f"The safetensors file is corrupt: {exc}") from None
    state = model.state_dict()
    with open(path, "rb") as file:
        for name, target in state.items():  # pass 1: every value, cast as it will be stored
            for piece in _pieces(file, start, header[name], target.dtype):
                if piece.is_floating_point() and not torch.isfinite(piece).all():
                    raise SpecError(
                        "bad_weights",
                        f"{name} contains NaN or infinite values (as {target.dtype}); nothing "
                        f"was changed.",
                    )
        with torch.no_grad():  # pass 2: all checked, now copy every tensor in, piece by piece
            for name, target in state.items():
                pieces = _pieces(file, start, header[name], target.dtype)
                if not target.is_contiguous():  # no flat view of it: the whole tensor at once
                    target.copy_(torch.cat(list(pieces)).view(target.shape))
                    continue
                flat, at = target.view(-1), 0
                for piece in pieces:
                    flat[at : at + piece.numel()].copy_(piece)
                    at += piece.numel()
    return len(state)


def _pieces(file: IO[bytes], start: int, info: dict, dtype: torch.dtype) -> Iterator[torch.Tensor]:
    """One tensor of the file, flat, as pieces of at most READ_BYTES, cast to ``dtype``
    (safetensors stores little-endian, the byte order of every machine torch ships for)."""
    stored = DTYPES[info["dtype"]]
    size = torch.empty(0, dtype=stored).element_size()
    begin, end = info["data_offsets"]
    step = max(READ_BYTES // size, 1) * size
    for offset in range(begin, end, step):
        file.seek(start + offset)
        raw = bytearray(file.read(min(step, end - offset)))
        yield torch.frombuffer(raw, dtype=stored).to(dtype)
