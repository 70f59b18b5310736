"""Names in a spec become Python identifiers and a file name: whatever is accepted must be one.

``NAME_RE`` ended in ``$`` and was used with ``re.match``, so ``"Evil\\n"`` was accepted (201),
after which ``/code`` returned Python that does not compile. Every accepted model, layer and
input name must give exported code that compiles and names the class as the spec does.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

LINEAR = {"in_features": 3, "out_features": 2}


def _spec(model: str = "Net", layer: str = "fc", inp: str = "x") -> dict:
    return {
        "name": model,
        "inputs": {inp: {"shape": [1, 3]}},
        "layers": [{"name": layer, "type": "Linear", "args": LINEAR}],
    }


@pytest.mark.parametrize(
    "spec",
    [
        _spec(model="Evil\n"),
        _spec(model="Evil\r\n"),
        _spec(layer="fc\n"),
        _spec(inp="x\n"),
        _spec(model="Evil\nimport os"),
    ],
    ids=["model", "model_crlf", "layer", "input", "model_two_lines"],
)
def test_names_ending_in_a_newline_are_refused(api, spec) -> None:
    for url in ("/api/models", "/api/validate"):
        r = api.post(url, json={"spec": spec})
        if url == "/api/validate":
            assert api.ok(r)["valid"] is False
            assert r.json()["error"]["code"] == "invalid_name"
        else:
            api.error(r, 422, "invalid_name")
    assert api.ok(api.get("/api/models"))["models"] == []


NAMES = st.text(
    alphabet=st.sampled_from("aZ_09\n\r\t \x00é.-"), min_size=1, max_size=8
) | st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}\n?", fullmatch=True)


@settings(
    max_examples=40,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@example("Evil\n")
@example("Net")
@given(NAMES)
def test_code_of_every_accepted_name_compiles(api, name: str) -> None:
    for spec in (_spec(model=name), _spec(layer=name), _spec(inp=name)):
        r = api.post("/api/models", json={"spec": spec})
        if r.status_code != 201:
            assert api.error(r, 422)["code"] in {"invalid_name", "reserved_name", "invalid_spec"}
            continue
        model = r.json()
        body = api.ok(api.get(f"/api/models/{model['id']}/code"))
        namespace: dict = {"__name__": "exported"}
        exec(compile(body["code"], "exported.py", "exec"), namespace)
        assert body["class_name"] in namespace
        assert api.delete(f"/api/models/{model['id']}").status_code == 204
