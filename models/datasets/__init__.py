"""Offline datasets as a registry, like the layer catalog: nothing is downloaded at run time.

Each :class:`DatasetInfo` says what a dataset is (task, sample shape, classes, sizes,
licence, source); :func:`load_split` loads a split (cached), :func:`get_sample` one sample.
Image sets are kept as stored (uint8: 0–255 Fashion-MNIST, 0–16 digits) and turned into
float32 per batch; the ``scale`` transform maps them to [0, 1].
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import BaseModel, ValidationError

from models.datasets import files, toy
from models.datasets.transforms import Transform, apply_transforms, transformed_shape
from models.errors import SpecError
from models.tagging_data import TAGGER_VOCAB, TAGS, TRAINING_DATA

__all__ = [
    "DATASETS",
    "DEFAULT_ROOTS",
    "DataRoots",
    "DatasetInfo",
    "Split",
    "Transform",
    "apply_transforms",
    "availability",
    "dataset_public",
    "get_sample",
    "load_split",
    "transformed_shape",
]

SplitName = Literal["train", "test"]
FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
TOY_CLASSES = ("orange", "blue")  # TF Playground's colours for labels -1 and +1


@dataclass(frozen=True)
class DataRoots:
    """Where file-backed datasets live; the server fills it from its settings."""

    fashion_mnist_dir: Path = Path("/usr/share/datasets/fashion-mnist")


DEFAULT_ROOTS = DataRoots()


@dataclass(frozen=True)
class DatasetInfo:
    """One dataset of the registry."""

    name: str
    task: Literal["classification", "regression", "tagging"]
    sample_shape: tuple[int, ...]  # one sample before transforms; -1: variable length
    dtype: str  # what the model is fed: "float32" | "int64"
    classes: tuple[str, ...]
    train_size: int  # with default params
    test_size: int
    licence: str
    source: str
    description: str
    params: type[BaseModel] | None = None
    value_range: tuple[float, float] | None = None  # stored values, for the scale transform
    vocab: tuple[str, ...] = field(default=())  # tagging: the words, index = token id


@dataclass
class Split:
    """One split: ``x`` (N, *sample) and ``y`` (N,) or (N, 1); lists for variable length."""

    x: torch.Tensor | list[torch.Tensor]
    y: torch.Tensor | list[torch.Tensor]

    def __len__(self) -> int:
        return len(self.y)


_TOY_LICENCE = "Apache-2.0 (formulas of TensorFlow Playground); generated, seeded"
_TOY_SOURCE = "https://github.com/tensorflow/playground/blob/master/src/dataset.ts"


def _toy(name: str, what: str, task: str = "classification") -> DatasetInfo:
    regression = task == "regression"
    return DatasetInfo(
        name, task, (2,), "float32", () if regression else TOY_CLASSES, 250, 250,
        _TOY_LICENCE, _TOY_SOURCE, what, toy.ToyParams,
    )  # fmt: skip


_ALL = [
    DatasetInfo(
        "digits", "classification", (1, 8, 8), "float32", tuple(str(d) for d in range(10)),
        1797 - files.DIGITS_TEST, files.DIGITS_TEST,
        "CC BY 4.0 (UCI ML hand-written digits), bundled with scikit-learn (BSD-3-Clause)",
        "sklearn.datasets.load_digits",
        "8×8 grey hand-written digits 0–9 (values 0–16); a fixed seeded 80/20 split.",
        value_range=(0.0, 16.0),
    ),
    DatasetInfo(
        "fashion_mnist", "classification", (1, 28, 28), "float32", FASHION_CLASSES, 60000, 10000,
        "MIT (Zalando Research)",
        "Debian package dataset-fashion-mnist (github.com/zalandoresearch/fashion-mnist)",
        "28×28 grey photos of clothes in 10 classes (values 0–255); pad to 32 for LeNet-5.",
        value_range=(0.0, 255.0),
    ),
    _toy("circle", "2-D points: a disc inside a ring (TF Playground's circle)."),
    _toy("xor", "2-D points labelled by the sign of x·y (TF Playground's exclusive or)."),
    _toy("gauss", "2-D points from two Gaussian blobs (TF Playground's gaussian)."),
    _toy("spiral", "2-D points on two interleaved spirals (TF Playground's spiral)."),
    _toy("plane", "2-D points with target (x + y) / 10 (TF Playground's regression plane).",
         "regression"),
    DatasetInfo(
        "pos_tagging", "tagging", (-1,), "int64", tuple(TAGS), len(TRAINING_DATA),
        len(TRAINING_DATA), "BSD-3-Clause (PyTorch tutorials)",
        "PyTorch tutorial 'Sequence Models and Long Short-Term Memory Networks'",
        "The tutorial's two part-of-speech sentences (the test split is the same two, as the "
        "tutorial checks its tagger on a training sentence).",
        vocab=tuple(TAGGER_VOCAB),
    ),
]  # fmt: skip
DATASETS: dict[str, DatasetInfo] = {d.name: d for d in _ALL}
_CACHE: OrderedDict[tuple, Split] = OrderedDict()
_CACHE_SIZE = 8
_CACHE_LOCK = threading.Lock()  # workers may load from several threads


def _info(name: str) -> DatasetInfo:
    info = DATASETS.get(name)
    if info is None:
        raise SpecError(
            "unknown_dataset",
            f"There is no dataset {name!r}. Known datasets: {', '.join(DATASETS)}.",
            detail={"field": "dataset", "known": list(DATASETS)},
        )
    return info


def availability(name: str, roots: DataRoots) -> str | None:
    """None when the dataset can be used; else a sentence saying how to install it."""
    if _info(name).name != "fashion_mnist":
        return None
    folder = Path(roots.fashion_mnist_dir)
    missing = files.missing_fmnist_files(folder)
    if not missing:
        return None
    return (
        f"fashion_mnist is not installed: {folder} lacks {', '.join(missing)}. Install Debian's "
        "package (sudo apt-get install dataset-fashion-mnist) or point the server's "
        "fashion_mnist_dir setting at a folder holding the four gzipped IDX files."
    )


def parse_params(info: DatasetInfo, params: dict | None) -> BaseModel | None:
    """The dataset's parameters checked against its schema (field ``dataset_params``)."""
    if info.params is None:
        if params:
            raise SpecError(
                "invalid_dataset_params",
                f"{info.name} takes no parameters; remove dataset_params",
                detail={"field": "dataset_params"},
            )
        return None
    try:
        return info.params.model_validate(params or {})
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise SpecError(
            "invalid_dataset_params",
            f"dataset_params.{loc}: {err['msg']}",
            detail={"field": f"dataset_params.{loc}"},
        ) from None


