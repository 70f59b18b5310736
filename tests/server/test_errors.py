"""One error shape (server/errors.py, server/middleware.py, server/deps.py).

Every mistake is a 4xx whose body is ``{"error": {"code", "message", "layer"?, "detail"?}}``:
unknown routes, wrong methods, FastAPI's own validation errors, bodies of the wrong media
type or size, missing or bad tokens, another workspace's model on every model route. A 5xx
is a bug: the odd-input sweeps below send wrong JSON types everywhere and accept only 4xx.
"""

from __future__ import annotations

import copy
import json

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import server.jobs
from models.presets import PRESETS

LENET = PRESETS["lenet5"].spec

MODEL_ROUTES = [
    ("GET", ""),
    ("PUT", ""),
    ("DELETE", ""),
    ("GET", "/summary"),
    ("GET", "/code"),
    ("POST", "/run"),
    ("GET", "/parameters"),
    ("GET", "/parameters/conv1.weight"),
    ("PATCH", "/parameters/conv1"),
    ("GET", "/weights"),
    ("PUT", "/weights"),
]


def _valid_request(api, method: str, suffix: str, model: dict) -> dict:
    """A valid body for each route, so that only the token can be the reason for a refusal."""
    if suffix == "/weights" and method == "PUT":
        return {"content": api.weights(model["id"]), "headers": api.OCTET}
    if suffix == "" and method == "PUT":
        return {"json": {"spec": model["spec"]}}
    if suffix == "/run":
        return {"json": {"capture": ["conv1"]}}
    if suffix.startswith("/parameters/") and method == "PATCH":
        return {"json": {"requires_grad": False}}
    return {}


# -- 401 and 404 on every model route -------------------------------------------------------
@pytest.mark.parametrize(("method", "suffix"), MODEL_ROUTES)
@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer nope", "Basic dXNlcjpwYXNz", "Bearer", "bearer  ", ""],
    ids=["none", "unknown-token", "basic", "bearer-no-token", "blank-bearer", "empty"],
)
def test_model_route_without_valid_token_is_401(api, lenet, method, suffix, authorization):
    kwargs = _valid_request(api, method, suffix, lenet)
    headers = dict(kwargs.pop("headers", {}))
    if authorization is not None:
        headers["Authorization"] = authorization
    r = api.client.request(method, f"/api/models/{lenet['id']}{suffix}", headers=headers, **kwargs)
    api.error(r, 401, "unauthorized")
    assert r.headers["www-authenticate"] == "Bearer"
    assert api.ok(api.get(f"/api/models/{lenet['id']}"))["version"] == lenet["version"]


@pytest.mark.parametrize(("method", "suffix"), MODEL_ROUTES)
def test_model_route_of_another_workspace_is_404(api, lenet, method, suffix):
    other = api.other()
    before = api.weights(lenet["id"])
    kwargs = _valid_request(api, method, suffix, lenet)
    r = other.request(method, f"/api/models/{lenet['id']}{suffix}", **kwargs)
    err = api.error(r, 404, "model_not_found")
    assert lenet["id"] in err["message"]
    # the owner still has it, unchanged: same version, same weights, nothing frozen
    assert api.ok(api.get(f"/api/models/{lenet['id']}"))["version"] == lenet["version"]
    assert api.weights(lenet["id"]) == before
    table = api.ok(api.get(f"/api/models/{lenet['id']}/parameters"))
    assert table["totals"]["frozen"] == 0


@pytest.mark.parametrize(
    ("method", "url"),
    [("GET", "/api/models"), ("POST", "/api/models"), ("GET", "/api/workspaces/me")],
)
def test_workspace_routes_need_a_token(api, method, url):
    kwargs = {"json": {"preset": "lenet5"}} if method == "POST" else {}
    api.error(api.client.request(method, url, **kwargs), 401, "unauthorized")


# -- routing --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "url"),
    [("GET", "/nope"), ("GET", "/api/nope"), ("POST", "/api/models/x/y/z"), ("GET", "/api/")],
)
def test_unknown_route_is_404(api, method, url):
    r = api.request(method, url, **({"json": {}} if method == "POST" else {}))
    err = api.error(r, 404, "not_found")
    assert url in err["message"]


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("DELETE", "/api/catalog"),
        ("POST", "/api/presets"),
        ("PUT", "/api/workspaces"),
        ("GET", "/api/validate"),
        ("POST", "/healthz"),
    ],
)
def test_wrong_method_is_405(api, method, url):
    r = api.request(method, url, **({"json": {}} if method in ("POST", "PUT") else {}))
    err = api.error(r, 405, "method_not_allowed")
    assert method in err["message"]
    assert "allow" in r.headers


