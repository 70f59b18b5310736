"""Input makers: the tensors a model is run on, made from a small JSON description.

Each maker is a pydantic model tagged by ``kind`` (the server reuses them as request
schemas): ``tensor`` (given values), ``random`` (seeded), ``constant``, ``tokens`` (text
looked up in a vocabulary), ``image`` (a PNG or JPEG, resized to the declared shape) and
``dataset`` (one sample of an offline dataset, with its label).
``make_input`` turns one into a tensor of the declared shape and dtype, checking every cost
before spending it.

Random inputs use a private ``torch.Generator`` seeded with ``seed``, which draws the same
numbers as ``torch.manual_seed(seed); torch.randn(shape)`` in plain torch.
"""

from __future__ import annotations

import binascii
import io
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import numpy as np
import pybase64
import torch
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from models.datasets import DATASETS, DEFAULT_ROOTS, DataRoots, apply_transforms, get_sample
from models.datasets.transforms import Transform
from models.errors import LimitError, SpecError, fmt_shape
from models.tensors import Encoding, decode, out_of_range
from models.tokens import token_shape, tokenize

_FLOAT_DTYPES = {
    "float32": torch.float32,
    "float": torch.float32,
    "float64": torch.float64,
    "double": torch.float64,
    "float16": torch.float16,
    "half": torch.float16,
    "bfloat16": torch.bfloat16,
}
_INT_DTYPES = {"int64", "long", "int32", "int", "int16", "int8", "uint8"}


