"""Parameters and weights (server/routers/parameters.py): the table, one parameter's values,
freezing with PATCH, and safetensors download and upload.

Uploads are never unpickled: a pickle, garbage, a header claiming 2**40 bytes, wrong names,
wrong shapes or NaN values are refused with ``bad_weights`` and the model is left exactly as
it was (same bytes, same version).
"""

from __future__ import annotations

import json
import pickle
import struct

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load, save

from models.build import build
from models.presets import PRESETS

LENET = PRESETS["lenet5"].spec
CONV2_PARAMS = 16 * 6 * 3 * 3 + 16


def oracle(seed: int = 0) -> torch.nn.Module:
    return build(LENET, seed=seed).model


def _header_file(header: object, data: bytes = b"") -> bytes:
    """A safetensors-shaped file: 8-byte little-endian header length, JSON header, data."""
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + data


def _lenet_header(**changes: object) -> dict:
    """The header of LeNet-5's weights file, with some entries replaced."""
    header, offset = {}, 0
    for name, t in oracle().state_dict().items():
        n = t.numel() * 4
        header[name] = {
            "dtype": "F32",
            "shape": list(t.shape),
            "data_offsets": [offset, offset + n],
        }
        offset += n
    header.update(changes)
    return header


# -- the table ------------------------------------------------------------------------------
def test_parameter_table_matches_named_parameters(api, lenet):
    table = api.ok(api.get(f"/api/models/{lenet['id']}/parameters"))
    named = list(oracle().named_parameters())
    assert [row["name"] for row in table["rows"]] == [name for name, _ in named]
    for row, (name, p) in zip(table["rows"], named, strict=True):
        assert row["shape"] == list(p.shape) and row["count"] == p.numel()
        assert row["layer"] == name.split(".")[0] and row["module"] == name.rpartition(".")[0]
        assert row["requires_grad"] is True and row["dtype"] == "float32"
        values = p.detach().double()
        assert row["mean"] == pytest.approx(values.mean().item(), rel=1e-5, abs=1e-7)
        assert row["std"] == pytest.approx(values.std(correction=0).item(), rel=1e-5)
        assert row["min"] == pytest.approx(values.min().item())
        assert row["max"] == pytest.approx(values.max().item())
    assert table["totals"] == {
        "count": 81_290,
        "trainable": 81_290,
        "frozen": 0,
        "bytes": 81_290 * 4,
        "tensors": 10,
    }
    assert table["buffers"] == []


def test_buffers_are_listed(api):
    model = api.create(preset="small_cnn", seed=0)
    table = api.ok(api.get(f"/api/models/{model['id']}/parameters"))
    names = {b["name"] for b in table["buffers"]}
    want = {n for n, _ in build(PRESETS["small_cnn"].spec).model.named_buffers()}
    assert names == want and "bn1.running_mean" in names


# -- one parameter's values -----------------------------------------------------------------
@pytest.mark.parametrize("encoding", ["f32", "f16", "list"])
def test_parameter_values_equal_the_oracle(api, lenet, encoding):
    r = api.get(f"/api/models/{lenet['id']}/parameters/conv1.weight", params={"encoding": encoding})
    body = api.ok(r)
    assert body["name"] == "conv1.weight" and body["requires_grad"] is True
    assert body["tensor"]["shape"] == [6, 1, 5, 5]
    want = oracle().conv1.weight.detach()
    api.assert_same(body["tensor"], want)
    assert body["stats"]["mean"] == pytest.approx(want.double().mean().item(), rel=1e-5)


@pytest.mark.parametrize("name", ["conv1", "nope", "conv1.weight.x", "__class__", "training"])
def test_unknown_parameter(api, lenet, name):
    err = api.error(api.get(f"/api/models/{lenet['id']}/parameters/{name}"), 404)
    assert err["code"] == "unknown_parameter" and "conv1.weight" in err["message"]


def test_parameter_encoding_is_checked(api, lenet):
    r = api.get(f"/api/models/{lenet['id']}/parameters/conv1.weight", params={"encoding": "f8"})
    api.error(r, 422, "invalid_request")


