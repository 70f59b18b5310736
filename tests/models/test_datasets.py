"""The offline datasets: sizes and shapes as declared, read exactly as numpy reads the files."""

from __future__ import annotations

import gzip
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from models.datasets import (
    DATASETS,
    DataRoots,
    apply_transforms,
    availability,
    dataset_public,
    get_sample,
    load_split,
    transformed_shape,
)
from models.datasets.transforms import Flatten, Normalize, Pad, Scale
from models.errors import SpecError

FMNIST = Path("/usr/share/datasets/fashion-mnist")
needs_fmnist = pytest.mark.skipif(
    not (FMNIST / "t10k-images-idx3-ubyte.gz").is_file(),
    reason="dataset-fashion-mnist is not installed",
)


@pytest.mark.parametrize("name", list(DATASETS))
def test_every_dataset_loads_as_declared(name: str) -> None:
    info = DATASETS[name]
    if availability(name, DataRoots()) is not None:
        pytest.skip(availability(name, DataRoots()))
    for split, size in (("train", info.train_size), ("test", info.test_size)):
        data = load_split(name, split)
        assert len(data) == size
        xs = list(data.x) if isinstance(data.x, list) else [data.x[0], data.x[-1]]
        for x in xs:
            assert all(s < 0 or d == s for d, s in zip(x.shape, info.sample_shape, strict=True))
        if info.task != "regression":
            labels = torch.cat(list(data.y)) if isinstance(data.y, list) else data.y
            assert int(labels.min()) >= 0 and int(labels.max()) < len(info.classes)
        x, label = get_sample(name, split, size - 1)
        assert x.dtype == (torch.int64 if info.dtype == "int64" else torch.float32)
        assert label is not None
    public = dataset_public(info, DataRoots())
    assert public["available"] and public["unavailable_reason"] is None
    assert public["sample_shape"] == list(info.sample_shape)


def _idx(path: Path, offset: int) -> np.ndarray:
    with gzip.open(path) as fh:
        return np.frombuffer(fh.read(), dtype=np.uint8, offset=offset)


@needs_fmnist
def test_fashion_mnist_equals_a_direct_numpy_read() -> None:
    for split, prefix, n in (("train", "train", 60000), ("test", "t10k", 10000)):
        data = load_split("fashion_mnist", split)
        images = _idx(FMNIST / f"{prefix}-images-idx3-ubyte.gz", 16).reshape(n, 1, 28, 28)
        labels = _idx(FMNIST / f"{prefix}-labels-idx1-ubyte.gz", 8)
        assert torch.equal(data.x, torch.from_numpy(images.copy()))
        assert torch.equal(data.y, torch.from_numpy(labels.astype(np.int64)))
    x, label = get_sample("fashion_mnist", "test", 0)
    assert label == 9  # the first test image is an ankle boot
    assert DATASETS["fashion_mnist"].classes[label] == "Ankle boot"
    assert torch.equal(x, data.x[0].float())


def test_digits_split_is_fixed_and_seeded() -> None:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    order = torch.randperm(1797, generator=torch.Generator().manual_seed(0))
    train, test = load_split("digits", "train"), load_split("digits", "test")
    images = torch.from_numpy(bunch.images.astype(np.uint8)).unsqueeze(1)
    assert torch.equal(test.x, images[order[:360]])
    assert torch.equal(train.x, images[order[360:]])
    assert torch.equal(train.y, torch.from_numpy(bunch.target)[order[360:]])
    assert len(train) + len(test) == 1797
    assert int(train.x.max()) == 16


def test_missing_fashion_mnist_is_unavailable_with_an_install_hint(tmp_path: Path) -> None:
    roots = DataRoots(fashion_mnist_dir=tmp_path)
    reason = availability("fashion_mnist", roots)
    assert reason is not None and "apt-get install dataset-fashion-mnist" in reason
    assert "fashion_mnist_dir setting" in reason and "PLAYGROUND_" not in reason
    public = dataset_public(DATASETS["fashion_mnist"], roots)
    assert public["available"] is False and public["unavailable_reason"] == reason
    with pytest.raises(SpecError) as err:
        load_split("fashion_mnist", "train", roots=roots)
    assert err.value.code == "dataset_unavailable"
    assert availability("digits", roots) is None


