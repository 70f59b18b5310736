"""models.inputs: every input maker against a plain torch / PIL / numpy oracle."""

from __future__ import annotations

import base64
import io
import math

import numpy as np
import pytest
import torch
from PIL import Image

from models.errors import LimitError, SpecError
from models.inputs import ImageInput, RandomInput, make_input, tokenize
from models.tensors import encode

VOCAB = ["The", "dog", "ate", "the", "apple", "Everybody", "read", "that", "book"]


def _err(maker: object, shape: list[int] | None, dtype: str = "float32", **kw: object) -> SpecError:
    with pytest.raises(SpecError) as info:
        make_input(maker, shape, dtype, **kw)  # type: ignore[arg-type]
    return info.value


# ----------------------------------------------------------------------------- random


@pytest.mark.parametrize("seed", [0, 7, 2**63 - 1])
def test_random_matches_torch_manual_seed(seed: int) -> None:
    torch.manual_seed(seed)
    normal = torch.randn(2, 3, 4)
    torch.manual_seed(seed)
    uniform = torch.rand(5)
    torch.manual_seed(seed)
    ints = torch.randint(0, len(VOCAB), (6,))
    assert torch.equal(make_input({"kind": "random", "seed": seed}, [2, 3, 4]).tensor, normal)
    made = make_input({"kind": "random", "distribution": "uniform", "seed": seed}, [5])
    assert torch.equal(made.tensor, uniform)
    made = make_input({"kind": "random", "seed": seed}, [6], "int64", vocab=VOCAB)
    assert made.tensor.dtype == torch.int64 and torch.equal(made.tensor, ints)


def test_random_parameters_and_reproducibility() -> None:
    g = torch.Generator().manual_seed(3)
    expected = 5.0 + 2.0 * torch.randn((100,), generator=g)
    maker = RandomInput(kind="random", seed=3, mean=5.0, std=2.0)
    assert torch.equal(make_input(maker, [100]).tensor, expected)
    u = make_input({"kind": "random", "distribution": "uniform", "low": -2, "high": 3}, [1000])
    assert u.tensor.min() >= -2 and u.tensor.max() < 3 and u.tensor.min() < -1.5
    a = make_input({"kind": "random", "seed": 1}, [10]).tensor
    b = make_input({"kind": "random", "seed": 2}, [10]).tensor
    assert not torch.equal(a, b)
    ints = make_input({"kind": "random", "low": 2, "high": 5}, [200], "int64").tensor
    assert set(ints.tolist()) == {2, 3, 4}
    assert make_input({"kind": "random"}, [2, 2], "float64").tensor.dtype == torch.float64


@pytest.mark.parametrize(
    ("maker", "phrase"),
    [
        ({"kind": "random", "seed": -1}, "random.seed"),
        ({"kind": "random", "seed": 2**63}, "random.seed"),
        ({"kind": "random", "std": -1.0}, "random.std"),
        ({"kind": "random", "low": 1.0, "high": 1.0}, "greater than low"),
        ({"kind": "random", "colour": "red"}, "random.colour"),
        ({"kind": "constant", "value": float("inf")}, "constant.value"),
        ({"kind": "noise"}, "kind is one of"),
        ({"seed": 1}, "kind is one of"),
        ("random", "must be an object"),
    ],
)
def test_invalid_makers_raise_invalid_input(maker: object, phrase: str) -> None:
    err = _err(maker, [3])
    assert err.code == "invalid_input" and phrase in err.message


def test_declared_shape_is_checked_against_the_limit() -> None:
    with pytest.raises(LimitError, match="1,000,000"):
        make_input({"kind": "random"}, [1000, 1001], max_elements=1_000_000)
    with pytest.raises(LimitError):
        make_input({"kind": "constant", "value": 1}, [10**6, 10**6])


# ----------------------------------------------------------------------------- constant


def test_constant_inputs() -> None:
    half = make_input({"kind": "constant", "value": 0.5}, [2, 3]).tensor
    assert torch.equal(half, torch.full((2, 3), 0.5))
    t = make_input({"kind": "constant", "value": 4}, [3], "int64", vocab=VOCAB).tensor
    assert t.dtype == torch.int64 and t.tolist() == [4, 4, 4]
    assert "not one" in _err({"kind": "constant", "value": 1.5}, [3], "int64").message
    assert (
        "outside the vocabulary"
        in _err({"kind": "constant", "value": 9}, [3], "int64", vocab=VOCAB).message
    )


