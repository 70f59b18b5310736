"""The API docs (server/routers/docs.py): Swagger UI served from this server, so /docs works
in an offline classroom and under the CSP (no CDN, no inline script)."""

from __future__ import annotations

import re

from server.routers.docs import assets_dir


def test_docs_page_loads_only_local_files(client):
    r = client.get("/docs")
    assert r.status_code == 200
    assert "http://" not in r.text and "https://" not in r.text and "//cdn" not in r.text
    srcs = re.findall(r'(?:src|href)="([^"]+)"', r.text)
    assert "/docs/assets/swagger-ui-bundle.js" in srcs
    assert "/docs/assets/swagger-ui.css" in srcs
    assert "/docs/init.js" in srcs
    assert {"/", "/playground", "/effects"} <= set(srcs)  # a way back to the app
    for src in srcs:
        served = client.get(src)
        assert served.status_code == 200, src
        assert len(served.content) > 0


def test_the_assets_are_the_packaged_swagger_ui(client):
    folder = assets_dir()
    r = client.get("/docs/assets/swagger-ui-bundle.js")
    assert r.content == (folder / "swagger-ui-bundle.js").read_bytes()
    assert b"SwaggerUIBundle" in r.content
    assert r.headers["content-type"].startswith(("text/javascript", "application/javascript"))


def test_init_script_points_at_this_apps_schema(client):
    r = client.get("/docs/init.js")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/javascript")
    assert '"url": "/openapi.json"' in r.text
    assert '"validatorUrl": null' in r.text  # never ask an outside validator
    schema = client.get("/openapi.json").json()
    assert schema["info"]["title"] == "PyTorch Model Playground"


def test_no_cdn_docs_are_left(client):
    assert client.get("/redoc").status_code == 404
    paths = client.get("/openapi.json").json()["paths"]
    assert not any(p.startswith("/docs") for p in paths)
