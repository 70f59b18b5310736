"""The OpenAPI document a client generator reads (server/openapi.py): one readable, stable
operation id per route, the spec's JSON Schema in the bodies that carry a spec, and on each
route only the error answers it can give, all in the one error body."""

from __future__ import annotations

import re

import jsonschema
import pytest

from models.presets import PRESETS
from server.errors import CODES, DEFAULT_STATUS, STATUS

# The ids generated clients name their methods by: changing one breaks them.
OPERATION_IDS = {
    "POST /api/workspaces": "createWorkspace",
    "GET /api/workspaces/me": "getWorkspace",
    "GET /api/catalog": "getCatalog",
    "GET /api/presets": "listPresets",
    "GET /api/presets/{name}": "getPreset",
    "POST /api/validate": "validateSpec",
    "GET /api/models": "listModels",
    "POST /api/models": "createModel",
    "GET /api/models/{model_id}": "getModel",
    "PUT /api/models/{model_id}": "replaceModel",
    "DELETE /api/models/{model_id}": "deleteModel",
    "GET /api/models/{model_id}/summary": "getModelSummary",
    "GET /api/models/{model_id}/code": "getModelCode",
    "POST /api/models/{model_id}/run": "runModel",
    "GET /api/models/{model_id}/parameters": "listParameters",
    "GET /api/models/{model_id}/parameters/{name}": "getParameter",
    "PATCH /api/models/{model_id}/parameters/{name}": "setParameterGrad",
    "GET /api/models/{model_id}/weights": "downloadWeights",
    "PUT /api/models/{model_id}/weights": "uploadWeights",
    "POST /api/models/{model_id}/trainings": "createTraining",
    "GET /api/models/{model_id}/trainings": "listTrainings",
    "GET /api/models/{model_id}/trainings/{training_id}": "getTraining",
    "GET /api/models/{model_id}/trainings/{training_id}/events": "streamTrainingEvents",
    "POST /api/models/{model_id}/trainings/{training_id}/pause": "pauseTraining",
    "POST /api/models/{model_id}/trainings/{training_id}/resume": "resumeTraining",
    "POST /api/models/{model_id}/trainings/{training_id}/step": "stepTraining",
    "POST /api/models/{model_id}/trainings/{training_id}/cancel": "cancelTraining",
    "GET /api/models/{model_id}/trainings/{training_id}/checkpoints": "listCheckpoints",
    "GET /api/models/{model_id}/trainings/{training_id}/checkpoints/{step}/weights": (
        "downloadCheckpointWeights"
    ),
    "POST /api/models/{model_id}/trainings/{training_id}/checkpoints/{step}/restore": (
        "restoreCheckpoint"
    ),
    "GET /api/models/{model_id}/trainings/{training_id}/script": "getTrainingScript",
    "GET /api/datasets": "listDatasets",
    "GET /api/datasets/{name}": "getDataset",
    "GET /api/datasets/{name}/samples/{split}/{index}": "getDatasetSample",
    "GET /api/datasets/{name}/points/{split}": "getDatasetPoints",
    "GET /api/training/options": "getTrainingOptions",
    "GET /healthz": "getHealth",
    "GET /api/effects": "listEffects",
    "POST /api/effects/pooling": "poolingEffect",
    "POST /api/effects/normalization": "normalizationEffect",
    "POST /api/effects/dropout": "dropoutEffect",
    "POST /api/effects/activations": "activationsEffect",
    "POST /api/effects/activations/softmax": "softmaxEffect",
    "POST /api/effects/activations/linear-stack": "linearStackEffect",
    "POST /api/effects/losses": "lossEffect",
    "POST /api/effects/linear": "linearEffect",
    "POST /api/models/{model_id}/conv_by_hand": "convByHand",
    "POST /api/models/{model_id}/attribute": "attributeModel",
    "POST /api/models/{model_id}/gradients": "getGradients",
    "POST /api/models/{model_id}/intervene": "interveneModel",
    "POST /api/models/{model_id}/featvis": "visualizeFeature",
}
# Every status the server answers an error with: the code table's, the default 422, those of
# Starlette's HTTP errors (server/errors.py), and the rate limit's 429 (server/security.py).
REACHABLE = set(STATUS.values()) | {DEFAULT_STATUS} | set(CODES) | {429}