# ----------------------------------------------------------------------------- tensor


def test_tensor_input_lists_and_payloads() -> None:
    made = make_input({"kind": "tensor", "data": [[1, 2, 3]]}, [1, 3])
    assert torch.equal(made.tensor, torch.tensor([[1.0, 2.0, 3.0]]))
    x = torch.randn(4, 3, generator=torch.Generator().manual_seed(0))
    payload = encode(x, "f32")
    assert torch.equal(make_input({"kind": "tensor", "data": payload}, [1, 3]).tensor, x)
    flat = {"kind": "tensor", "data": payload["data"], "encoding": "f32", "shape": [4, 3]}
    assert torch.equal(make_input(flat, [1, 3]).tensor, x)
    assert make_input({"kind": "tensor", "data": [[[1]]]}, None).tensor.shape == (1, 1, 1)
    ids = make_input({"kind": "tensor", "data": [0, 4, 8]}, [3], "int64").tensor
    assert ids.dtype == torch.int64 and ids.tolist() == [0, 4, 8]


def test_tensor_input_errors() -> None:
    err = _err({"kind": "tensor", "data": [[1, 2, 3], [4, 5, 6]]}, [1, 1, 3], name="x")
    assert err.code == "input_shape_mismatch"
    assert "2×3" in err.message and "'x' is declared 1×1×3" in err.message
    assert _err({"kind": "tensor", "data": [1, "a"]}, [2]).code == "bad_tensor"
    payload = encode(torch.tensor([0.5, 1.0]), "f32")
    err = _err({"kind": "tensor", "data": payload}, [2], "int64")
    assert "fractions" in err.message
    with pytest.raises(LimitError):
        make_input({"kind": "tensor", "data": [[0] * 10] * 10}, [10, 10], max_elements=99)


# ----------------------------------------------------------------------------- tokens


def test_tutorial_sentences() -> None:
    made = make_input(
        {"kind": "tokens", "text": "The dog ate the apple"}, [5], "int64", vocab=VOCAB
    )
    assert made.tensor.dtype == torch.int64 and made.tensor.tolist() == [0, 1, 2, 3, 4]
    assert made.tokens == ["The", "dog", "ate", "the", "apple"]
    made = make_input(
        {"kind": "tokens", "text": "Everybody read that book."}, [4], "int64", vocab=VOCAB
    )
    assert made.tensor.tolist() == [5, 6, 7, 8]


def test_unknown_and_ambiguous_words() -> None:
    err = _err({"kind": "tokens", "text": "the cat"}, [2], "int64", vocab=VOCAB)
    assert err.code == "unknown_token" and "'cat'" in err.message and "Everybody" in err.message
    assert tokenize("EVERYBODY, read!", VOCAB) == ([5, 6], ["Everybody", "read"])
    err = _err({"kind": "tokens", "text": "THE dog"}, [2], "int64", vocab=VOCAB)
    assert "'THE'" in err.message  # matches both "The" and "the"
    many = [f"w{i}" for i in range(30)]
    err = _err({"kind": "tokens", "text": "zzz"}, [1], "int64", vocab=many)
    assert "w19" in err.message and "w20" not in err.message


@pytest.mark.parametrize(
    ("shape", "expected"),
    [([7], (3,)), ([1, 7], (1, 3)), ([7, 1], (3, 1)), (None, (3,))],
)
def test_token_length_comes_from_the_text(shape: list[int] | None, expected: tuple) -> None:
    made = make_input({"kind": "tokens", "text": "dog ate apple"}, shape, "int64", vocab=VOCAB)
    assert made.tensor.shape == expected and made.tensor.flatten().tolist() == [1, 2, 4]