# -- PATCH requires_grad --------------------------------------------------------------------
def test_freeze_a_layer(api, lenet):
    url = f"/api/models/{lenet['id']}/parameters"
    body = api.ok(api.patch(f"{url}/conv2", json={"requires_grad": False}))
    assert body["changed"] == ["conv2.weight", "conv2.bias"]
    assert body["totals"]["trainable"] == 81_290 - CONV2_PARAMS
    assert body["totals"]["frozen"] == CONV2_PARAMS
    for _ in range(2):  # and it stays so on later reads
        table = api.ok(api.get(url))
        frozen = {row["name"] for row in table["rows"] if not row["requires_grad"]}
        assert frozen == {"conv2.weight", "conv2.bias"}
        assert table["totals"]["trainable"] == 81_290 - CONV2_PARAMS
    assert api.ok(api.get(f"{url}/conv2.weight"))["requires_grad"] is False
    summary = api.ok(api.get(f"/api/models/{lenet['id']}/summary"))
    assert summary["trainable_params"] == 81_290 - CONV2_PARAMS
    row = next(r for r in summary["layers"] if r["name"] == "conv2")
    assert row["params"] == CONV2_PARAMS and row["trainable"] == 0
    assert api.ok(api.get(f"/api/models/{lenet['id']}"))["version"] == lenet["version"] + 1


def test_freeze_is_idempotent_and_reversible(api, lenet):
    url = f"/api/models/{lenet['id']}/parameters"
    api.ok(api.patch(f"{url}/conv2", json={"requires_grad": False}))
    assert api.ok(api.patch(f"{url}/conv2", json={"requires_grad": False}))["changed"] == []
    body = api.ok(api.patch(f"{url}/conv2", json={"requires_grad": True}))
    assert body["changed"] == ["conv2.weight", "conv2.bias"]
    assert body["totals"]["trainable"] == 81_290


def test_freeze_one_parameter(api, lenet):
    url = f"/api/models/{lenet['id']}/parameters"
    body = api.ok(api.patch(f"{url}/conv1.bias", json={"requires_grad": False}))
    assert body["changed"] == ["conv1.bias"] and body["totals"]["frozen"] == 6


def test_freezing_does_not_change_values(api, lenet):
    before = api.weights(lenet["id"])
    api.ok(api.patch(f"/api/models/{lenet['id']}/parameters/fc1", json={"requires_grad": False}))
    assert api.weights(lenet["id"]) == before


@pytest.mark.parametrize("target", ["conv9", "conv1.weight.x", "", "training"])
def test_freeze_unknown_target(api, lenet, target):
    r = api.patch(f"/api/models/{lenet['id']}/parameters/{target}", json={"requires_grad": False})
    assert r.status_code in (404, 405)
    api.error(r, r.status_code)


@pytest.mark.parametrize(
    "body", [{}, {"requires_grad": "maybe"}, {"requires_grad": None}, [], {"requires_grad": 2}]
)
def test_freeze_body_is_checked(api, lenet, body):
    r = api.patch(f"/api/models/{lenet['id']}/parameters/conv1", json=body)
    api.error(r, 422, "invalid_request")


def test_frozen_and_uploaded_state_survives_eviction(make_api):
    """With a tiny cache every model leaves memory; it comes back from the store intact."""
    api = make_api(model_cache_bytes=1)
    a = api.create(preset="lenet5", seed=0)
    api.ok(api.patch(f"/api/models/{a['id']}/parameters/conv2", json={"requires_grad": False}))
    state = oracle(0).state_dict()
    state["conv1.bias"] = torch.ones(6)
    api.ok(api.put_weights(a["id"], save(state)))
    api.create(preset="lenet5", seed=1)  # pushes a out of memory
    assert api.client.get("/healthz").json()["worker"]["live_models"] == 1
    table = api.ok(api.get(f"/api/models/{a['id']}/parameters"))
    assert table["totals"]["frozen"] == CONV2_PARAMS
    bias = api.ok(api.get(f"/api/models/{a['id']}/parameters/conv1.bias?encoding=f32"))
    np.testing.assert_array_equal(api.decode(bias["tensor"]), np.ones(6, dtype=np.float32))


