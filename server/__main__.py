"""``python -m server``: start uvicorn with the PLAYGROUND_* settings."""

from __future__ import annotations

import uvicorn

from server.app import create_app
from server.settings import Settings


def main(settings: Settings | None = None) -> None:
    settings = settings or Settings()
    app = create_app(settings)
    print(f"PyTorch Model Playground on http://{settings.host}:{settings.port}", flush=True)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=settings.access_log,
    )


if __name__ == "__main__":
    main()
