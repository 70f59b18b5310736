"""Tensors to JSON payloads and back (statistics: ``models.stats``).

A payload is ``{"shape": [...], "dtype": "float32", "encoding": "f16", "data": ...}``:

- ``f16``: base64 of the little-endian float16 bytes in C order (half the bytes of f32,
  enough to draw). Values beyond ±65504 become ±inf, as ``t.half()`` does; NaN stays NaN.
- ``f32``: base64 of little-endian float32 bytes; lossless for float32 tensors.
- ``u8`` (for drawing, never for input): one byte per value, ``value ≈ offset + code × scale``
  with ``offset`` the minimum and ``scale = (max - min) / 255`` of the values sent: 256 levels
  across the range, as a colour scale has, each value within ``scale / 2`` of the exact one.
  ``exact_crc32`` is the CRC-32 (zlib's) of the values' ``f32`` bytes, so that exact values
  fetched later (a run asked again with ``f32``) can be checked to be the ones drawn. A tensor
  of at most ``U8_MIN_VALUES`` values, an integer or bool tensor, or one holding NaN or ±inf
  is sent as ``f32`` instead (its payload says so): its values are read one by one (bars,
  predictions, token ids), and it is small.
- ``list``: nested JSON lists (``t.tolist()``). Integer tensors stay integers, bool tensors
  become 0/1. JSON has no NaN or infinity, so those floats are written as the strings
  ``"NaN"``, ``"Infinity"`` and ``"-Infinity"`` (the spellings JavaScript's ``Number()``
  reads), and ``decode`` reads them back.

``dtype`` is always the original tensor's dtype. Integer and bool tensors sent as f16/f32 are
cast to float. A payload downsampled for display (see ``encode``) also carries
``"true_shape"`` (the original shape) and ``"downsampled": true``.
"""

from __future__ import annotations

import binascii
import math
import sys
import zlib
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import pybase64
import torch
import torch.nn.functional as F

from models.errors import LimitError, SpecError, fmt_shape

Encoding = Literal["f16", "f32", "list"]
DisplayEncoding = Literal["u8", "f16", "f32", "list"]

ENCODINGS: tuple[str, ...] = ("f16", "f32", "list")  # what ``decode`` reads (inputs)
DISPLAY_ENCODINGS: tuple[str, ...] = ("u8", *ENCODINGS)  # what ``encode`` writes
U8_MIN_VALUES = 256  # at most this many values: f32 under u8 (1.3 KB, read one by one)
_BYTE_DTYPES = {"f16": np.dtype("<f2"), "f32": np.dtype("<f4")}
_TORCH_DTYPES = {"f16": torch.float16, "f32": torch.float32}
_LITTLE_ENDIAN = sys.byteorder == "little"  # payloads are little-endian: no swap needed
_INT_DTYPES = {"int64", "int32", "long", "int"}
_NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_MAX_NDIM = 32


def dtype_name(dtype: torch.dtype) -> str:
    """``torch.float32`` -> ``"float32"``."""
    return str(dtype).removeprefix("torch.")


# --------------------------------------------------------------------------- encode