def test_wrong_method_on_a_model_is_405(api, lenet):
    api.error(api.patch(f"/api/models/{lenet['id']}", json={}), 405, "method_not_allowed")
    api.error(api.post(f"/api/models/{lenet['id']}/weights"), 405, "method_not_allowed")


# -- FastAPI's own validation errors --------------------------------------------------------
@pytest.mark.parametrize(
    "content",
    [b"", b"[]", b'"spec"', b"null", b'{"spec": {}, "x": 1}'],
    ids=["empty", "array", "string", "null", "extra-field"],
)
def test_json_of_the_wrong_shape_is_422(api, content):
    r = api.post("/api/validate", content=content, headers={"content-type": "application/json"})
    err = api.error(r, 422, "invalid_request")
    assert isinstance(err["detail"], list) and {"loc", "problem"} <= set(err["detail"][0])


def test_validation_error_names_the_field(api, lenet):
    r = api.post(f"/api/models/{lenet['id']}/run", json={"mode": "sideways"})
    err = api.error(r, 422, "invalid_request")
    assert "mode" in err["message"] and err["detail"][0]["loc"] == "mode"


def test_invalid_utf8_is_a_4xx(api):
    r = api.post(
        "/api/validate", content=b"\xff\xfe{", headers={"content-type": "application/json"}
    )
    assert 400 <= r.status_code < 500
    api.error(r, r.status_code)


@pytest.mark.parametrize("body", [b"{not json", b'{"spec": ', b"{'spec': 1}", b"[1,]"])
def test_a_body_that_is_not_json_is_the_documented_400(api, client, body):
    r = api.post("/api/validate", content=body, headers={"content-type": "application/json"})
    err = api.error(r, 400, "bad_request")
    assert "not valid JSON" in err["message"]
    documented = client.get("/openapi.json").json()["paths"]["/api/validate"]["post"]
    assert "400" in documented["responses"]


# -- media type -----------------------------------------------------------------------------
def _json_routes(model_id: str) -> list[tuple[str, str, dict]]:
    return [
        ("POST", "/api/validate", {"spec": LENET}),
        ("POST", "/api/models", {"preset": "lenet5"}),
        ("PUT", f"/api/models/{model_id}", {"spec": LENET}),
        ("POST", f"/api/models/{model_id}/run", {}),
        ("PATCH", f"/api/models/{model_id}/parameters/conv1", {"requires_grad": False}),
    ]


@pytest.mark.parametrize(
    "ctype",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None],
)
def test_json_body_in_another_media_type_is_415(api, lenet, ctype):
    for method, url, body in _json_routes(lenet["id"]):
        headers = {"content-type": ctype} if ctype else {}
        r = api.request(method, url, content=json.dumps(body).encode(), headers=headers)
        err = api.error(r, 415, "unsupported_media_type")
        assert "application/json" in err["message"]
    assert [m["id"] for m in api.ok(api.get("/api/models"))["models"]] == [lenet["id"]]
    assert api.ok(api.get(f"/api/models/{lenet['id']}/parameters"))["totals"]["frozen"] == 0


def test_chunked_text_plain_is_415(api, lenet):
    """A body without Content-Length (chunked) is checked the same way."""
    body = json.dumps({"requires_grad": False}).encode()
    r = api.patch(
        f"/api/models/{lenet['id']}/parameters/conv1",
        content=iter([body[:5], body[5:]]),
        headers={"content-type": "text/plain"},
    )
    api.error(r, 415, "unsupported_media_type")
    assert api.ok(api.get(f"/api/models/{lenet['id']}/parameters"))["totals"]["frozen"] == 0


def test_json_with_charset_is_accepted(api):
    r = api.post(
        "/api/validate",
        content=json.dumps({"spec": LENET}).encode(),
        headers={"content-type": "application/json; charset=utf-8"},
    )
    assert r.status_code == 200 and r.json()["valid"] is True