@pytest.fixture
def document(make_client) -> dict:
    return make_client(metrics=True).get("/openapi.json").json()


def operations(document: dict):
    for path, ops in document["paths"].items():
        for method, op in ops.items():
            yield f"{method.upper()} {path}", path, method, op


def test_every_operation_has_its_own_readable_stable_id(document) -> None:
    ids = {key: op.get("operationId") for key, _, _, op in operations(document)}
    ids.pop("GET /metrics")  # only with PLAYGROUND_METRICS
    assert ids == OPERATION_IDS
    every = [op["operationId"] for _, _, _, op in operations(document)]
    assert len(every) == len(set(every))
    assert all(re.fullmatch(r"[a-z][a-zA-Z]+", i) for i in every), every


def test_each_route_lists_only_errors_it_can_answer_in_the_one_body(document) -> None:
    for key, path, method, op in operations(document):
        listed = {int(s) for s in op["responses"] if s.isdigit() and int(s) >= 400}
        assert listed <= REACHABLE, (key, listed - REACHABLE)
        for status in listed:
            content = op["responses"][str(status)]["content"]["application/json"]
            assert content["schema"] == {"$ref": "#/components/schemas/ErrorBody"}, key
        has_body = "requestBody" in op
        if "{" not in path and not has_body:
            assert 404 not in listed, f"{key} names nothing that could be missing"
        assert ({400, 415} <= listed) == (method in ("post", "put", "patch")), key
        secured = bool(op.get("security")) and {} not in op["security"]
        assert (401 in listed) == (secured or key == "GET /metrics"), key
        assert (422 in listed) == bool(op.get("parameters") or has_body), key
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_a_route_that_reads_no_model_lists_no_404(document) -> None:
    paths = document["paths"]
    assert "404" not in paths["/api/models"]["get"]["responses"]
    assert "404" not in paths["/api/effects/activations/softmax"]["post"]["responses"]
    assert "409" not in paths["/api/models/{model_id}"]["delete"]["responses"]
    assert "404" in paths["/api/models/{model_id}/run"]["post"]["responses"]


@pytest.mark.parametrize(
    ("path", "method"),
    [("/api/models", "post"), ("/api/models/{model_id}", "put")],
)
def test_a_spec_in_a_body_is_described_by_the_specs_schema(document, path, method) -> None:
    ref = document["paths"][path][method]["requestBody"]["content"]["application/json"]
    body = document["components"]["schemas"][ref["schema"]["$ref"].rsplit("/", 1)[-1]]
    field = body["properties"]["spec"]
    assert {"$ref": "#/components/schemas/Spec"} in [field, *field.get("anyOf", [])]
    spec = {"components": document["components"], "$ref": "#/components/schemas/Spec"}
    validator = jsonschema.Draft202012Validator(spec)
    for preset in PRESETS.values():  # every spec the playground ships is one
        validator.validate(preset.spec)
    assert not validator.is_valid({"inputs": {}, "layers": [], "colour": "red"})
    assert not validator.is_valid({"inputs": {"x": {"shape": [0]}}, "layers": []})


def test_validate_judges_any_object_and_points_to_the_schema(document, api) -> None:
    """/api/validate answers a spec that breaks the schema with a verdict, not a 4xx, so its
    body keeps an object (schemathesis holds a document to the refusals it promises)."""
    field = document["components"]["schemas"]["ValidateRequest"]["properties"]["spec"]
    assert field["type"] == "object" and "#/components/schemas/Spec" in field["description"]
    verdict = api.ok(api.post("/api/validate", json={"spec": {"inputs": {}}}))
    assert verdict["valid"] is False and verdict["error"]["code"] == "invalid_spec"
