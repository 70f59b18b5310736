"""Swagger UI at /docs, served from this server: it works offline and under the CSP.

FastAPI's own /docs page loads Swagger UI from a CDN (nothing in an offline classroom)
and starts it with an inline script (refused by the Content-Security-Policy). Here the
page is a shell whose scripts are all files: Swagger UI's bundle and stylesheet come from
the ``fastapi-offline`` package (it ships them; only its assets are used), and the few
lines that start it are served as /docs/init.js.
"""

from __future__ import annotations

import json
from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

ASSETS = "/docs/assets"

PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{title} - API docs</title>
  <link rel="stylesheet" href="{assets}/swagger-ui.css">
  <link rel="icon" href="/static/favicon.svg">
</head>
<body>
  <nav class="docs-back" aria-label="The app">
    <a href="{root}/">&larr; PyTorch Model Playground</a> &middot;
    <a href="{root}/playground">Builder</a> &middot;
    <a href="{root}/effects">Effects lab</a>
  </nav>
  <div id="swagger-ui"></div>
  <script src="{assets}/swagger-ui-bundle.js"></script>
  <script src="{root}/docs/init.js"></script>
</body>
</html>
"""


def assets_dir() -> Path:
    """Where Swagger UI's files are (fastapi-offline ships them)."""
    return Path(fastapi_offline.__file__).resolve().parent / "static"


def mount(app: FastAPI) -> None:
    """Serve /docs, /docs/init.js and /docs/assets; the app is made with ``docs_url=None``."""
    router = APIRouter(include_in_schema=False)
    assets = assets_dir()

    @router.get("/docs", response_class=HTMLResponse)
    def docs(request: Request) -> HTMLResponse:
        """The API's interactive documentation (Swagger UI)."""
        root = request.scope.get("root_path", "")
        page = PAGE.format(title=app.title, assets=f"{root}{ASSETS}", root=root)
        return HTMLResponse(page)

    @router.get("/docs/init.js")
    def init_js(request: Request) -> Response:
        """Start Swagger UI on this app's OpenAPI schema."""
        config = {
            "url": f"{request.scope.get('root_path', '')}{app.openapi_url}",
            "dom_id": "#swagger-ui",
            "layout": "BaseLayout",
            "deepLinking": True,
            "showExtensions": True,
            "showCommonExtensions": True,
            "validatorUrl": None,  # never ask an outside validator about the schema
        }
        script = (
            f"window.ui = SwaggerUIBundle(Object.assign({json.dumps(config)}, {{\n"
            "  presets: [\n"
            "    SwaggerUIBundle.presets.apis,\n"
            "    SwaggerUIBundle.SwaggerUIStandalonePreset,\n"
            "  ],\n"
            "}));\n"
        )
        return Response(script, media_type="text/javascript")

    app.include_router(router)
    app.mount(ASSETS, StaticFiles(directory=assets), name="docs-assets")