# -- body size ------------------------------------------------------------------------------
def _padded(body: dict, size: int) -> bytes:
    """``body`` as JSON followed by spaces up to exactly ``size`` bytes."""
    raw = json.dumps(body).encode()
    assert len(raw) <= size
    return raw + b" " * (size - len(raw))


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_body_over_the_cap_is_413(make_api, chunked):
    api = make_api(max_body_bytes=4096)
    ok, over = _padded({"spec": LENET}, 4096), _padded({"spec": LENET}, 4097)

    def send(data: bytes):
        content = iter([data[:1000], data[1000:]]) if chunked else data
        return api.post(
            "/api/validate", content=content, headers={"content-type": "application/json"}
        )

    assert send(ok).status_code == 200
    err = api.error(send(over), 413, "body_too_large")
    assert "4,096" in err["message"]


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_upload_over_the_cap_is_413(make_api, chunked):
    api = make_api(max_upload_bytes=400_000)
    model = api.create(preset="lenet5", seed=0)
    data = api.weights(model["id"]) + b"\0" * 100_000
    content = iter([data[:200_000], data[200_000:]]) if chunked else data
    r = api.put(f"/api/models/{model['id']}/weights", content=content, headers=api.OCTET)
    api.error(r, 413, "body_too_large")
    assert api.ok(api.get(f"/api/models/{model['id']}"))["version"] == 1


