"""Classroom defences (server/security.py): security headers on every response, the CSP
that the served pages obey, CORS off by default, and per-client rate limits (429 with
Retry-After) on the expensive routes, with a fake clock instead of sleeping.
"""

from __future__ import annotations

import re
import time
import warnings
from html.parser import HTMLParser

import pytest

from models.presets import PRESETS
from server.app import create_app
from server.security import CSP, EXPENSIVE, RateLimiter, is_expensive, is_validation
from server.settings import Settings

with warnings.catch_warnings():  # as in conftest.py: starlette warns once about httpx
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

LENET = PRESETS["lenet5"].spec
EXPECTED = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}


def directives(csp: str) -> dict[str, list[str]]:
    """A CSP header as {directive: [sources]}."""
    out = {}
    for part in csp.split(";"):
        name, *sources = part.split()
        out[name] = sources
    return out


class FakeClock:
    """Stands still unless moved; starts at the real monotonic time, so buckets stamped
    before it was put in place see no time go backwards."""

    def __init__(self) -> None:
        self.now = time.monotonic()

    def __call__(self) -> float:
        return self.now


def assert_secured(r) -> None:
    for name, value in EXPECTED.items():
        assert r.headers.get(name) == value, (r.request.url, name, r.headers.get(name))


# -- headers ------------------------------------------------------------------------------
def test_the_policy_forbids_inline_and_foreign_scripts():
    d = directives(CSP)
    assert d["script-src"] == ["'self'"]  # no 'unsafe-inline', no 'unsafe-eval', no host
    assert d["default-src"] == ["'self'"]
    assert d["frame-ancestors"] == ["'none'"]
    assert d["object-src"] == ["'none'"]
    assert d["connect-src"] == ["'self'"]
    # inline styles only (Plotly and Swagger UI add <style> at run time); never a host
    assert d["style-src"] == ["'self'", "'unsafe-inline'"]
    assert all(src.startswith("'") or src in ("data:", "blob:") for s in d.values() for src in s)


@pytest.mark.parametrize(
    "url",
    [
        "/",
        "/playground",
        "/static/css/base.css",
        "/static/js/api.js",
        "/api/catalog",
        "/api/presets",
        "/healthz",
        "/openapi.json",
        "/docs",
        "/no/such/page",
        "/static/no-such-file.js",
    ],
)
def test_every_get_carries_the_security_headers(client, url):
    r = client.get(url)
    assert r.status_code in (200, 404)
    assert_secured(r)


def test_error_answers_carry_the_security_headers(make_api, api, lenet):
    # an error from a route (401), from validation (422), from BodyGuard (413, 415)
    r401 = api.client.get("/api/models")
    r422 = api.post("/api/models", json={"seed": "not a number"})
    r415 = api.post("/api/validate", content=b"{}", headers={"content-type": "text/plain"})
    r413 = api.post(
        "/api/validate", content=b" " * (2**20 + 1), headers={"content-type": "application/json"}
    )
    for r, status in ((r401, 401), (r422, 422), (r415, 415), (r413, 413)):
        api.error(r, status)
        assert_secured(r)
    # and the rate limiter's own 429
    limited = make_api(validate_rate_limit_per_minute=1)
    limited.post("/api/validate", json={"spec": LENET})
    r429 = limited.post("/api/validate", json={"spec": LENET})
    limited.error(r429, 429, "rate_limited")
    assert_secured(r429)


def test_even_a_bug_answers_with_the_security_headers(tmp_path):
    app = create_app(Settings(data_dir=tmp_path))

    @app.get("/api/bug")
    def bug() -> None:
        raise RuntimeError("a bug")

    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.get("/api/bug")
    assert r.status_code == 500 and r.json()["error"]["code"] == "internal_error"
    assert_secured(r)


def test_a_response_cannot_weaken_the_policy(client):
    """Whatever a route sets, the one policy wins (no duplicate, looser header)."""
    r = client.get("/api/catalog")
    assert r.headers.get_list("content-security-policy") == [CSP]


class ScriptAudit(HTMLParser):
    """Collects what a CSP without 'unsafe-inline' would refuse: inline scripts, on*=
    handlers, javascript: URLs, and scripts from another origin."""

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for name, value in attrs.items():
            if name.startswith("on"):
                self.problems.append(f"<{tag} {name}=...>")
            if name in ("href", "src", "action") and (value or "").startswith("javascript:"):
                self.problems.append(f"<{tag} {name}={value}>")
        if tag == "script":
            src = attrs.get("src")
            if not src:
                self.problems.append("inline <script>")
            elif not src.startswith("/") or src.startswith("//"):
                self.problems.append(f"script from another origin: {src}")
            else:
                self.scripts.append(src)
            self._in_script = True

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script and data.strip():
            self.problems.append(f"script body: {data.strip()[:40]}")