def split_size(name: str, split: SplitName, params: dict | None = None) -> int:
    """How many samples a split holds, without loading it."""
    info = _info(name)
    p = parse_params(info, params)
    if isinstance(p, toy.ToyParams):
        return p.n_train if split == "train" else p.n_test
    return info.train_size if split == "train" else info.test_size


def _load(info: DatasetInfo, split: SplitName, p: BaseModel | None, roots: DataRoots) -> Split:
    if info.name == "digits":
        return Split(*files.load_digits_split(split))
    if info.name == "fashion_mnist":
        return Split(*files.load_fmnist(Path(roots.fashion_mnist_dir), split))
    if info.name == "pos_tagging":
        word = {w: i for i, w in enumerate(info.vocab)}
        tag = {t: i for i, t in enumerate(info.classes)}
        xs = [torch.tensor([word[w] for w in s], dtype=torch.long) for s, _ in TRAINING_DATA]
        ys = [torch.tensor([tag[t] for t in ts], dtype=torch.long) for _, ts in TRAINING_DATA]
        return Split(xs, ys)
    return Split(*toy.make_toy(info.name, split, p))


def load_split(
    name: str,
    split: SplitName,
    *,
    params: dict | None = None,
    roots: DataRoots = DEFAULT_ROOTS,
) -> Split:
    """One split of a dataset, loaded once and cached (treat it as read-only)."""
    info = _info(name)
    if split not in ("train", "test"):
        raise SpecError(
            "invalid_split", f"split is 'train' or 'test', not {split!r}", detail={"field": "split"}
        )
    reason = availability(name, roots)
    if reason is not None:
        raise SpecError("dataset_unavailable", reason, detail={"field": "dataset"})
    p = parse_params(info, params)
    key = (name, split, json.dumps(p.model_dump() if p else None, sort_keys=True), roots)
    with _CACHE_LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
        data = _load(info, split, p, roots)
        _CACHE[key] = data
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
        return data


def get_sample(
    name: str,
    split: SplitName,
    index: int,
    *,
    params: dict | None = None,
    roots: DataRoots = DEFAULT_ROOTS,
) -> tuple[torch.Tensor, Any]:
    """One sample as the model reads it before transforms (float32 or int64) and its label.

    The label is a class index (classification), a float (regression) or a list of tag
    indices (tagging).
    """
    info = _info(name)
    data = load_split(name, split, params=params, roots=roots)
    if not 0 <= index < len(data):
        raise SpecError(
            "sample_out_of_range",
            f"{name} {split} has samples 0–{len(data) - 1}; there is no sample {index}",
            detail={"field": "index", "size": len(data)},
        )
    x = data.x[index].to(torch.int64 if info.dtype == "int64" else torch.float32)
    y = data.y[index]
    label = y.tolist() if info.task == "tagging" else (y.item() if y.ndim == 0 else y.tolist()[0])
    return x, label


def dataset_public(info: DatasetInfo, roots: DataRoots) -> dict[str, Any]:
    """A plain JSON-able description for ``GET /api/datasets``."""
    reason = availability(info.name, roots)
    out: dict[str, Any] = {
        "name": info.name,
        "task": info.task,
        "sample_shape": list(info.sample_shape),
        "dtype": info.dtype,
        "classes": list(info.classes),
        "train_size": info.train_size,
        "test_size": info.test_size,
        "licence": info.licence,
        "source": info.source,
        "description": info.description,
        "value_range": list(info.value_range) if info.value_range else None,
        "params": info.params.model_json_schema() if info.params else None,
        "available": reason is None,
        "unavailable_reason": reason,
    }
    if info.task == "tagging":
        out["vocab"] = list(info.vocab)
        out["tagset"] = list(info.classes)
    return out