# -- weights download -----------------------------------------------------------------------
def test_weights_download_is_the_state_dict(api, lenet):
    r = api.get(f"/api/models/{lenet['id']}/weights")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/octet-stream"
    assert "attachment" in r.headers["content-disposition"]
    assert ".safetensors" in r.headers["content-disposition"]
    state = load(r.content)
    want = oracle(0).state_dict()
    assert set(state) == set(want)
    for name, t in want.items():
        assert torch.equal(state[name], t), name


# -- weights upload -------------------------------------------------------------------------
def test_upload_modified_weights_changes_the_next_run(api, lenet):
    state = load(api.weights(lenet["id"]))
    state["conv1.bias"] = torch.ones(6)
    body = api.ok(api.put_weights(lenet["id"], save(state)))
    assert body == {"tensors": 10, "version": lenet["version"] + 1}
    x = torch.randn(1, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    result = api.run(
        lenet["id"], inputs={"x": {"kind": "tensor", "data": x.tolist()}}, capture=["conv1"]
    )
    want = F.conv2d(x, state["conv1.weight"], torch.ones(6))
    api.assert_same(result["activations"]["conv1"]["tensor"], want)
    bias = api.ok(api.get(f"/api/models/{lenet['id']}/parameters/conv1.bias?encoding=f32"))
    np.testing.assert_array_equal(api.decode(bias["tensor"]), np.ones(6, dtype=np.float32))


def test_upload_another_seeds_weights(api, lenet):
    api.ok(api.put_weights(lenet["id"], save(oracle(5).state_dict())))
    state = load(api.weights(lenet["id"]))
    for name, t in oracle(5).state_dict().items():
        assert torch.equal(state[name], t), name


def test_upload_float16_file_is_converted(api, lenet):
    half = {k: v.half() for k, v in oracle(0).state_dict().items()}
    api.ok(api.put_weights(lenet["id"], save(half)))
    state = load(api.weights(lenet["id"]))
    assert state["fc1.weight"].dtype == torch.float32
    assert torch.equal(state["fc1.weight"], half["fc1.weight"].float())


def _bad_uploads() -> dict[str, bytes]:
    good = oracle(0).state_dict()
    renamed = {("c1.weight" if k == "conv1.weight" else k): v for k, v in good.items()}
    missing = {k: v for k, v in good.items() if k != "fc3.bias"}
    extra = {**good, "fc4.weight": torch.zeros(2, 2)}
    transposed = {**good, "fc1.weight": good["fc1.weight"].T.contiguous()}
    nan = {**good, "fc2.bias": torch.full((84,), float("nan"))}
    inf = {**good, "conv2.weight": torch.full((16, 6, 3, 3), float("inf"))}
    ints = {**good, "conv1.bias": torch.ones(6, dtype=torch.uint8)}
    complete = save(good)
    return {
        "garbage": b"this is not a safetensors file at all, just bytes",
        "empty": b"",
        "short": b"\x01\x02\x03",
        "pickle": pickle.dumps({k: v.tolist() for k, v in good.items()}),
        "huge-header-length": struct.pack("<Q", 2**40) + b"{}",
        "header-not-json": struct.pack("<Q", 4) + b"\xff\xfe{[",
        "header-a-list": _header_file([1, 2, 3]),
        "truncated": complete[: len(complete) // 2],
        "offsets-past-end": _header_file(_lenet_header(), b"\0" * 16),
        "renamed": save(renamed),
        "missing": save(missing),
        "extra": save(extra),
        "wrong-shape": save(transposed),
        "nan": save(nan),
        "inf": save(inf),
        "bool-dtype": save(ints),
    }


BAD = _bad_uploads()


@pytest.mark.parametrize("case", list(BAD))
def test_bad_upload_is_refused_and_changes_nothing(api, lenet, case):
    before = api.weights(lenet["id"])
    err = api.error(api.put_weights(lenet["id"], BAD[case]), 422, "bad_weights")
    if case in ("renamed", "missing", "extra"):
        assert set(err["detail"]) == {"missing", "unexpected"}
    if case == "wrong-shape":
        assert err["detail"]["name"] == "fc1.weight"
    assert api.weights(lenet["id"]) == before
    assert api.ok(api.get(f"/api/models/{lenet['id']}"))["version"] == lenet["version"]


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy-pickle"])
def test_a_torch_save_file_is_named_as_a_refused_pickle(api, lenet, legacy, tmp_path):
    path = tmp_path / "weights.pt"
    torch.save(oracle(0).state_dict(), path, _use_new_zipfile_serialization=not legacy)
    err = api.error(api.put_weights(lenet["id"], path.read_bytes()), 422, "bad_weights")
    assert "torch.save (pickle) file, not safetensors" in err["message"]
    assert "claims" not in err["message"]


@pytest.mark.parametrize("size", [0x280, 0x380, 0x4B50])
def test_a_header_length_that_looks_like_a_pickle_is_still_safetensors(size):
    """The first bytes are the header's length: 0x280 starts with 0x80 0x02, a pickle's."""
    from models.weights import read_header

    header = json.dumps({"__metadata__": {"format": "pt"}}).encode().ljust(size)
    assert read_header(struct.pack("<Q", size) + header) == {}


def test_bytes_without_a_json_header_are_not_safetensors(api, lenet):
    err = api.error(api.put_weights(lenet["id"], BAD["garbage"]), 422, "bad_weights")
    assert err["message"].startswith("This is not a safetensors file")


# Headers that parse as JSON but hold odd types. models/weights.py (check_against) reads them
# as if they were well-formed: a non-dict entry or a list dtype raises AttributeError or
# TypeError (a 500); a string shape, or a header nested 10,000 deep, escapes as a ValueError or
# RecursionError that the worker reports as "run_failed" instead of "bad_weights".
ODD_HEADERS = {
    "entry-an-int": _header_file(_lenet_header(**{"conv1.weight": 5})),
    "entry-a-string": _header_file(_lenet_header(**{"conv1.weight": "F32"})),
    "dtype-a-list": _header_file(_lenet_header(**{"conv1.weight": {"dtype": ["F32"]}})),
    "shape-an-int": _header_file(
        _lenet_header(**{"conv1.bias": {"dtype": "F32", "shape": 6, "data_offsets": [0, 24]}})
    ),
    "shape-nested": _header_file(
        _lenet_header(**{"conv1.bias": {"dtype": "F32", "shape": [[6]], "data_offsets": [0, 24]}})
    ),
    "shape-a-string": _header_file(
        _lenet_header(**{"conv1.bias": {"dtype": "F32", "shape": "six", "data_offsets": [0, 24]}})
    ),
    "deeply-nested": struct.pack("<Q", 20_000) + b"[" * 10_000 + b"]" * 10_000,
}


@pytest.mark.parametrize("case", list(ODD_HEADERS))
def test_odd_header_is_refused_as_bad_weights(api, lenet, case):
    before = api.weights(lenet["id"])
    api.error(api.put_weights(lenet["id"], ODD_HEADERS[case]), 422, "bad_weights")
    assert api.weights(lenet["id"]) == before


def test_upload_that_overflows_float32_is_refused(api, lenet):
    before = api.weights(lenet["id"])
    big = {k: v.double() for k, v in oracle(0).state_dict().items()}
    big["fc3.bias"] = torch.full((10,), 1e300, dtype=torch.float64)
    api.error(api.put_weights(lenet["id"], save(big)), 422, "bad_weights")
    assert api.weights(lenet["id"]) == before


def test_upload_needs_octet_stream(api, lenet):
    w = api.weights(lenet["id"])
    r = api.put(
        f"/api/models/{lenet['id']}/weights", content=w, headers={"content-type": "text/plain"}
    )
    api.error(r, 415, "unsupported_media_type")
    r = api.put(f"/api/models/{lenet['id']}/weights", content=w)
    api.error(r, 415, "unsupported_media_type")