def test_token_input_errors() -> None:
    tokens = {"kind": "tokens", "text": "dog"}
    assert "integer input with a vocabulary" in _err(tokens, [1], "float32", vocab=VOCAB).message
    assert "without a vocabulary" in _err(tokens, [1], "int64").message
    assert _err(tokens, [2, 3], "int64", vocab=VOCAB).code == "input_shape_mismatch"
    assert (
        "no words" in _err({"kind": "tokens", "text": " ... "}, [1], "int64", vocab=VOCAB).message
    )
    assert "tokens.text" in _err({"kind": "tokens", "text": "a " * 5001}, [1], "int64").message


# ----------------------------------------------------------------------------- images


def _b64(img: Image.Image, fmt: str = "PNG") -> str:
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return base64.b64encode(buf.getvalue()).decode()


def _gradient(size: int = 64) -> Image.Image:
    ramp = np.add.outer(np.arange(size), np.arange(size)) * (255 // (2 * size - 2))
    return Image.fromarray(ramp.astype(np.uint8), mode="L")


def test_grey_png_is_resized_like_pil() -> None:
    img = _gradient()
    made = make_input({"kind": "image", "png_base64": _b64(img)}, [1, 1, 28, 28])
    oracle = np.asarray(img.resize((28, 28), Image.Resampling.BILINEAR), np.float32) / 255.0
    assert made.tensor.shape == (1, 1, 28, 28) and made.tensor.dtype == torch.float32
    np.testing.assert_array_equal(made.tensor[0, 0].numpy(), oracle)


def test_rgb_jpeg_and_data_url() -> None:
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 256, (40, 30, 3), dtype=np.uint8), mode="RGB")
    text = "data:image/jpeg;base64," + _b64(img, "JPEG")
    made = make_input(ImageInput(kind="image", png_base64=text), [3, 16, 12])
    decoded = Image.open(io.BytesIO(base64.b64decode(text.split(",")[1])))
    oracle = np.asarray(decoded.convert("RGB").resize((12, 16), Image.Resampling.BILINEAR))
    assert made.tensor.shape == (3, 16, 12)
    np.testing.assert_allclose(made.tensor.numpy(), oracle.transpose(2, 0, 1) / 255.0, atol=1e-6)
    grey = make_input({"kind": "image", "png_base64": text}, [1, 1, 8, 8]).tensor
    assert grey.shape == (1, 1, 8, 8) and grey.min() >= 0.0 and grey.max() <= 1.0


def test_transparent_pixels_become_white() -> None:
    img = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    t = make_input({"kind": "image", "png_base64": _b64(img)}, [1, 4, 4]).tensor
    assert torch.equal(t, torch.ones(1, 4, 4))


def test_image_errors() -> None:
    png = _b64(_gradient(8))
    not_image = base64.b64encode(b"hello, this is not an image").decode()
    assert _err({"kind": "image", "png_base64": not_image}, [1, 8, 8]).code == "bad_image"
    assert _err({"kind": "image", "png_base64": "@@@"}, [1, 8, 8]).code == "bad_image"
    gif = _b64(_gradient(8), "GIF")
    assert _err({"kind": "image", "png_base64": gif}, [1, 8, 8]).code == "bad_image"
    assert "(N, C, H, W) or (C, H, W)" in _err({"kind": "image", "png_base64": png}, [8, 8]).message
    assert "channels" in _err({"kind": "image", "png_base64": png}, [2, 8, 8]).message
    assert "float input" in _err({"kind": "image", "png_base64": png}, [1, 8, 8], "int64").message


def test_image_over_max_pixels_is_refused_before_decoding() -> None:
    buf = io.BytesIO()
    Image.new("L", (3000, 3000)).save(buf, format="PNG")
    truncated = base64.b64encode(buf.getvalue()[:200]).decode()  # header only, no pixels
    maker = {"kind": "image", "png_base64": truncated}
    with pytest.raises(LimitError, match="3000×3000 = 9,000,000 pixels"):
        make_input(maker, [1, 28, 28], max_pixels=4_000_000)
    # with room for it, the same bytes fail only when the pixels are decoded
    assert _err(maker, [1, 28, 28], max_pixels=10_000_000).code == "bad_image"


