"""The app factory: settings, worker, store, error handlers, one router per resource."""

from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path

import torch
from fastapi import FastAPI

from server import errors, logs, openapi, request_id, security
from server import metrics as app_metrics
from server.housekeeping import Housekeeper
from server.middleware import BodyGuard
from server.readiness import Readiness
from server.routers import (
    datasets,
    docs,
    health,
    library,
    metrics,
    models,
    pages,
    parameters,
    runs,
    trainings,
    workspaces,
)
from server.settings import Settings
from server.state import AppState
from server.store import SqlStore
from server.trainings import Side, TrainingManager
from server.uploads import UploadSlots
from server.worker import make_worker

ROOT = Path(__file__).resolve().parent.parent


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the playground app; nothing global, so tests can make as many as they like."""
    settings = settings or Settings()
    logs.setup_logging(settings.log_level, settings.log_format)
    if settings.torch_threads:
        torch.set_num_threads(settings.torch_threads)
    store = SqlStore(settings.db_url())
    worker = make_worker(settings, store)
    housekeeper = Housekeeper(store, worker, settings)
    store.trainings.interrupt_all()  # what ran when the last server stopped
    manager = TrainingManager(
        worker, Side(store, settings.data_roots()), settings.training_slice_ms
    )
    uploads = UploadSlots(settings.max_concurrent_uploads)
    state = AppState(settings, settings.limits(), store, worker, manager, uploads)
    readiness = Readiness()  # /healthz says "starting" until torch is warm

    @asynccontextmanager
    async def lifespan(started: FastAPI):
        readiness.start(started)
        housekeeper.start()
        yield
        await manager.close()
        await housekeeper.stop()
        await worker.close()
        store.close()

    app = FastAPI(
        title="PyTorch Model Playground",
        version="0.1.0",
        description="Assemble PyTorch models from layers, inspect them, probe every layer.",
        lifespan=lifespan,
        docs_url=None,  # served by routers/docs.py: offline, no inline script
        redoc_url=None,
    )
    app.state.playground = state
    app.state.readiness = readiness
    errors.install(app)
    app.add_middleware(
        BodyGuard,
        max_json=settings.max_body_bytes,
        max_upload=settings.max_upload_bytes,
        max_depth=settings.max_json_depth,
        timeout=settings.request_timeout_seconds,
    )
    from server.compression import GzipJson  # JSON answers above one TCP segment

    app.add_middleware(GzipJson)
    from server.routers import conv_hand, dataset_points, effects  # lab, training view

    routers = (workspaces, library, models, runs, parameters, trainings, datasets, health, effects)
    routers += (conv_hand, dataset_points)
    for router in routers:
        app.include_router(router.router)
    from server.routers import attributions  # why did it predict that? (issue 13)

    app.include_router(attributions.router)
    pages.mount(app, ROOT)
    docs.mount(app)
    if settings.metrics:
        app_metrics.install(app, state)
        app.include_router(metrics.router)
    security.install(app, settings)  # rate limit, CORS, security headers (outermost)
    openapi.install(app)  # the document states what the validation does
    request_id.install(app)  # around everything: even a bug's 500 carries the id
    return app