def test_unknown_dataset_and_sample_out_of_range() -> None:
    with pytest.raises(SpecError) as err:
        load_split("cifar", "train")
    assert err.value.code == "unknown_dataset" and "digits" in err.value.message
    with pytest.raises(SpecError) as err:
        get_sample("digits", "test", 360)
    assert err.value.code == "sample_out_of_range" and "0–359" in err.value.message
    with pytest.raises(SpecError) as err:
        get_sample("circle", "test", 0, params={"noise": 2})
    assert err.value.code == "invalid_dataset_params"
    assert err.value.detail["field"] == "dataset_params.noise"


@pytest.mark.parametrize("name", ["circle", "xor", "gauss", "spiral", "plane"])
def test_toy_sets_are_seeded(name: str) -> None:
    params = {"n_train": 100, "n_test": 40, "noise": 0.2, "seed": 3}
    a = load_split(name, "train", params=params)
    b = load_split(name, "train", params=dict(params))
    load_split.__globals__["_CACHE"].clear()
    c = load_split(name, "train", params=params)
    assert torch.equal(a.x, c.x) and torch.equal(a.y, c.y) and a is b
    assert a.x.shape == (100, 2) and len(load_split(name, "test", params=params)) == 40
    other = load_split(name, "train", params={**params, "seed": 4})
    assert not torch.equal(a.x, other.x)


def test_circle_without_noise_puts_the_disc_in_class_1() -> None:
    data = load_split("circle", "train", params={"noise": 0})
    r = data.x.double().norm(dim=1)
    assert torch.equal(data.y, (r < 2.5).long())
    assert int(data.y.sum()) > 50 and int((1 - data.y).sum()) > 50


def test_pos_tagging_is_the_tutorials_data() -> None:
    from models.tagging_data import TAGGER_VOCAB, TAGS, TRAINING_DATA

    data = load_split("pos_tagging", "train")
    for (words, tags), x, y in zip(TRAINING_DATA, data.x, data.y, strict=True):
        assert [TAGGER_VOCAB[i] for i in x] == words
        assert [TAGS[i] for i in y] == tags
    public = dataset_public(DATASETS["pos_tagging"], DataRoots())
    assert public["vocab"] == TAGGER_VOCAB and public["tagset"] == TAGS


def test_transforms_are_the_plain_torch_expressions() -> None:
    x = torch.randint(0, 256, (4, 1, 28, 28), generator=torch.Generator().manual_seed(0)).float()
    ts = [Pad(size=32), Scale(), Normalize(mean=0.5, std=0.25), Flatten()]
    got = apply_transforms(x, ts, value_range=(0, 255))
    want = ((F.pad(x, (2, 2, 2, 2)) / 255.0 - 0.5) / 0.25).flatten(1)
    assert torch.equal(got, want)
    assert transformed_shape((1, 28, 28), ts) == (32 * 32,) == tuple(got.shape[1:])
    assert transformed_shape((1, 28, 28), ts[:1]) == (1, 32, 32)
    odd = apply_transforms(torch.ones(1, 1, 5, 4), [Pad(size=8)])
    assert odd.shape == (1, 1, 8, 8) and torch.equal(
        odd, F.pad(torch.ones(1, 1, 5, 4), (2, 2, 1, 2))
    )
    assert math.isclose(
        float(apply_transforms(torch.full((1, 1), 16.0), [Scale()], value_range=(0, 16))), 1.0
    )


def test_bad_transforms_say_what_to_change() -> None:
    with pytest.raises(SpecError, match="cannot shrink 28×28"):
        transformed_shape((1, 28, 28), [Pad(size=16)])
    with pytest.raises(SpecError, match="images"):
        transformed_shape((2,), [Pad(size=4)])
    with pytest.raises(SpecError, match="value range"):
        apply_transforms(torch.ones(2, 2), [Scale()])
