"""Weights as safetensors: never pickle, never ``torch.load``.

:func:`load_safetensors` reads the header itself first (its size is capped) and
checks every tensor's name, dtype and shape against the model before a byte of
tensor data is turned into a tensor.
"""

from __future__ import annotations

import json
import struct
from typing import Any

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from torch import nn

from models.errors import SpecError, fmt_shape

DTYPES = {
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "F64": torch.float64,
    "I64": torch.int64,
    "I32": torch.int32,
}


def to_safetensors(model: nn.Module) -> bytes:
    """The model's state_dict (parameters and buffers) as safetensors bytes, on the CPU."""
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    return st_save(_untie(state), metadata={"format": "pt"})


def _untie(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """safetensors refuses tensors that share memory; copy the repeats."""
    seen: set[int] = set()
    out = {}
    for k, v in state.items():
        ptr = v.data_ptr()
        out[k] = v.clone() if ptr in seen and v.numel() else v
        seen.add(ptr)
    return out


def read_header(data: bytes, *, max_header_bytes: int = 1 << 20) -> dict[str, Any]:
    """The safetensors JSON header, checked for size and form before anything is parsed."""
    # a safetensors file has its JSON header at byte 8 (the bytes before are its length, any
    # value); torch.save writes a zip archive, an older one a bare pickle (protocol 2 to 5)
    pickled = data[:4] == b"PK\x03\x04" or (
        len(data) > 1 and data[:1] == b"\x80" and data[1:2] in b"\x02\x03\x04\x05"
    )
    if pickled and data[8:9] != b"{":
        raise _bad(
            "This is a torch.save (pickle) file, not safetensors: pickles are refused on "
            "purpose, since loading one can run any code. Save the weights with "
            "safetensors.torch.save_file(model.state_dict(), 'weights.safetensors')."
        )
    if len(data) < 8:
        raise _bad("The file is too short to be safetensors (it needs an 8-byte header length).")
    if len(data) > 8 and data[8:9] not in (b"{", b"["):  # the spec: the header begins with {
        raise _bad(
            "This is not a safetensors file (its JSON header should begin at byte 8). Save "
            "the weights with safetensors.torch.save_file; pickled .pt/.pth files are not "
            "accepted."
        )
    (size,) = struct.unpack("<Q", data[:8])
    if size > max_header_bytes:
        raise _bad(
            f"The safetensors header claims {size:,} bytes; at most {max_header_bytes:,} "
            f"are accepted. Save the weights with safetensors.torch.save_file."
        )
    if 8 + size > len(data):
        raise _bad(
            f"The safetensors header claims {size:,} bytes but the file has only "
            f"{len(data) - 8:,} after the length field: the file is truncated or not "
            f"safetensors."
        )
    try:
        header = json.loads(data[8 : 8 + size])
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise _bad(
            "The safetensors header is not valid JSON: this is not a safetensors file "
            "(pickled .pt/.pth files are not accepted)."
        ) from None
    if not isinstance(header, dict):
        raise _bad("The safetensors header must be a JSON object.")
    header.pop("__metadata__", None)
    return header


def check_against(model: nn.Module, header: dict[str, Any]) -> None:
    """Every tensor of the model is in the file with its shape; nothing else is."""
    state = model.state_dict()
    missing = [k for k in state if k not in header]
    extra = [k for k in header if k not in state]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing[:5])}")
        if extra:
            parts.append(f"unexpected {', '.join(extra[:5])}")
        raise _bad(
            f"The file's tensor names do not match the model: {'; '.join(parts)}. "
            f"Download the model's weights to see the expected names.",
            detail={"missing": missing, "unexpected": extra},
        )
    for name, tensor in state.items():
        info = header[name]
        dtype = info.get("dtype") if isinstance(info, dict) else None
        if not isinstance(dtype, str) or dtype not in DTYPES:
            raise _bad(
                f"{name} has an unsupported dtype {dtype!r} (use one of {', '.join(DTYPES)})."
            )
        shape = info.get("shape")
        if not _is_shape(shape):
            raise _bad(f"{name} has no valid shape in the header (a list of sizes ≥ 0).")
        if list(shape) != list(tensor.shape):
            raise _bad(
                f"{name} has shape {fmt_shape(shape)} in the file but "
                f"{fmt_shape(tensor.shape)} in the model.",
                detail={"name": name, "expected": list(tensor.shape), "actual": shape},
            )


def _is_shape(shape: Any) -> bool:
    return isinstance(shape, list) and all(
        isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape
    )


def load_safetensors(model: nn.Module, data: bytes, *, max_header_bytes: int = 1 << 20) -> int:
    """Check ``data`` against the model, then copy it in. Returns the number of tensors."""
    header = read_header(data, max_header_bytes=max_header_bytes)
    check_against(model, header)
    try:
        tensors = st_load(data)
    except Exception as exc:  # safetensors raises its own error types for corrupt data
        raise _bad(f"The safetensors file is corrupt: {exc}") from None
    state = model.state_dict()
    cast = {name: value.to(state[name].dtype) for name, value in tensors.items()}
    for name, value in cast.items():  # after the cast: float64 1e300 becomes inf in float32
        if value.is_floating_point() and not torch.isfinite(value).all():
            raise _bad(
                f"{name} contains NaN or infinite values (as {value.dtype}); nothing was changed."
            )
    with torch.no_grad():  # all checked: now copy every tensor in
        for name, value in cast.items():
            state[name].copy_(value)
    return len(tensors)


def _bad(message: str, detail: Any = None) -> SpecError:
    return SpecError("bad_weights", message, detail=detail)