@pytest.mark.parametrize("url", ["/", "/playground", "/docs"])
def test_served_pages_obey_the_policy(client, url):
    r = client.get(url)
    assert r.status_code == 200
    audit = ScriptAudit()
    audit.feed(r.text)
    assert audit.problems == []
    assert audit.scripts, "each page loads its code from script files"
    for src in audit.scripts:  # and each of them is served here
        assert client.get(src).status_code == 200, src


# -- CORS ---------------------------------------------------------------------------------
PREFLIGHT = {
    "Origin": "https://elsewhere.example",
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type",
}


def test_cors_is_off_by_default(client):
    r = client.options("/api/models", headers=PREFLIGHT)
    assert "access-control-allow-origin" not in r.headers
    r = client.get("/api/catalog", headers={"Origin": "https://elsewhere.example"})
    assert r.status_code == 200
    assert "access-control-allow-origin" not in r.headers


def test_cors_allows_exactly_the_configured_origins(make_client):
    client = make_client(cors_origins=["https://school.example"])
    ok = client.options("/api/models", headers={**PREFLIGHT, "Origin": "https://school.example"})
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == "https://school.example"
    assert "authorization" in ok.headers["access-control-allow-headers"].lower()
    assert "access-control-allow-credentials" not in ok.headers
    assert_secured(ok)
    other = client.options("/api/models", headers=PREFLIGHT)
    assert "access-control-allow-origin" not in other.headers
    simple = client.get("/api/catalog", headers={"Origin": "https://school.example"})
    assert simple.headers["access-control-allow-origin"] == "https://school.example"
    foreign = client.get("/api/catalog", headers={"Origin": "https://elsewhere.example"})
    assert "access-control-allow-origin" not in foreign.headers


# -- the token bucket ---------------------------------------------------------------------
def test_bucket_grants_the_burst_then_one_per_interval():
    clock = FakeClock()
    limiter = RateLimiter(3, clock=clock)  # 3 a minute: one every 20 s
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a") == pytest.approx(20.0)
    clock.now += 10
    assert limiter.take("a") == pytest.approx(10.0)  # half a token back: 10 s to go
    clock.now += 10
    assert limiter.take("a") == 0.0
    assert limiter.take("a") == pytest.approx(20.0)


def test_buckets_are_per_client_and_never_hold_more_than_the_burst():
    clock = FakeClock()
    limiter = RateLimiter(2, clock=clock)
    assert limiter.take("a") == limiter.take("a") == 0.0
    assert limiter.take("a") > 0
    assert limiter.take("b") == 0.0  # another client is not slowed down by "a"
    clock.now += 3600  # an hour idle refills to 2, not to 120
    assert [limiter.take("a") > 0 for _ in range(3)] == [False, False, True]


def test_the_bucket_table_is_bounded_least_recent_first():
    clock = FakeClock()
    limiter = RateLimiter(1, max_clients=2, clock=clock)
    for client in ("a", "b"):
        limiter.take(client)
    clock.now += 1
    limiter.take("a")  # refused, but "a" is now the most recent
    limiter.take("c")  # a third client pushes out "b", the least recently seen
    assert len(limiter) == 2
    assert limiter.take("a") > 0  # "a" kept its empty bucket
    assert limiter.take("b") == 0.0  # "b" was forgotten: a full bucket again


def test_zero_per_minute_is_not_a_limiter():
    with pytest.raises(ValueError, match="0 means"):
        RateLimiter(0)


# -- the rate limit on the API ------------------------------------------------------------
def test_over_the_limit_is_429_with_retry_after_and_recovers(make_api):
    api = make_api(validate_rate_limit_per_minute=3)
    limiter = api.client.app.state.validate_rate_limiter
    clock = FakeClock()
    limiter.clock = clock
    validate = lambda: api.post("/api/validate", json={"spec": LENET})  # noqa: E731
    assert [validate().status_code for _ in range(3)] == [200, 200, 200]
    r = validate()
    err = api.error(r, 429, "rate_limited")
    assert r.headers["retry-after"] == "20"
    assert "3 a minute for validations" in err["message"] and "20 s" in err["message"]
    # cheap routes are never limited
    assert all(api.get("/api/catalog").status_code == 200 for _ in range(5))
    assert api.ok(api.get("/api/models")) == {"models": [], "limit": 20}
    # keyed by the client's address: this client is spent, another is not
    assert limiter.take("testclient") > 0
    assert limiter.take("192.0.2.7") == 0.0
    clock.now += 19
    api.error(validate(), 429, "rate_limited")
    clock.now += int(r.headers["retry-after"])
    assert validate().status_code == 200