def test_dataset_sample_input_is_the_sample_batched_with_its_label() -> None:
    import torch.nn.functional as F

    from models.datasets import load_split

    maker = {
        "kind": "dataset",
        "dataset": "digits",
        "index": 5,
        "transforms": [{"kind": "pad", "size": 10}, {"kind": "scale"}],
    }
    made = make_input(maker, [1, 1, 10, 10])
    test = load_split("digits", "test")
    assert torch.equal(made.tensor, F.pad(test.x[5:6].float(), (1, 1, 1, 1)) / 16.0)
    assert made.label == int(test.y[5])
    assert make_input({**maker, "transforms": []}, [1, 8, 8]).tensor.shape == (1, 8, 8)
    words = make_input({"kind": "dataset", "dataset": "pos_tagging", "index": 1}, [5], "int64")
    assert words.tensor.tolist() == [5, 6, 7, 8] and words.label == [1, 2, 0, 1]
    point = make_input(
        {"kind": "dataset", "dataset": "plane", "split": "train", "index": 0}, [1, 2]
    )
    assert isinstance(point.label, float) and point.tensor.shape == (1, 2)


@pytest.mark.parametrize(
    ("maker", "shape", "dtype", "code", "phrase"),
    [
        (
            {"kind": "dataset", "dataset": "digits"},
            [8, 8],
            "float32",
            "input_shape_mismatch",
            "add transforms",
        ),
        (
            {"kind": "dataset", "dataset": "digits", "index": 360},
            [1, 1, 8, 8],
            "float32",
            "sample_out_of_range",
            "0–359",
        ),
        (
            {"kind": "dataset", "dataset": "digits"},
            [1, 1, 8, 8],
            "int64",
            "input_shape_mismatch",
            "float32 samples",
        ),
        (
            {"kind": "dataset", "dataset": "nope"},
            [1],
            "float32",
            "unknown_dataset",
            "Known datasets",
        ),
    ],
)
def test_bad_dataset_inputs(maker, shape, dtype, code, phrase) -> None:
    with pytest.raises(SpecError) as err:
        make_input(maker, shape, dtype)
    assert err.value.code == code and phrase in err.value.message


def test_dataset_input_from_a_missing_folder_says_how_to_install(tmp_path) -> None:
    from models.datasets import DataRoots

    maker = {"kind": "dataset", "dataset": "fashion_mnist"}
    with pytest.raises(SpecError) as err:
        make_input(maker, [1, 1, 28, 28], data_roots=DataRoots(fashion_mnist_dir=tmp_path))
    assert err.value.code == "dataset_unavailable" and "dataset-fashion-mnist" in err.value.message


# -- one rule for numbers past float32 (issue 15: a 1e308 constant was refused by torch, a
# 1e308 tensor silently became inf) ------------------------------------------------------------
@pytest.mark.parametrize(
    "maker",
    [
        {"kind": "constant", "value": 1e308},
        {"kind": "constant", "value": -3.5e38},
        {"kind": "tensor", "data": [1.0, 1e308]},
        {"kind": "tensor", "data": [[1.0], [-1e39]]},
        {"kind": "random", "mean": 1e308},
        {"kind": "random", "std": 1e39},
        {"kind": "random", "distribution": "uniform", "low": -3e38, "high": 3e38},
    ],
    ids=["constant", "constant_neg", "tensor", "tensor_nested", "mean", "std", "uniform_span"],
)
def test_a_number_past_float32_is_refused_by_every_maker(maker) -> None:
    with pytest.raises(SpecError) as info:
        make_input(maker, [2, 1] if "[[" in str(maker.get("data")) else [2])
    assert "beyond float32's range" in info.value.message


@pytest.mark.parametrize(
    ("maker", "value"),
    [
        ({"kind": "constant", "value": 3.4e38}, 3.4e38),
        ({"kind": "tensor", "data": [3.4e38, 3.4e38]}, 3.4e38),
        ({"kind": "tensor", "data": ["Infinity", "Infinity"]}, math.inf),
    ],
)
def test_the_float32_range_and_named_infinity_are_accepted(maker, value) -> None:
    t = make_input(maker, [2]).tensor
    assert t.dtype == torch.float32
    assert torch.equal(t, torch.full((2,), value, dtype=torch.float32))
