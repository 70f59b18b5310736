"""Request bodies bounded before they cost: JSON nesting (checked before parsing), big JSON
parsed off the event loop, uploads streamed to a file a few at a time, the download's
``Content-Disposition`` for any name, and what ``/healthz`` tells a stranger."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import unquote

import pytest
import torch
from safetensors.torch import save as st_save
from starlette.requests import Request

from server.middleware import json_depth
from server.routers.parameters import content_disposition

VALIDATE = "/api/validate"


def nested(depth: int) -> str:
    """A spec whose ``args`` hold a list nested so that the whole body is ``depth`` deep."""
    inner = "[" * (depth - 5) + "1" + "]" * (depth - 5)
    return (
        '{"spec": {"inputs": {"x": {"shape": [1, 3]}}, "layers": [{"type": "Linear", '
        f'"args": {{"in_features": {inner}}}}}]}}}}'
    )


# -- nesting --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "depth"),
    [
        (b"", 0),
        (b"1", 0),
        (b"[]", 1),
        (b'{"a": [1, {"b": []}]}', 4),
        (b'["[[[[", "]]"]', 1),  # brackets in strings do not count
        (b'["\\"[[[", "\\\\", [[]]]', 3),  # nor after escaped quotes and backslashes
        (b"[" * 5000 + b"]" * 5000, 5000),
        (b'"\\"' * 1000, 0),  # an unclosed string of escaped quotes: linear, no nesting
    ],
)
def test_json_depth_counts_brackets_outside_strings(text: bytes, depth: int) -> None:
    assert json_depth(text) == depth


def test_the_nested_body_helper_is_as_deep_as_it_says() -> None:
    assert json_depth(nested(64).encode()) == 64
    json.loads(nested(64))


def test_a_body_nested_955_deep_is_a_400_not_a_500(make_client, api) -> None:
    """FastAPI parsed it, then the verdict cache's json.dumps ran out of stack: 500."""
    client = make_client(raise_server_exceptions=False)
    r = client.post(VALIDATE, content=nested(955), headers={"content-type": "application/json"})
    err = api.error(r, 400, "too_deeply_nested")
    assert "PLAYGROUND_MAX_JSON_DEPTH" in err["message"]
    assert err["detail"] == {"depth": 955, "limit": 64}


def test_nesting_up_to_the_limit_reaches_validation(api) -> None:
    r = api.post(VALIDATE, content=nested(64), headers={"content-type": "application/json"})
    assert r.status_code != 400 or r.json()["error"]["code"] != "too_deeply_nested", r.text
    r = api.post(VALIDATE, content=nested(65), headers={"content-type": "application/json"})
    api.error(r, 400, "too_deeply_nested")


def test_the_depth_limit_is_a_setting(make_api) -> None:
    api = make_api(max_json_depth=8)
    r = api.post(VALIDATE, content=nested(9), headers={"content-type": "application/json"})
    assert api.error(r, 400, "too_deeply_nested")["detail"] == {"depth": 9, "limit": 8}


def test_a_long_deep_body_is_refused_too(api) -> None:
    """Past the size parsed in a thread, the check runs there, before the parser."""
    body = nested(200)[:-1] + ', "pad": "' + "x" * 100_000 + '"}'
    r = api.post(VALIDATE, content=body, headers={"content-type": "application/json"})
    api.error(r, 400, "too_deeply_nested")


