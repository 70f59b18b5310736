"""``python -m server``: start uvicorn with the PLAYGROUND_* settings."""

from __future__ import annotations

import uvicorn
from fastapi import FastAPI

from server.app import create_app
from server.http11 import protocol
from server.settings import Settings


def config(app: FastAPI, settings: Settings) -> uvicorn.Config:
    """uvicorn's configuration for the app: what ``python -m server`` runs, and the tests'
    live servers too."""
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=settings.access_log,
        # The app trusts X-Forwarded-For only from PLAYGROUND_FORWARDED_ALLOW_IPS
        # (server/security.py); uvicorn's own default would trust it from 127.0.0.1.
        proxy_headers=False,
        forwarded_allow_ips="",
        # JSON 400s with the security headers, and a deadline for each request's headers
        http=protocol(settings.request_timeout_seconds),
    )


def main(settings: Settings | None = None) -> None:
    settings = settings or Settings()
    app = create_app(settings)
    print(f"PyTorch Model Playground on http://{settings.host}:{settings.port}", flush=True)
    uvicorn.Server(config(app, settings)).run()


if __name__ == "__main__":
    main()
