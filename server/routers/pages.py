"""The browser pages: Jinja2 shells and the static files (ES modules, CSS, vendored Plotly)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from models.presets import PRESETS
from server.module_graph import module_graph

PACKAGED_UI = Path(__file__).resolve().parent.parent / "ui"  # where the wheel carries them


def ui_root(root: Path) -> Path:
    """The folder holding templates/ and static/: the repository's top (a checkout, an editable
    install), else the copy inside the installed package (a wheel: see setup.py)."""
    return root if (root / "templates").is_dir() else PACKAGED_UI


def mount(app: FastAPI, root: Path) -> None:
    """Serve the start page at /, the builder at /playground, the lab at /effects, /static."""
    root = ui_root(root)
    templates = Jinja2Templates(directory=root / "templates")
    router = APIRouter(include_in_schema=False)  # one per app: create_app may run many times

    @router.get("/", response_class=HTMLResponse)
    def index(request: Request) -> HTMLResponse:
        """The start page: the tutorial's sections as cards."""
        return templates.TemplateResponse(request, "index.html", {"presets": PRESETS})

    @router.get("/playground", response_class=HTMLResponse)
    def playground(request: Request) -> HTMLResponse:
        """The builder, inspector and run view; its whole state lives in the URL hash."""
        modules = module_graph(root / "static" / "js", "playground.js")  # modulepreload
        return templates.TemplateResponse(request, "playground.html", {"modules": modules})

    @router.get("/effects", response_class=HTMLResponse)
    def effects(request: Request) -> HTMLResponse:
        """The effects lab: pooling, normalization, dropout, activations, losses, Linear."""
        return templates.TemplateResponse(request, "effects.html", {})

    app.include_router(router)
    app.mount("/static", StaticFiles(directory=root / "static"), name="static")
