"""The browser pages: Jinja2 shells and the static files (ES modules, CSS, vendored Plotly)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

router = APIRouter(include_in_schema=False)


def mount(app: FastAPI, root: Path) -> None:
    templates = Jinja2Templates(directory=root / "templates")

    @router.get("/", response_class=HTMLResponse)
    def index(request: Request) -> HTMLResponse:
        return templates.TemplateResponse(request, "index.html", {})

    app.include_router(router)
    app.mount("/static", StaticFiles(directory=root / "static"), name="static")
