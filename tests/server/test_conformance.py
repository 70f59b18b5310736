"""The OpenAPI document and the validation agree: what the live fuzz (schemathesis' coverage
and stateful phases, tests/server/test_fuzz_openapi.py::test_live_server) found, each once
an answer the document did not allow."""

from __future__ import annotations

import pytest

from server.openapi import require_discriminators


@pytest.fixture
def linear(api):
    return api.create(preset="linear_3_2", seed=0)


def loose(api, linear) -> list[tuple[str, str, dict]]:
    mid = linear["id"]
    return [
        ("PATCH", f"/api/models/{mid}/parameters/linear.bias", {"requires_grad": 0}),
        ("POST", f"/api/models/{mid}/run", {"stats": 0}),
        ("POST", f"/api/models/{mid}/run", {"seed": False}),
        ("POST", f"/api/models/{mid}/run", {"inputs": {"x": {"kind": "constant", "value": True}}}),
        ("POST", f"/api/models/{mid}/run", {"inputs": {"x": {"kind": "random", "seed": "3"}}}),
        ("POST", "/api/effects/activations/softmax", {"scores": [False]}),
        ("POST", "/api/effects/activations", {"x_max": False}),
        ("POST", "/api/effects/pooling", {"count_include_pad": 0}),
        ("POST", "/api/models", {"preset": "linear_3_2", "seed": True}),
    ]


def test_booleans_are_not_numbers_nor_numbers_booleans(api, linear) -> None:
    """Pydantic's lax mode took 0 for false, false for 0 and "3" for 3; the document says
    boolean, number, integer."""
    for method, url, body in loose(api, linear):
        err = api.error(api.request(method, url, json=body), 422, "invalid_request")
        assert "needed here" in err["message"], (url, body, err)


def test_an_integral_float_is_still_an_integer(api, linear) -> None:
    """JSON Schema calls 3.0 an integer, so strict types must not refuse it."""
    api.ok(api.post(f"/api/models/{linear['id']}/run", json={"seed": 3.0, "capture": "none"}))
    api.ok(api.post("/api/effects/losses", json={"curve_points": 563.0}))


def test_a_loss_given_as_an_object_is_a_422_not_a_500(make_client, api) -> None:
    client = make_client(raise_server_exceptions=False)
    auth = {"Authorization": f"Bearer {client.post('/api/workspaces').json()['token']}"}
    r = client.post("/api/effects/losses", json={"loss": {}}, headers=auth)
    api.error(r, 422, "invalid_request")


def test_a_discriminated_unions_tag_is_required_in_the_document(client) -> None:
    """``kind`` has a default in each input maker, so the document called it optional, but the
    validation needs it to pick the maker."""
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    for name in ("RandomInput", "ConstantInput", "TensorInput", "TokensInput", "ImageInput"):
        assert "kind" in schemas[name]["required"], name


def test_require_discriminators_follows_the_mapping() -> None:
    schema = {
        "paths": {
            "/x": {
                "oneOf": [{"$ref": "#/components/schemas/A"}],
                "discriminator": {
                    "propertyName": "kind",
                    "mapping": {"b": "#/components/schemas/B"},
                },
            }
        },
        "components": {"schemas": {"A": {"properties": {}}, "B": {"required": ["x"]}}},
    }
    require_discriminators(schema)
    require_discriminators(schema)  # idempotent
    assert schema["components"]["schemas"]["A"]["required"] == ["kind"]
    assert schema["components"]["schemas"]["B"]["required"] == ["x", "kind"]


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("OPTIONS", "/api/models", "GET, POST"),
        ("OPTIONS", "/api/models/abc", "DELETE, GET, PUT"),
        ("OPTIONS", "/api/models/abc/weights", "GET, PUT"),
        ("DELETE", "/api/workspaces", "POST"),
    ],
)
def test_a_405_names_every_method_of_the_path(client, api, method, path, allowed) -> None:
    """Starlette named only the first matching route's methods (GET and POST /api/models are
    two routes): ``Allow: POST``."""
    r = client.request(method, path)
    api.error(r, 405, "method_not_allowed")
    assert r.headers["allow"] == allowed


def test_healthz_documents_its_token_as_optional(client) -> None:
    """The token only adds the versions: the document must not require it."""
    security = client.get("/openapi.json").json()["paths"]["/healthz"]["get"]["security"]
    assert {} in security


@pytest.mark.parametrize("seed", [2**63 - 1, 2**63])
def test_seeds_are_bounded_like_torchs(api, linear, seed) -> None:
    """One bound for every seed (models/inputs.py's ``< 2**63``), exact as a JSON number."""
    r = api.post(f"/api/models/{linear['id']}/run", json={"seed": seed, "capture": "none"})
    if seed < 2**63:
        api.ok(r)
    else:
        api.error(r, 422, "invalid_request")