class _Maker(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class TensorInput(_Maker):
    """Given values: nested lists of numbers, or a payload ``{shape, encoding, data}``."""

    kind: Literal["tensor"] = "tensor"
    data: Any = Field(description="nested lists of numbers, base64 bytes, or a whole payload")
    encoding: Encoding = "list"
    shape: list[int] | None = Field(None, description="needed for f16/f32; optional for list")


class RandomInput(_Maker):
    """Seeded random values: normal(mean, std) or uniform[low, high); integers for int inputs."""

    kind: Literal["random"] = "random"
    distribution: Literal["normal", "uniform"] = "normal"
    seed: int = Field(0, ge=0, lt=2**63)
    low: float = 0.0
    high: float = 1.0
    mean: float = 0.0
    std: float = Field(1.0, ge=0)

    @model_validator(mode="after")
    def _range(self) -> RandomInput:
        if not self.high > self.low:
            raise ValueError(f"high ({self.high}) must be greater than low ({self.low})")
        return self


# the maker of an input nobody gave one for (a run, an effect, a preset): one definition
DEFAULT_MAKER = {"kind": "random", "distribution": "normal", "seed": 0}


class ConstantInput(_Maker):
    """Every element set to ``value``."""

    kind: Literal["constant"] = "constant"
    value: float


class TokensInput(_Maker):
    """Words looked up in the model's vocabulary, giving a sequence of int64 indices."""

    kind: Literal["tokens"] = "tokens"
    text: str = Field(max_length=10_000)


class ImageInput(_Maker):
    """A PNG or JPEG (base64, or a ``data:`` URL), resized to the declared H×W."""

    kind: Literal["image"] = "image"
    png_base64: str


class DatasetInput(_Maker):
    """Sample ``index`` of a dataset's split, after the transforms (as a training feeds it)."""

    kind: Literal["dataset"] = "dataset"
    dataset: str = Field(max_length=64)
    split: Literal["train", "test"] = "test"
    index: int = Field(0, ge=0, le=10**7)
    params: dict[str, Any] = Field(default_factory=dict, max_length=16)
    transforms: list[Transform] = Field(default_factory=list, max_length=8)


AnyMaker = TensorInput | RandomInput | ConstantInput | TokensInput | ImageInput | DatasetInput
InputMaker = Annotated[AnyMaker, Field(discriminator="kind")]
_ADAPTER: TypeAdapter[Any] = TypeAdapter(InputMaker)
_KINDS = "tensor, random, constant, tokens, image or dataset"


@dataclass
class MadeInput:
    """The tensor made, and for token input the vocabulary words it stands for."""

    tensor: torch.Tensor
    tokens: list[str] | None = None
    label: Any = None  # a dataset sample's label: class index, value or tag indices


def parse_maker(maker: Any) -> AnyMaker:
    """Validate a maker given as a dict; a pydantic error becomes ``SpecError('invalid_input')``."""
    if isinstance(maker, AnyMaker):
        return maker
    if not isinstance(maker, Mapping):
        raise SpecError("invalid_input", f'an input maker must be an object {{"kind": {_KINDS}}}')
    try:
        return _ADAPTER.validate_python(dict(maker))
    except ValidationError as exc:
        parts = []
        for err in exc.errors(include_url=False):
            loc = ".".join(str(p) for p in err["loc"])
            parts.append(f"{loc}: {err['msg']}" if loc else err["msg"])
        raise SpecError(
            "invalid_input", f"bad input maker ({'; '.join(parts)}); kind is one of {_KINDS}"
        ) from None


def _declared_numel(shape: Sequence[int], max_elements: int, label: str) -> None:
    if any(int(d) < 0 for d in shape):
        raise SpecError("invalid_input", f"{label} has a negative size: {list(shape)}")
    numel = math.prod(int(d) for d in shape)
    if numel > max_elements:
        raise LimitError(
            f"{label} is {fmt_shape(shape)} = {numel:,} elements; the limit is "
            f"{max_elements:,}. Declare a smaller input shape."
        )


def _check_range(m: AnyMaker) -> None:
    """Numbers given for float values fit float32 (``models.tensors.out_of_range``, the rule
    tensor data follows too): a 1e308 constant and a 1e308 tensor are both refused."""
    numbers: list[tuple[str, float]] = []
    if isinstance(m, ConstantInput):
        numbers = [("value", m.value)]
    elif isinstance(m, RandomInput):
        numbers = [("mean", m.mean), ("std", m.std), ("low", m.low), ("high", m.high)]
        if m.distribution == "uniform":
            numbers.append(("high - low", m.high - m.low))
    for what, value in numbers:
        problem = out_of_range(value, what)
        if problem:
            raise SpecError("invalid_input", problem)


def _random(m: RandomInput, shape: tuple[int, ...], integer: bool, vocab) -> torch.Tensor:
    g = torch.Generator().manual_seed(m.seed)
    if integer:
        low, high = (0, len(vocab)) if vocab else (math.ceil(m.low), math.ceil(m.high))
        if high <= low or high > 2**63 or low < -(2**63):
            raise SpecError(
                "invalid_input",
                f"random integers need a range [low, high) holding at least one int64 value; "
                f"got [{m.low}, {m.high}). Set high above low.",
            )
        return torch.randint(low, high, shape, generator=g)
    if m.distribution == "normal":
        x, scale, shift = torch.randn(shape, generator=g), m.std, m.mean
    else:
        x, scale, shift = torch.rand(shape, generator=g), m.high - m.low, m.low
    # shift + scale * x, in place, and skipped where it changes nothing (the usual N(0, 1))
    if scale != 1:
        x.mul_(scale)
    if shift != 0:
        x.add_(shift)
    return x


def _constant(m: ConstantInput, shape: tuple[int, ...], integer: bool, vocab) -> torch.Tensor:
    if not integer:
        return torch.full(shape, m.value)
    if not m.value.is_integer() or not -(2**63) <= m.value < 2**63:
        raise SpecError("invalid_input", f"this input holds integers; {m.value} is not one")
    if vocab and not 0 <= m.value < len(vocab):
        raise SpecError(
            "invalid_input",
            f"token index {int(m.value)} is outside the vocabulary (0–{len(vocab) - 1})",
        )
    return torch.full(shape, int(m.value), dtype=torch.int64)


def _image(m: ImageInput, shape: Sequence[int] | None, max_pixels: int) -> torch.Tensor:
    if shape is None or len(shape) not in (3, 4):
        raise SpecError(
            "input_shape_mismatch",
            "image inputs need a (N, C, H, W) or (C, H, W) shape; "
            f"this input is declared {fmt_shape(shape) if shape is not None else 'without one'}",
        )
    c, h, w = (int(d) for d in shape[-3:])
    if c not in (1, 3):
        raise SpecError(
            "invalid_input", f"image inputs need 1 (grey) or 3 (RGB) channels; this one has {c}"
        )
    text = m.png_base64
    if text.startswith("data:") and "," in text:
        text = text.split(",", 1)[1]
    try:
        raw = pybase64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise SpecError("bad_image", "png_base64 is not valid base64") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(raw), formats=["PNG", "JPEG"])
    except Image.DecompressionBombError:
        raise LimitError(f"the image is too large; the limit is {max_pixels:,} pixels") from None
    except (OSError, ValueError, SyntaxError, EOFError):
        raise SpecError("bad_image", "the data is not a PNG or JPEG image") from None
    with img:
        iw, ih = img.size
        if iw * ih > max_pixels:
            raise LimitError(
                f"the image is {iw}×{ih} = {iw * ih:,} pixels; the limit is {max_pixels:,}. "
                "Send a smaller image."
            )
        try:
            if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:
                rgba = img.convert("RGBA")
                img = Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba)
            img = img.convert("L" if c == 1 else "RGB")
            img = img.resize((w, h), Image.Resampling.BILINEAR)
        except (OSError, ValueError, SyntaxError, EOFError):
            raise SpecError("bad_image", "the image data is damaged or truncated") from None
    arr = np.asarray(img, dtype=np.float32) / 255.0
    arr = arr[None] if c == 1 else arr.transpose(2, 0, 1)
    t = torch.from_numpy(np.ascontiguousarray(arr))  # (C, H, W)
    return t[None] if len(shape) == 4 else t


