"""models.tensors: payload round trips, downsampling, decode errors, statistics (numpy oracle)."""

from __future__ import annotations

import base64
import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from models.errors import LimitError, SpecError
from models.tensors import decode, encode


def _rand(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


# ----------------------------------------------------------------------------- encode/decode


def test_f32_round_trip_is_exact_and_bytes_are_little_endian_float32() -> None:
    t = _rand(2, 3, 4)
    p = encode(t, "f32")
    assert p["shape"] == [2, 3, 4] and p["dtype"] == "float32" and p["encoding"] == "f32"
    assert "true_shape" not in p and "downsampled" not in p
    raw = np.frombuffer(base64.b64decode(p["data"]), dtype="<f4")
    np.testing.assert_array_equal(raw, t.numpy().ravel())
    assert torch.equal(decode(p, max_elements=100), t)


def test_f16_round_trip_equals_torch_half() -> None:
    t = _rand(5, 7) * 1000
    p = encode(t, "f16")
    raw = np.frombuffer(base64.b64decode(p["data"]), dtype="<f2")
    np.testing.assert_array_equal(raw, t.half().numpy().ravel())
    back = decode(p, max_elements=100)
    assert back.dtype == torch.float32
    assert torch.equal(back, t.half().float())


@pytest.mark.parametrize("encoding", ["f32", "f16"])
def test_decoded_binary_tensors_are_float32_writable_and_their_own(encoding) -> None:
    p = encode(_rand(3, 4), encoding)
    a, b = decode(p, max_elements=100), decode(p, max_elements=100)
    assert a.dtype == torch.float32 and a.shape == (3, 4) and a.is_contiguous()
    before = a.clone()
    a.add_(1)  # writable, and sharing nothing with another decode of the same payload
    assert torch.equal(b, before) and not torch.equal(a, before)
    empty = decode({"shape": [2, 0], "encoding": encoding, "data": ""}, max_elements=100)
    assert empty.shape == (2, 0) and empty.dtype == torch.float32


def test_f16_overflow_becomes_inf_and_nan_stays_nan() -> None:
    t = torch.tensor([1e5, -1e5, float("nan"), 65504.0])
    back = decode(encode(t, "f16"), max_elements=10)
    assert back[0] == math.inf and back[1] == -math.inf
    assert math.isnan(back[2]) and back[3] == 65504.0


def test_list_round_trip_is_exact_and_json_safe() -> None:
    t = _rand(3, 2)
    t[0, 0], t[1, 1], t[2, 0] = float("nan"), float("inf"), float("-inf")
    p = encode(t, "list")
    text = json.dumps(p, allow_nan=False)  # strict JSON, as the server sends it
    assert p["data"][0][0] == "NaN" and p["data"][1][1] == "Infinity"
    back = decode(json.loads(text), max_elements=100)
    assert torch.equal(back.isnan(), t.isnan())
    assert torch.equal(torch.nan_to_num(back), torch.nan_to_num(t))


def test_integer_and_bool_tensors() -> None:
    t = torch.tensor([[1, -2], [3, 2**40]])
    p = encode(t, "list")
    assert p["dtype"] == "int64" and p["data"] == [[1, -2], [3, 2**40]]
    back = decode(p, max_elements=10)
    assert back.dtype == torch.int64 and torch.equal(back, t)
    pb = encode(torch.tensor([True, False]), "list")
    assert pb["dtype"] == "bool" and pb["data"] == [1, 0]
    pf = encode(torch.tensor([1, 2, 3], dtype=torch.int32), "f32")
    assert pf["dtype"] == "int32"
    assert torch.equal(decode(pf, max_elements=10), torch.tensor([1.0, 2.0, 3.0]))


def test_encode_detaches_and_keeps_scalars() -> None:
    w = torch.ones(2, requires_grad=True) * 3
    assert decode(encode(w, "f32"), max_elements=10).tolist() == [3.0, 3.0]
    p = encode(torch.tensor(2.5), "list")
    assert p["shape"] == [] and p["data"] == 2.5
    assert decode(p, max_elements=1).shape == ()


def test_decode_infers_shape_and_reshapes_flat_lists() -> None:
    assert decode({"data": [[1, 2, 3], [4, 5, 6]]}, max_elements=10).shape == (2, 3)
    assert decode({"data": [[], []]}, max_elements=10).shape == (2, 0)
    flat = decode({"data": [1, 2, 3, 4, 5, 6], "shape": [3, 2]}, max_elements=10)
    assert torch.equal(flat, torch.arange(1.0, 7.0).reshape(3, 2))


# ----------------------------------------------------------------------------- downsampling


def test_downsample_4d_pools_last_two_dims_by_the_smallest_factor() -> None:
    t = _rand(2, 3, 50, 40)
    limit = 2000
    p = encode(t, "f32", max_elements=limit)
    assert p["downsampled"] is True and p["true_shape"] == [2, 3, 50, 40]
    h, w = p["shape"][-2:]
    assert p["shape"][:2] == [2, 3] and 6 * h * w <= limit
    k = math.ceil(50 / h)
    # the smallest factor: one less would not fit
    assert 6 * math.ceil(50 / (k - 1)) * math.ceil(40 / (k - 1)) > limit
    expected = F.adaptive_avg_pool2d(t, (h, w))
    assert torch.allclose(decode(p, max_elements=limit), expected, atol=1e-6)


def test_downsample_1d_and_leading_dims_truncation() -> None:
    v = _rand(1000)
    p = encode(v, "list", max_elements=300)
    assert p["true_shape"] == [1000] and p["shape"] == [250]  # factor 4
    expected = F.adaptive_avg_pool1d(v[None, None], 250)[0, 0]
    assert torch.allclose(decode(p, max_elements=300), expected, atol=1e-6)

    many = _rand(20, 10, 3, 3)  # 200 rows, more than the limit alone
    p = encode(many, "f32", max_elements=50)
    assert p["shape"] == [50, 1, 1] and p["true_shape"] == [20, 10, 3, 3]
    expected = many.reshape(200, 9).mean(dim=1)[:50]
    assert torch.allclose(decode(p, max_elements=50).flatten(), expected, atol=1e-6)


def test_no_downsampling_at_or_under_the_limit() -> None:
    p = encode(_rand(4, 5), "f16", max_elements=20)
    assert p["shape"] == [4, 5] and "true_shape" not in p


# ----------------------------------------------------------------------------- decode errors

_B64_6_F32 = base64.b64encode(np.zeros(6, dtype="<f4").tobytes()).decode()

BAD_PAYLOADS = [
    ({"encoding": "f64", "data": "", "shape": [1]}, "unknown encoding"),
    ({"encoding": "f32", "data": "!!!notbase64", "shape": [3]}, "not valid base64"),
    ({"encoding": "f32", "data": _B64_6_F32, "shape": [2, 2]}, "needs 16"),
    ({"encoding": "f32", "data": _B64_6_F32, "shape": [2, 4]}, "24 bytes but shape 2×4"),
    ({"encoding": "f16", "data": _B64_6_F32}, "needs a shape"),
    ({"encoding": "f32", "data": [1, 2], "shape": [2]}, "base64 string"),
    ({"encoding": "list", "data": [1, 2], "shape": [-1, 2]}, "negative dimension"),
    ({"encoding": "list", "data": [1, 2], "shape": ["2"]}, "shape must hold integers"),
    ({"data": [[1, 2], [3]]}, "ragged"),
    ({"data": [[1, 2], 3]}, "where a list of 2"),
    ({"data": [1, "x"]}, "not a number"),
    ({"data": [1, None]}, "not a number"),
    ({"data": [1, {"a": 1}]}, "not a number"),
    ({"data": [True, 0]}, "not a number"),
    ({"data": [1.5], "dtype": "int64"}, "whole numbers"),
    ({"data": ["NaN"], "dtype": "int64"}, "not a number"),
    ({"data": [1, 2, 3], "shape": [2, 2]}, "shape says 2×2"),
    ({"encoding": "list"}, "no data"),
    ([1, 2, 3], "must be an object"),
]


@pytest.mark.parametrize(("payload", "phrase"), BAD_PAYLOADS)
def test_bad_payloads_raise_bad_tensor(payload: object, phrase: str) -> None:
    with pytest.raises(SpecError) as info:
        decode(payload, max_elements=1000)  # type: ignore[arg-type]
    assert info.value.code == "bad_tensor"
    assert phrase in info.value.message


def test_nan_entries_are_allowed() -> None:
    t = decode({"data": [float("nan"), 1.0]}, max_elements=10)
    assert math.isnan(t[0]) and t[1] == 1.0


def test_limit_is_checked_from_the_declared_shape_before_allocating() -> None:
    huge = {"encoding": "f32", "data": "AAAA", "shape": [10**9, 10**9]}
    with pytest.raises(LimitError) as info:
        decode(huge, max_elements=1000)
    assert info.value.code == "limit_exceeded" and "1,000" in info.value.message
    nested = {"data": [[0] * 100] * 100}
    with pytest.raises(LimitError, match="10,000 elements"):
        decode(nested, max_elements=9999)
    assert decode(nested, max_elements=10_000).shape == (100, 100)


# ------------------------------------------------------------------- binary payloads' bytes


@pytest.mark.parametrize("encoding", ["f16", "f32"])
def test_binary_payloads_hold_numpys_values_in_c_order(encoding) -> None:
    """Whatever the dtype, layout or grad state, a payload's bytes are the values NumPy
    gives for the tensor's own array cast to little-endian float16/float32, in C order."""
    tensors = [
        _rand(1, 6, 28, 28, seed=1),
        _rand(3, 4, seed=2).double(),
        torch.arange(12).reshape(3, 4),
        torch.tensor([True, False]),
        torch.zeros(0, 5),
        _rand(4, 5, seed=4).t(),  # not contiguous
        _rand(2, 3, 4, seed=6).permute(2, 0, 1),
        torch.tensor([7e4, -1e5, float("nan"), float("inf"), 1.5]),  # beyond float16
        _rand(10, seed=5).requires_grad_(),
    ]
    byte_dtype = "<f2" if encoding == "f16" else "<f4"
    for t in tensors:
        payload = encode(t, encoding)
        assert payload["shape"] == list(t.shape)
        got = np.frombuffer(base64.b64decode(payload["data"]), dtype=byte_dtype)
        with np.errstate(over="ignore"):  # 7e4 and -1e5 overflow float16 to ±inf, as in torch
            want = t.detach().numpy().astype(byte_dtype).reshape(-1)
        np.testing.assert_array_equal(got, want)  # NaN equals NaN here
        back = decode(payload, max_elements=10_000).reshape(-1)
        assert torch.equal(back.isnan(), torch.from_numpy(np.isnan(want)))