def test_validations_and_runs_spend_separate_budgets(make_api):
    """Typing in the builder (a validation 250 ms after each edit) never uses up the runs."""
    api = make_api(rate_limit_per_minute=3, validate_rate_limit_per_minute=2)
    api.client.app.state.rate_limiter.clock = FakeClock()
    api.client.app.state.validate_rate_limiter.clock = FakeClock()
    model = api.create(preset="linear_3_2", seed=0)  # the workspace and this: 2 of 3
    for _ in range(2):
        api.ok(api.post("/api/validate", json={"spec": LENET}))
    err = api.error(api.post("/api/validate", json={"spec": LENET}), 429, "rate_limited")
    assert "validations" in err["message"]
    assert api.run(model["id"])["outputs"]  # the third expensive request: still granted
    err = api.error(api.post(f"/api/models/{model['id']}/run", json={}), 429, "rate_limited")
    assert "runs" in err["message"] and "validations" not in err["message"]


@pytest.mark.parametrize(("method", "template"), EXPENSIVE)
def test_every_expensive_route_is_limited(make_api, method, template):
    api = make_api(rate_limit_per_minute=2)  # one token left: make_api made a workspace
    api.client.app.state.rate_limiter.clock = FakeClock()  # no refill during the test
    url = re.sub(r"\{[^}]+\}", "pooling", template)  # a real experiment, or a model id

    def send():
        if method == "GET":
            return api.request(method, url)
        return api.request(method, url, content=b"{}", headers={"content-type": "application/json"})

    assert send().status_code != 429
    r = send()
    api.error(r, 429, "rate_limited")
    assert r.headers["retry-after"] == "30"


def test_refused_requests_change_nothing(make_api):
    api = make_api(rate_limit_per_minute=2)
    api.client.app.state.rate_limiter.clock = FakeClock()
    model = api.create(preset="linear_3_2", seed=0)  # the second token
    r = api.put(f"/api/models/{model['id']}", json={"spec": LENET})
    api.error(r, 429, "rate_limited")
    again = api.ok(api.get(f"/api/models/{model['id']}"))
    assert again["version"] == model["version"] and again["spec"] == model["spec"]
    assert len(api.ok(api.get("/api/models"))["models"]) == 1


def test_zero_turns_the_rate_limit_off(make_api):
    api = make_api(rate_limit_per_minute=0, validate_rate_limit_per_minute=0)
    assert api.client.app.state.rate_limiter is None
    assert api.client.app.state.validate_rate_limiter is None
    assert all(api.post("/api/validate", json={"spec": LENET}).status_code == 200 for _ in range(5))
    operations = api.client.get("/openapi.json").json()["paths"]["/api/validate"]
    assert "429" not in operations["post"]["responses"]


def test_openapi_lists_429_on_exactly_the_limited_operations(make_client):
    client = make_client(rate_limit_per_minute=240, validate_rate_limit_per_minute=600)
    schema = client.get("/openapi.json").json()
    operations = {
        (method.upper(), path): op
        for path, ops in schema["paths"].items()
        for method, op in ops.items()
    }
    limited = {key for key, op in operations.items() if "429" in op["responses"]}
    assert limited == {key for key in operations if is_expensive(*key) or is_validation(*key)}
    # the routes that spend the device or create state, the effects lab among them
    must = {
        ("POST", "/api/workspaces"),
        ("POST", "/api/validate"),
        ("POST", "/api/models"),
        ("PUT", "/api/models/{model_id}"),
        ("POST", "/api/models/{model_id}/run"),
        ("PUT", "/api/models/{model_id}/weights"),
        ("POST", "/api/effects/pooling"),
        ("POST", "/api/effects/activations/softmax"),
    }
    assert must <= limited
    assert not any(method in ("DELETE", "PATCH") for method, _ in limited)
    for method, template in EXPENSIVE:  # no entry is stale: each names a real operation
        assert any(m == method and is_expensive(m, p) for m, p in limited), template
    answer = schema["paths"]["/api/validate"]["post"]["responses"]["429"]
    assert "Retry-After" in answer["headers"]
    ref = answer["content"]["application/json"]["schema"]["$ref"]
    assert ref.rsplit("/", 1)[1] in schema["components"]["schemas"]