def _dataset(m: DatasetInput, shape: Sequence[int] | None, integer: bool, roots: DataRoots):
    x, label = get_sample(m.dataset, m.split, m.index, params=m.params or None, roots=roots)
    info = DATASETS[m.dataset]
    if (info.dtype == "int64") != integer:
        raise SpecError(
            "input_shape_mismatch",
            f"{m.dataset} gives {info.dtype} samples; this input is "
            f"{'int64' if integer else 'float32'}: choose another dataset or change the input",
        )
    if integer:
        if m.transforms:
            raise SpecError("invalid_input", f"{m.dataset}'s samples are tokens: remove transforms")
        batch = x[None]
    else:
        batch = apply_transforms(x[None], m.transforms, value_range=info.value_range)
    if shape is None or len(shape) == batch.ndim:
        return batch, label
    if len(shape) == batch.ndim - 1:
        return batch[0], label
    raise SpecError(
        "input_shape_mismatch",
        f"{m.dataset} gives samples of {fmt_shape(tuple(batch.shape[1:]))}; the input is "
        f"declared {fmt_shape(shape)}: add transforms (pad, flatten) or change the input",
    )


def make_input(
    maker: Any,
    shape: Sequence[int] | None,
    dtype: str = "float32",
    *,
    vocab: Sequence[str] | None = None,
    max_elements: int = 10_000_000,
    max_pixels: int = 4_000_000,
    name: str | None = None,
    data_roots: DataRoots = DEFAULT_ROOTS,
) -> MadeInput:
    """Make the tensor for one model input declared with ``shape`` and ``dtype``.

    ``maker`` is an ``InputMaker`` or a dict to validate as one. Random and constant inputs
    take the declared shape; a given tensor may have any shape of the declared rank (the
    engine re-infers shapes), or any shape at all when ``shape`` is None; tokens take their
    length from the text; images are resized to the declared H×W (alpha composited on white).
    Integer dtypes give int64 tensors. A dataset sample comes with its label, batched to
    the declared rank; ``data_roots`` says where file-backed datasets live. ``name`` only
    improves messages.
    """
    m = parse_maker(maker)
    label = f"input {name!r}" if name else "the input"
    integer = dtype in _INT_DTYPES
    if not integer and dtype not in _FLOAT_DTYPES:
        raise SpecError("invalid_input", f"unknown input dtype {dtype!r}; use float32 or int64")
    out_dtype = torch.int64 if integer else _FLOAT_DTYPES[dtype]
    if not integer:
        _check_range(m)
    if isinstance(m, RandomInput | ConstantInput):
        if shape is None:
            raise SpecError("invalid_input", f"{m.kind} input needs a declared shape")
        _declared_numel(shape, max_elements, label)
        dims = tuple(int(d) for d in shape)
        make = _random if isinstance(m, RandomInput) else _constant
        return MadeInput(make(m, dims, integer, vocab).to(out_dtype))
    if isinstance(m, TokensInput):
        if not integer or not vocab:
            raise SpecError(
                "invalid_input",
                f"token input needs an integer input with a vocabulary; {label} is {dtype}"
                + ("" if vocab else " without a vocabulary"),
            )
        ids, words = tokenize(m.text, vocab)
        _declared_numel((len(ids),), max_elements, label)
        t = torch.tensor(ids, dtype=torch.int64).reshape(token_shape(len(ids), shape))
        return MadeInput(t, tokens=words)
    if isinstance(m, DatasetInput):
        tensor, sample_label = _dataset(m, shape, integer, data_roots)
        _declared_numel(tuple(tensor.shape), max_elements, label)
        return MadeInput(tensor.to(out_dtype), label=sample_label)
    if isinstance(m, ImageInput):
        if integer:
            raise SpecError("invalid_input", f"image input needs a float input; {label} is {dtype}")
        if shape is not None:
            _declared_numel(shape, max_elements, label)
        return MadeInput(_image(m, shape, max_pixels).to(out_dtype))
    payload = m.data
    if not isinstance(payload, Mapping):
        kind = "int64" if integer else "float32"
        payload = {"data": m.data, "encoding": m.encoding, "shape": m.shape, "dtype": kind}
    t = decode(payload, max_elements=max_elements)
    if shape is not None and t.ndim != len(shape):
        raise SpecError(
            "input_shape_mismatch",
            f"the tensor has shape {fmt_shape(tuple(t.shape))} (rank {t.ndim}) but {label} is "
            f"declared {fmt_shape(shape)} (rank {len(shape)}); send a tensor with {len(shape)} "
            "dimensions or change the declared shape",
        )
    if integer and t.is_floating_point():
        if not bool((torch.isfinite(t) & (t == t.round())).all()):
            raise SpecError("invalid_input", f"{label} holds integers; the tensor has fractions")
        t = t.to(torch.int64)
    return MadeInput(t if t.dtype == out_dtype else t.to(out_dtype))
