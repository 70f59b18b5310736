"""models.tensors' u8 display encoding, against torch's float32 values.

Each value drawn must be within scale/2 of the exact one, the code must be the nearest of 256
levels from the minimum to the maximum, and ``exact_crc32`` must be the CRC-32 of the bytes
the exact (f32) payload of the same tensor carries, so that the browser can check exact
values fetched later.
"""

from __future__ import annotations

import base64
import zlib

import numpy as np
import pytest
import torch

from models.tensors import U8_MIN_VALUES, decode, downsample, encode


def _rand(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def _codes(p: dict) -> np.ndarray:
    return np.frombuffer(base64.b64decode(p["data"]), dtype=np.uint8)


def _dequantized(p: dict) -> np.ndarray:
    """The browser's reading: offset + code × scale, stored as float32."""
    return (p["offset"] + _codes(p).astype(np.float64) * p["scale"]).astype(np.float32)


def _f32_bytes(p: dict) -> bytes:
    assert p["encoding"] == "f32"
    return base64.b64decode(p["data"])


@pytest.mark.parametrize(
    "t",
    [
        _rand(1, 6, 28, 28),
        _rand(16, 10, 10, seed=1) * 1e4 + 3,  # large, offset values
        _rand(300, seed=2) * 1e-6,  # tiny values
        torch.relu(_rand(8, 40, seed=3)),  # many exact zeros
        _rand(2, 3, 20, 20, seed=4).double(),  # float64: codes of its float32 values
    ],
)
def test_u8_values_are_within_half_a_level_of_torchs_float32(t: torch.Tensor) -> None:
    p = encode(t, "u8")
    exact = t.float().numpy().ravel()
    assert p["encoding"] == "u8" and p["dtype"] == str(t.dtype).removeprefix("torch.")
    assert p["shape"] == list(t.shape) and len(_codes(p)) == t.numel()  # one byte per value
    lo, hi = float(exact.min()), float(exact.max())
    assert p["offset"] == lo and p["scale"] == (hi - lo) / 255
    codes = _codes(p)
    assert codes.min() == 0 and codes.max() == 255  # the whole range in 256 levels
    # the nearest level: within half a level, plus float32's rounding of the value drawn
    err = np.abs(_dequantized(p).astype(np.float64) - exact)
    ulp = np.spacing(np.abs(exact).astype(np.float32)).astype(np.float64)
    assert np.all(err <= p["scale"] / 2 + ulp)
    # base64 of one byte per value: 4/3 bytes of JSON per value, inside the 1.4 target
    assert len(p["data"]) <= 1.34 * t.numel() + 4


@pytest.mark.parametrize("shape", [(1, 6, 28, 28), (1000,), (3, 17, 9)])
def test_exact_crc32_is_the_crc_of_the_f32_payloads_bytes(shape: tuple[int, ...]) -> None:
    t = _rand(*shape, seed=5)
    exact = encode(t, "f32")
    assert torch.equal(decode(exact, max_elements=10**6), t)  # the exact path: bit-equal
    assert encode(t, "u8")["exact_crc32"] == zlib.crc32(_f32_bytes(exact))
    changed = t.clone()
    changed.view(-1)[7] = torch.nextafter(changed.view(-1)[7], torch.tensor(10.0))
    assert encode(changed, "u8")["exact_crc32"] != zlib.crc32(_f32_bytes(exact))


def test_u8_of_a_downsampled_map_quantizes_the_pooled_float32_values() -> None:
    t = _rand(1, 4, 300, 300, seed=6)
    p = encode(t, "u8", max_elements=65_536)
    pooled = downsample(t, 65_536)
    exact = encode(t, "f32", max_elements=65_536)
    assert p["downsampled"] is True and p["true_shape"] == [1, 4, 300, 300]
    assert p["shape"] == exact["shape"] == list(pooled.shape)
    assert p["exact_crc32"] == zlib.crc32(_f32_bytes(exact))
    err = np.abs(_dequantized(p).astype(np.float64) - pooled.numpy().ravel())
    assert err.max() <= p["scale"] / 2 + 1e-6


def test_a_constant_map_has_scale_zero_and_every_value_exact() -> None:
    t = torch.full((3, 20, 20), -2.5)
    p = encode(t, "u8")
    assert p["scale"] == 0 and p["offset"] == -2.5
    assert not _codes(p).any()
    assert np.array_equal(_dequantized(p), t.numpy().ravel())


@pytest.mark.parametrize(
    "t",
    [
        _rand(U8_MIN_VALUES),  # small: read one by one (bars, predictions)
        _rand(1, 10),
        torch.arange(1000),  # integers (token ids) stay exact
        torch.rand(30, 30) > 0.5,
        torch.cat([_rand(500), torch.tensor([float("nan")])]),  # NaN: no range to scale
        torch.cat([_rand(500), torch.tensor([float("inf")])]),
    ],
)
def test_what_u8_cannot_hold_goes_as_exact_f32(t: torch.Tensor) -> None:
    p = encode(t, "u8")
    assert p["encoding"] == "f32" and "scale" not in p and "exact_crc32" not in p
    back = decode(p, max_elements=10**6)
    assert torch.equal(back.isnan(), t.float().isnan())
    assert torch.equal(torch.nan_to_num(back), torch.nan_to_num(t.float()))


def test_u8_is_for_display_only_decode_refuses_it() -> None:
    p = encode(_rand(1000), "u8")
    with pytest.raises(Exception, match="unknown encoding 'u8'"):
        decode(p, max_elements=10**6)
