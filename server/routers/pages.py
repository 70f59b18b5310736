"""The browser pages: Jinja2 shells and the static files (ES modules, CSS, vendored Plotly)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from models.presets import PRESETS
from server.js_bundle import BundleCache
from server.module_graph import module_graph

BUNDLE = "/bundle/playground.js"  # the playground's modules as one (server/js_bundle.py)
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
    bundle = BundleCache(root / "static" / "js", "playground.js")

    @router.get("/", response_class=HTMLResponse)
    def index(request: Request) -> HTMLResponse:
        """The start page: the tutorial's sections as cards."""
        return templates.TemplateResponse(request, "index.html", {"presets": PRESETS})

    @router.get("/playground", response_class=HTMLResponse)
    def playground(request: Request, bundle: bool = True) -> HTMLResponse:
        """The builder, inspector and run view; its whole state lives in the URL hash.
        ``?bundle=0`` loads its ES modules one by one (for debugging), else as one file."""
        if bundle:
            context = {"entry": BUNDLE, "preload": (BUNDLE,)}
        else:  # each preloaded at once: the list is read from the imports
            modules = module_graph(root / "static" / "js", "playground.js")
            preload = tuple(f"/static/js/{m}" for m in modules)
            context = {"entry": "/static/js/playground.js", "preload": preload}
        return templates.TemplateResponse(request, "playground.html", context)

    @router.get(BUNDLE)
    def playground_bundle(request: Request) -> Response:
        """The playground's ES modules as one module; revalidated by its ETag, gzipped when
        the client takes it (built once per change of its files: server/js_bundle.py)."""
        b = bundle.get()
        zipped = "gzip" in request.headers.get("accept-encoding", "").lower()
        etag = b.etag[:-1] + '-gzip"' if zipped else b.etag  # one per representation
        headers = {"ETag": etag, "Cache-Control": "no-cache", "Vary": "Accept-Encoding"}
        if zipped:
            headers["Content-Encoding"] = "gzip"
        match = request.headers.get("if-none-match", "")
        if etag in match or match.strip() == "*":
            return Response(status_code=304, headers=headers)
        body = b.gzipped if zipped else b.body
        return Response(body, media_type="text/javascript; charset=utf-8", headers=headers)

    @router.get("/effects", response_class=HTMLResponse)
    def effects(request: Request) -> HTMLResponse:
        """The effects lab: pooling, normalization, dropout, activations, losses, Linear."""
        return templates.TemplateResponse(request, "effects.html", {})

    app.include_router(router)
    app.mount("/static", StaticFiles(directory=root / "static"), name="static")
