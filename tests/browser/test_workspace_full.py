"""A full workspace (PLAYGROUND_MAX_MODELS_PER_WORKSPACE): the page makes room by deleting the
workspace's oldest other model and builds, deciding by the error's code and limit key
(``limit_exceeded``, ``max_models_per_workspace``), not by the message's words."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from server.child import ChildServer

pytestmark = pytest.mark.browser

CREATE = """async (preset) => {
  const r = await fetch("/api/models", {
    method: "POST",
    headers: {
      Authorization: "Bearer " + localStorage.getItem("playground.token"),
      "Content-Type": "application/json",
    },
    body: JSON.stringify({ preset }),
  });
  return [r.status, await r.json()];
}"""
LIST = """async () => {
  const r = await fetch("/api/models", {
    headers: { Authorization: "Bearer " + localStorage.getItem("playground.token") },
  });
  return (await r.json()).models.map((m) => m.id);
}"""


@pytest.fixture(scope="module")
def small_server(tmp_path_factory: pytest.TempPathFactory, server) -> Iterator[str]:
    env = {
        "PLAYGROUND_RATE_LIMIT_PER_MINUTE": "0",
        "PLAYGROUND_VALIDATE_RATE_LIMIT_PER_MINUTE": "0",
        "PLAYGROUND_MAX_MODELS_PER_WORKSPACE": "2",
        "PLAYGROUND_VALIDATE_TIMEOUT_S": "60",  # a loaded CI box: the live check is not tested
    }
    with ChildServer(tmp_path_factory.mktemp("full"), env=env, timeout=60) as srv:
        yield srv.url


def test_a_full_workspace_makes_room_by_the_error_code(new_page, problems, small_server) -> None:
    problems.allow("status of 413")  # the refusals the page answers by making room
    page = new_page()
    page.goto(f"{small_server}/playground#preset=lenet5")
    expect(page.locator("#model-status")).to_contain_text("built")
    [first] = page.evaluate(LIST)
    status, other = page.evaluate(CREATE, "linear_3_2")
    assert status == 201, other
    status, refused = page.evaluate(CREATE, "mlp")  # the workspace is full now
    assert status == 413 and refused["error"]["detail"]["limit_key"] == "max_models_per_workspace"

    page.goto(f"{small_server}/playground#preset=mlp")  # a fresh page opens another model
    expect(page.locator("#model-status")).to_contain_text("built")
    models = page.evaluate(LIST)
    assert len(models) == 2 and first not in models  # the oldest other one made room
    assert other["id"] in models
