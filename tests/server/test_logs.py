"""The playground's log lines: a timestamp, the level and the request id on each, one line
(with its traceback) per bug, the same id in the 500's body and header; JSON on request."""

from __future__ import annotations

import io
import json
import logging
import re
import warnings

from server.logs import setup_logging

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (\w+) \[([^\]]+)\] ([\w.]+): (.*)$")


def app_with_a_bug(make_app):
    app = make_app()

    @app.get("/api/bug")
    def bug() -> None:
        raise RuntimeError("a bug")

    return app


def test_a_bug_is_one_line_with_time_level_and_request_id(make_app):
    app = app_with_a_bug(make_app)
    out = io.StringIO()
    setup_logging("info", "text", stream=out)  # after create_app, which sets up stderr
    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.get("/api/bug")
        ok = client.get("/healthz")
    assert r.status_code == 500
    request_id = r.headers["x-request-id"]
    assert r.json()["error"] == {
        "code": "internal_error",
        "message": "The server hit a bug; it has been logged.",
        "request_id": request_id,
    }
    assert ok.headers["x-request-id"] != request_id
    lines = [m for m in map(LINE.match, out.getvalue().splitlines()) if m]
    assert [(m[1], m[2], m[3]) for m in lines] == [("ERROR", request_id, "playground")]
    assert lines[0][4] == "unexpected error on GET /api/bug"
    assert "RuntimeError: a bug" in out.getvalue()  # the traceback follows the line


def test_json_lines_for_log_collectors(make_app):
    app = app_with_a_bug(make_app)
    out = io.StringIO()
    setup_logging("info", "json", stream=out)
    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.get("/api/bug", headers={"X-Request-ID": "trace-42"})
    assert r.headers["x-request-id"] == "trace-42"  # a caller's id is kept
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    (error,) = [rec for rec in records if rec["level"] == "ERROR"]
    assert error["request_id"] == "trace-42" and error["logger"] == "playground"
    assert error["message"] == "unexpected error on GET /api/bug"
    assert "RuntimeError: a bug" in error["exc"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", error["time"])


def test_outside_a_request_the_id_is_a_dash_and_setup_replaces_its_handler():
    out = io.StringIO()
    setup_logging("info", "text", stream=out)
    handler = setup_logging("warning", "text", stream=out)  # again: still one handler
    ours = [h for h in logging.getLogger("playground").handlers if getattr(h, "_playground", 0)]
    assert ours == [handler]
    logging.getLogger("playground.worker").info("not shown at warning")
    logging.getLogger("playground.worker").warning("shown")
    (line,) = out.getvalue().splitlines()
    m = LINE.match(line)
    assert m and m[1] == "WARNING" and m[2] == "-" and m[3] == "playground.worker"
    setup_logging()  # back to stderr for the other tests