# -- big JSON off the event loop ------------------------------------------------------------
def test_a_long_json_body_is_parsed_off_the_event_loop(api, lenet, monkeypatch) -> None:
    """An 8 MiB tensor given as nested lists took seconds to parse on the event loop,
    delaying every other request; bodies past 64 KiB are parsed in a thread, once."""
    parses: list[bool] = []  # one per parse of a long text: was it on the event loop?
    real = json.loads

    def spy(text, *args, **kwargs):
        if len(text) > 64 * 1024:
            try:
                asyncio.get_running_loop()
                parses.append(True)
            except RuntimeError:
                parses.append(False)
        return real(text, *args, **kwargs)

    monkeypatch.setattr(json, "loads", spy)
    values = torch.arange(32 * 32, dtype=torch.float32).reshape(1, 1, 32, 32) / 7
    body = {"inputs": {"x": {"kind": "tensor", "data": values.tolist()}}, "capture": "none"}
    text = json.dumps(body) + " " * 70_000  # past the threshold whatever the number format
    r = api.post(
        f"/api/models/{lenet['id']}/run",
        content=text,
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 200, r.text
    assert parses == [False]


# -- weights download -----------------------------------------------------------------------
ODD_NAMES = [
    "LeNet5-abc.safetensors",
    'Evil"; filename="x.exe.safetensors',
    "Evil\n.safetensors",
    "a;b,c\\d\r\n\t.safetensors",
    "Modèle ñ 模型 🙂.safetensors",
    "",
    "\x00\x7f",
]


@pytest.mark.parametrize("name", ODD_NAMES)
def test_content_disposition_is_a_legal_header_for_any_name(name: str) -> None:
    """A name ending in a newline made h11 refuse the header: the connection dropped."""
    value = content_disposition(name)
    assert all(0x20 <= ord(c) < 0x7F for c in value), value
    assert value.startswith("attachment; filename=")
    plain, _, extended = value.partition("; filename*=UTF-8''")
    fallback = plain.removeprefix("attachment; filename=")
    assert fallback.startswith('"') and fallback.endswith('"')
    assert '"' not in fallback[1:-1] and ";" not in fallback[1:-1] and "\\" not in fallback
    assert unquote(extended, errors="strict") == name


def test_the_download_names_the_file_both_ways(api, lenet) -> None:
    r = api.get(f"/api/models/{lenet['id']}/weights")
    assert r.status_code == 200
    name = f"{lenet['name']}-{lenet['id']}.safetensors"
    assert r.headers["content-disposition"] == content_disposition(name)
    assert f"filename*=UTF-8''{name}" in r.headers["content-disposition"]


# -- weights upload -------------------------------------------------------------------------
def lenet_file(api, lenet) -> bytes:
    return api.weights(lenet["id"])


def test_an_upload_is_streamed_not_read_whole(api, lenet, monkeypatch) -> None:
    """The upload used request.body(): the whole body in memory, twice while joined."""
    data = lenet_file(api, lenet)

    async def whole_body(self):
        raise AssertionError("the upload was read into memory whole")

    monkeypatch.setattr(Request, "body", whole_body)
    r = api.put_weights(lenet["id"], data)
    assert r.status_code == 200, r.text
    assert r.json()["tensors"] == 10


def test_an_upload_beyond_the_slots_is_a_503_with_retry_after(make_api) -> None:
    api = make_api(max_concurrent_uploads=1)
    lenet = api.create(preset="lenet5", seed=0)
    data = lenet_file(api, lenet)
    uploads = api.client.app.state.playground.uploads
    uploads.taken = 1  # one upload in progress
    r = api.put_weights(lenet["id"], data)
    err = api.error(r, 503, "uploads_busy")
    assert "PLAYGROUND_MAX_CONCURRENT_UPLOADS" in err["message"]
    assert int(r.headers["retry-after"]) >= 1
    uploads.taken = 0
    assert api.put_weights(lenet["id"], data).status_code == 200


def test_a_streamed_upload_over_the_cap_is_refused_while_read(api, lenet) -> None:
    """Without Content-Length (chunked), the cap is enforced as the bytes arrive."""
    limit = 4 * 2**20  # SMALL_LIMITS' max_upload_bytes

    def chunks():
        for _ in range(limit // 2**16 + 2):
            yield b"\0" * 2**16

    r = api.put(f"/api/models/{lenet['id']}/weights", content=chunks(), headers=api.OCTET)
    api.error(r, 413, "body_too_large")
    assert api.client.app.state.playground.uploads.taken == 0


def test_a_bad_file_changes_nothing_and_frees_its_slot(api, lenet) -> None:
    before = lenet_file(api, lenet)
    state = {"conv1.weight": torch.full((6, 1, 5, 5), float("nan"))}
    r = api.put_weights(lenet["id"], st_save(state))
    api.error(r, 422, "bad_weights")
    assert lenet_file(api, lenet) == before
    assert api.client.app.state.playground.uploads.taken == 0


# -- /healthz -------------------------------------------------------------------------------
def test_healthz_tells_a_stranger_only_that_it_is_alive(client, api) -> None:
    body = client.get("/healthz").json()
    assert body["status"] == "ok" and "versions" not in body
    assert set(api.get("/healthz").json()["versions"]) == {"python", "torch", "fastapi"}
    other = client.get("/healthz", headers={"Authorization": "Bearer not-a-token"}).json()
    assert "versions" not in other


def test_healthz_versions_for_anyone_is_a_setting(make_client) -> None:
    body = make_client(healthz_versions=True).get("/healthz").json()
    assert body["versions"]["torch"] == torch.__version__