def _pool_factor(n_rows: int, h: int, w: int, max_elements: int) -> int:
    """Smallest k with ``n_rows * ceil(h/k) * ceil(w/k) <= max_elements`` (binary search)."""
    lo, hi = 1, max(h, w)
    while lo < hi:
        k = (lo + hi) // 2
        if n_rows * -(-h // k) * -(-w // k) <= max_elements:
            hi = k
        else:
            lo = k + 1
    return lo


def downsample(t: torch.Tensor, max_elements: int) -> torch.Tensor:
    """Shrink ``t`` to at most ``max_elements`` values for display.

    1-D: ``adaptive_avg_pool1d`` by the smallest integer factor k (n -> ceil(n/k)).
    N-D: average-pool the last two dims by the smallest integer factor k that fits
    (H×W -> ceil(H/k)×ceil(W/k)), keeping the leading dims. When the leading dims alone hold
    more than ``max_elements`` rows, they are flattened and only the first ``max_elements``
    rows are kept (each pooled to 1×1), giving shape ``(max_elements, 1, 1)``.
    Pooling runs in float64 for float64 tensors and in float32 otherwise.
    """
    if max_elements < 1:
        raise ValueError("max_elements must be at least 1")
    if t.numel() <= max_elements or t.ndim == 0:
        return t
    work = t.to(torch.float64 if t.dtype == torch.float64 else torch.float32)
    if t.ndim == 1:
        n = t.shape[0]
        k = -(-n // max_elements)
        return F.adaptive_avg_pool1d(work[None, None], -(-n // k))[0, 0]
    *lead, h, w = t.shape
    rows = math.prod(lead)
    if rows > max_elements:
        work = work.reshape(rows, h, w)[:max_elements]
        return F.adaptive_avg_pool2d(work, (1, 1))
    k = _pool_factor(rows, h, w, max_elements)
    out = F.adaptive_avg_pool2d(work.reshape(rows, 1, h, w), (-(-h // k), -(-w // k)))
    return out.reshape(*lead, out.shape[-2], out.shape[-1])


def _json_list(t: torch.Tensor) -> Any:
    if t.dtype == torch.bool:
        return t.to(torch.int64).tolist()
    if not t.is_floating_point():
        return t.tolist()
    data = t.tolist()
    if bool(torch.isfinite(t).all()):
        return data
    return _replace_nonfinite(data)


def _replace_nonfinite(x: Any) -> Any:
    if isinstance(x, list):
        return [_replace_nonfinite(v) for v in x]
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    return x


def _b64(arr: np.ndarray) -> str:
    """Base64 of the array's bytes in C order (pybase64: SIMD, ~40x binascii's speed)."""
    return pybase64.b64encode_as_string(arr if arr.flags.c_contiguous else arr.tobytes())


def _u8(sent: torch.Tensor, payload: dict[str, Any]) -> dict[str, Any] | None:
    """The u8 fields for ``sent``, or None when it goes as f32 (see the module's docstring)."""
    if sent.numel() <= U8_MIN_VALUES or not sent.is_floating_point():
        return None
    exact = sent.to(torch.float32)
    lo, hi = torch.aminmax(exact)
    lo_f, hi_f = float(lo), float(hi)
    if not (math.isfinite(lo_f) and math.isfinite(hi_f)):  # NaN or ±inf somewhere
        return None
    arr = exact.numpy()
    if not _LITTLE_ENDIAN:
        arr = arr.astype(_BYTE_DTYPES["f32"])
    # in float64: the codes are those of the float32 values, whatever float32's rounding
    scale = (hi_f - lo_f) / 255
    codes = exact.to(torch.float64).sub_(lo_f)
    if scale > 0:
        codes.div_(scale).round_().clamp_(0, 255)
    else:
        codes.zero_()
    payload["encoding"] = "u8"
    payload["scale"] = scale
    payload["offset"] = lo_f
    payload["exact_crc32"] = zlib.crc32(arr.tobytes())
    payload["data"] = _b64(codes.to(torch.uint8).numpy())
    return payload


def encode(
    t: torch.Tensor, encoding: DisplayEncoding = "f16", max_elements: int | None = None
) -> dict:
    """Turn a tensor (any device, any grad state) into a JSON-safe payload.

    With ``max_elements``, a tensor holding more values is downsampled first (see
    ``downsample``); the payload's ``shape`` is then the shape sent, with ``true_shape`` and
    ``downsampled: true`` added.
    """
    if encoding not in DISPLAY_ENCODINGS:
        raise ValueError(
            f"unknown encoding {encoding!r}; use one of {', '.join(DISPLAY_ENCODINGS)}"
        )
    if t.requires_grad:  # each torch call costs ~10 µs in a request: only those needed
        t = t.detach()
    if t.device.type != "cpu":
        t = t.cpu()
    sent = t
    if max_elements is not None and t.numel() > max_elements:
        sent = downsample(t, max_elements)
    payload: dict[str, Any] = {
        "shape": list(sent.shape),
        "dtype": dtype_name(t.dtype),
        "encoding": encoding,
    }
    if sent is not t:
        payload["true_shape"] = list(t.shape)
        payload["downsampled"] = True
    if encoding == "u8":
        if _u8(sent, payload) is not None:
            return payload
        payload["encoding"] = encoding = "f32"
    if encoding == "list":
        payload["data"] = _json_list(sent)
    else:
        # one tensor at a time: casting all of a probe's tensors in one torch.cat was quicker
        # in a tight loop but slower in the server, where each request starts with cold
        # caches; tobytes() writes C order whatever the strides
        dtype = torch.float16 if encoding == "f16" else torch.float32
        arr = (sent if sent.dtype == dtype else sent.to(dtype)).numpy()
        if not _LITTLE_ENDIAN:
            arr = arr.astype(_BYTE_DTYPES[encoding])
        payload["data"] = _b64(arr)
    return payload


# --------------------------------------------------------------------------- decode


FLOAT32_MAX = float(torch.finfo(torch.float32).max)


def out_of_range(x: float, what: str) -> str | None:
    """The one rule for numbers given for float32 values (tensor data, constants, random
    parameters): a finite number beyond float32's range is refused, never silently made
    ±inf; infinity itself is asked for by name ("Infinity" in tensor data)."""
    if math.isfinite(x) and abs(x) > FLOAT32_MAX:
        return (
            f"{what} is {x:g}, beyond float32's range (±{FLOAT32_MAX:.6g}); use a smaller "
            f'number, or "Infinity" / "-Infinity" in tensor data for an infinite value'
        )
    return None


def _bad(message: str) -> SpecError:
    return SpecError("bad_tensor", message)


def _check_numel(shape: list[int], max_elements: int) -> int:
    numel = math.prod(shape)
    if numel > max_elements:
        raise LimitError(
            f"the tensor has {numel:,} elements ({fmt_shape(shape)}); the limit is "
            f"{max_elements:,} elements. Send a smaller tensor."
        )
    return numel


def _parse_shape(raw: Any) -> list[int]:
    if not isinstance(raw, list | tuple) or len(raw) > _MAX_NDIM:
        raise _bad(f"shape must be a list of at most {_MAX_NDIM} non-negative integers")
    if any(isinstance(d, bool) or not isinstance(d, int) for d in raw):
        raise _bad(f"shape must hold integers, got {list(raw)!r}")
    if any(d < 0 for d in raw):
        raise _bad(f"shape {list(raw)!r} has a negative dimension; sizes must be 0 or more")
    return [int(d) for d in raw]


def _infer_shape(data: Any) -> list[int]:
    shape: list[int] = []
    cur = data
    while isinstance(cur, list):
        if len(shape) >= _MAX_NDIM:
            raise _bad(f"data is nested more than {_MAX_NDIM} levels deep")
        shape.append(len(cur))
        if not cur:
            break
        cur = cur[0]
    return shape


def _leaf(x: Any, integer: bool, where: str) -> float | int:
    if isinstance(x, str) and x in _NONFINITE and not integer:
        return _NONFINITE[x]
    if isinstance(x, bool) or not isinstance(x, int | float):
        raise _bad(
            f"data{where} is {x!r}, not a number; every entry must be a number"
            + ("" if integer else ' (or "NaN", "Infinity", "-Infinity")')
        )
    if integer:
        if isinstance(x, float) and not x.is_integer():
            raise _bad(f"data{where} is {x!r}; an integer tensor needs whole numbers")
        x = int(x)
        if not -(2**63) <= x < 2**63:
            raise _bad(f"data{where} is {x}, outside the int64 range")
        return x
    try:
        value = float(x)
    except OverflowError:
        raise _bad(f"data{where} is too large for a float") from None
    problem = out_of_range(value, f"data{where}")
    if problem:
        raise _bad(problem)
    return value


def _walk(data: Any, shape: list[int], integer: bool, out: list, where: str = "") -> None:
    """Check that ``data`` nests exactly as ``shape`` says and append its leaves to ``out``."""
    if not shape:
        if isinstance(data, list):
            raise _bad(f"data{where} is a list where a number was expected (ragged nesting)")
        out.append(_leaf(data, integer, where))
        return
    if not isinstance(data, list):
        raise _bad(f"data{where} is {data!r} where a list of {shape[0]} was expected")
    if len(data) != shape[0]:
        raise _bad(
            f"data{where} has {len(data)} entries but its siblings have {shape[0]}; "
            "nested lists must be rectangular (not ragged)"
        )
    for i, item in enumerate(data):
        _walk(item, shape[1:], integer, out, f"{where}[{i}]")


def _decode_list(data: Any, shape: list[int] | None, integer: bool, max_elements: int):
    inferred = _infer_shape(data)
    _check_numel(inferred, max_elements)
    flat: list = []
    _walk(data, inferred, integer, flat)
    t = torch.tensor(flat, dtype=torch.int64 if integer else torch.float32).reshape(inferred)
    if shape is None or shape == inferred:
        return t
    if len(inferred) == 1 and math.prod(shape) == inferred[0]:
        return t.reshape(shape)  # a flat list with a declared shape
    raise _bad(
        f"data nests as {fmt_shape(inferred)} but shape says {fmt_shape(shape)}; "
        "make them agree, or leave shape out"
    )


def _decode_bytes(data: Any, shape: list[int] | None, encoding: str, numel: int) -> torch.Tensor:
    if shape is None:
        raise _bad(f"a {encoding} payload needs a shape")
    if not isinstance(data, str):
        raise _bad(f"a {encoding} payload's data must be a base64 string")
    item = _BYTE_DTYPES[encoding].itemsize
    need = f"needs {numel * item} ({numel} elements × {item} bytes); fix the shape or the data"
    if len(data) > 4 * (-(-numel * item // 3)) + 4:  # too long: refuse before decoding
        raise _bad(f"data is {len(data)} base64 characters but shape {fmt_shape(shape)} {need}")
    try:
        raw = pybase64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise _bad("data is not valid base64 (standard alphabet, with = padding)") from None
    if len(raw) != numel * item:
        raise _bad(f"data holds {len(raw)} bytes but shape {fmt_shape(shape)} in {encoding} {need}")
    if not _LITTLE_ENDIAN or not raw:  # NumPy swaps the bytes; frombuffer refuses b""
        arr = np.frombuffer(raw, dtype=_BYTE_DTYPES[encoding]).astype(np.float32)  # a copy
        return torch.from_numpy(arr).reshape(shape)
    # the fewest torch calls (each costs ~10 µs in a request, whose caches are cold): the
    # bytes copied once into a writable buffer the tensor keeps
    t = torch.frombuffer(bytearray(raw), dtype=_TORCH_DTYPES[encoding]).view(shape)
    return t if encoding == "f32" else t.float()


def decode(payload: Mapping[str, Any], *, max_elements: int) -> torch.Tensor:
    """Turn a payload back into a tensor (float32, or int64 for a ``list`` payload whose
    ``dtype`` is an integer type). ``encoding`` defaults to ``list``, whose ``shape`` may be
    left out (it is read from the nesting); a flat list with a ``shape`` is reshaped.

    Raises ``SpecError("bad_tensor")`` for a malformed payload and ``LimitError`` when it holds
    more than ``max_elements`` values, checked before anything is allocated.
    """
    if not isinstance(payload, Mapping):
        raise _bad('a tensor must be an object {"shape", "encoding", "data"}')
    encoding = payload.get("encoding", "list")
    if encoding not in ENCODINGS:
        raise _bad(f"unknown encoding {encoding!r}; use one of {', '.join(ENCODINGS)}")
    if "data" not in payload:
        raise _bad("the payload has no data")
    shape = _parse_shape(payload["shape"]) if payload.get("shape") is not None else None
    numel = _check_numel(shape, max_elements) if shape is not None else None
    if encoding == "list":
        integer = str(payload.get("dtype", "float32")).removeprefix("torch.") in _INT_DTYPES
        return _decode_list(payload["data"], shape, integer, max_elements)
    return _decode_bytes(payload["data"], shape, encoding, numel or 0)