# -- failures inside the worker -------------------------------------------------------------
def test_out_of_memory_is_503_and_the_server_keeps_serving(api, lenet, monkeypatch):
    def oom(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(server.jobs, "run_model", oom)
    err = api.error(api.post(f"/api/models/{lenet['id']}/run", json={}), 503, "out_of_memory")
    assert "smaller" in err["message"]
    monkeypatch.undo()
    assert api.run(lenet["id"], capture=["fc3"])["outputs"]["fc3"]["shape"] == [1, 10]


def test_a_bug_is_a_500_in_the_same_shape(make_api, monkeypatch, caplog):
    """Should a bug slip through, the client gets the one error shape and no internals; the
    log gets the traceback."""
    api = make_api(raise_server_exceptions=False)
    model = api.create(preset="lenet5", seed=0)

    def bug(*args, **kwargs):
        raise KeyError("sentinel-7f3a")

    monkeypatch.setattr(server.jobs, "run_model", bug)
    err = api.error(api.post(f"/api/models/{model['id']}/run", json={}), 500, "internal_error")
    assert "KeyError" not in err["message"] and "sentinel-7f3a" not in err["message"]
    logged = [r for r in caplog.records if r.name == "playground" and r.exc_info]
    assert logged and logged[-1].exc_info[0] is KeyError


@pytest.mark.parametrize(
    "exc",
    [
        RuntimeError("mat1 and mat2 shapes cannot be multiplied (sentinel-51)"),
        ValueError("sentinel-52"),
        IndexError("index out of range in self (sentinel-53)"),
    ],
    ids=["RuntimeError", "ValueError", "IndexError"],
)
def test_a_torch_error_in_a_job_is_a_bug_not_the_users_mistake(make_api, monkeypatch, exc):
    """The worker turned any RuntimeError, ValueError or IndexError into a 422 "PyTorch
    refused this input": a server bug read as the user's mistake. The user's mistakes are
    SpecErrors where the input is checked; anything else is a logged 500 with its request id."""
    api = make_api(raise_server_exceptions=False)
    model = api.create(preset="lenet5", seed=0)

    def bug(*args, **kwargs):
        raise exc

    monkeypatch.setattr(server.jobs, "run_model", bug)
    r = api.post(f"/api/models/{model['id']}/run", json={}, headers={"X-Request-ID": "bug-5"})
    err = api.error(r, 500, "internal_error")
    assert err["request_id"] == "bug-5" and "sentinel" not in err["message"]


# -- a sweep of odd JSON: only 4xx ---------------------------------------------------------
ODD = [None, [], {}, "", "x", "é名", 2**70, -(2**70), -1, 0, 1.5, 1e308, True, [None], {"a": None}]


def _run_bodies() -> list:
    bodies: list = []
    for v in ODD:
        bodies += [v, {"inputs": v}, {"inputs": {"x": v}}, {"capture": v}, {"seed": v}]
        bodies += [{"mode": v}, {"encoding": v}, {"downsample": v}]
        for kind in ("tensor", "random", "constant", "tokens", "image"):
            for field in ("data", "seed", "value", "text", "png_base64", "shape", "encoding"):
                bodies.append({"inputs": {"x": {"kind": kind, field: v}}})
    return bodies


def _specs() -> list:
    specs: list = []
    for v in ODD:
        specs.append(v)
        for key in ("name", "inputs", "layers", "outputs", "labels"):
            specs.append({**copy.deepcopy(LENET), key: v})
        for key in ("name", "type", "args", "inputs"):
            spec = copy.deepcopy(LENET)
            spec["layers"][0][key] = v
            specs.append(spec)
        for arg in ("out_channels", "kernel_size", "stride", "padding", "bias"):
            spec = copy.deepcopy(LENET)
            spec["layers"][0]["args"][arg] = v
            specs.append(spec)
        spec = copy.deepcopy(LENET)
        spec["inputs"]["x"]["shape"] = [1, 1, v, 32]
        specs.append(spec)
        spec = copy.deepcopy(LENET)
        spec["inputs"]["x"]["dtype"] = v
        specs.append(spec)
    return specs


def _assert_4xx_or_ok(api, r) -> None:
    assert r.status_code < 500, r.text
    if r.status_code >= 400:
        api.error(r, r.status_code)


def test_odd_run_bodies_never_5xx(api, lenet):
    for body in _run_bodies():
        _assert_4xx_or_ok(api, api.post(f"/api/models/{lenet['id']}/run", json=body))


def test_odd_specs_never_5xx(api, lenet):
    for spec in _specs():
        _assert_4xx_or_ok(api, api.post("/api/validate", json={"spec": spec}))
        r = api.post("/api/models", json={"spec": spec})
        _assert_4xx_or_ok(api, r)
        if r.status_code == 201:
            api.delete(f"/api/models/{r.json()['id']}")
        _assert_4xx_or_ok(api, api.put(f"/api/models/{lenet['id']}", json={"spec": spec}))


def test_odd_model_bodies_never_5xx(api, lenet):
    for v in ODD:
        for body in (v, {"preset": v}, {"preset": "lenet5", "seed": v}, {"spec": v}):
            r = api.post("/api/models", json=body)
            _assert_4xx_or_ok(api, r)
            if r.status_code == 201:
                api.delete(f"/api/models/{r.json()['id']}")
        for body in (v, {"requires_grad": v}):
            r = api.patch(f"/api/models/{lenet['id']}/parameters/conv1", json=body)
            _assert_4xx_or_ok(api, r)


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=JSON)
def test_random_json_never_5xx(api, lenet, body):
    for method, url in (
        ("POST", "/api/validate"),
        ("POST", "/api/models"),
        ("PUT", f"/api/models/{lenet['id']}"),
        ("POST", f"/api/models/{lenet['id']}/run"),
        ("PATCH", f"/api/models/{lenet['id']}/parameters/conv1"),
    ):
        r = api.request(method, url, json=body)
        _assert_4xx_or_ok(api, r)
        if method == "POST" and url == "/api/models" and r.status_code == 201:
            api.delete(f"/api/models/{r.json()['id']}")


def test_codes_map_to_documented_statuses_and_limits_to_settings() -> None:
    """server/errors.py alone maps codes to statuses and limit keys to settings (from
    Settings' own fields: no second list)."""
    from models.errors import LimitError
    from server.errors import STATUS, public, setting_name, status_of
    from server.schemas.common import ERROR_STATUSES

    assert set(STATUS.values()) <= set(ERROR_STATUSES)
    assert setting_name("max_params") == "PLAYGROUND_MAX_PARAMS"
    assert setting_name("max_attribution_passes") == "PLAYGROUND_MAX_ATTRIBUTION_PASSES"
    assert setting_name("no_such_setting") is None
    err = LimitError(
        "Too big. Use less.", detail={"limit": 1, "actual": 2, "limit_key": "max_flops"}
    )
    assert status_of(err) == 413
    assert public(err) == {
        "code": "limit_exceeded",
        "message": "Too big. Use less. Or raise PLAYGROUND_MAX_FLOPS.",
        "detail": {
            "limit": 1,
            "actual": 2,
            "limit_key": "max_flops",
            "setting": "PLAYGROUND_MAX_FLOPS",
        },
    }
    assert err.message == "Too big. Use less."  # the engine's own error is left as it was
