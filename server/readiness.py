"""Readiness: the server warms up in the background and says "starting" until then.

``models.warmup.warm_up`` pays torch's one-time costs (the FLOP counter's imports, a first
inference of every preset, a first probe) so that no student's first request does. Then
:func:`warm_routes` sends every preset's spec to ``/api/validate`` through the app itself
(in-process ASGI calls, no socket, marked in their scope so that no client's rate limit
pays for them): the first call of a route costs FastAPI and pydantic about 2 ms more than
the next ones, and each preset's verdict is then remembered (``server/verdicts.py``), so a
student opening a preset gets the answer at once. While this runs, ``/healthz`` answers
503 with ``Retry-After`` and ``"status": "starting"``: a readiness probe (a load balancer,
Docker's HEALTHCHECK, ``server.child.ChildServer``) sees the server as not ready yet, and a
request sent anyway is still served, only slower. A warm-up that fails is logged and the
server becomes ready all the same.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading

from models import warmup
from models.presets import PRESETS
from server.security import WARM_UP_KEY

log = logging.getLogger("playground")


async def post_json(app, path: str, body: dict) -> int:
    """``POST path`` with a JSON ``body`` through the ASGI ``app``; the answer's status."""
    data = json.dumps(body).encode()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"warm-up"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(data)).encode()),
        ],
        "client": None,
        "server": None,
        WARM_UP_KEY: True,
    }
    sent = False
    status = 0

    async def receive() -> dict:
        nonlocal sent
        if sent:  # the body was read: the client stays until the answer is out
            await asyncio.Event().wait()
        sent = True
        return {"type": "http.request", "body": data, "more_body": False}

    async def send(message: dict) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def warm_routes(app) -> None:
    """``POST /api/validate`` of every preset, through ``app`` in-process."""
    for name, preset in PRESETS.items():
        status = await post_json(app, "/api/validate", {"spec": preset.spec})
        if status == 413:  # a preset beyond this server's limits (a teacher's choice)
            log.info("warm-up: preset %s is over this server's limits", name)
        elif status != 200:
            log.warning("warm-up: validating preset %s answered %d", name, status)


class Readiness:
    """The warm-up thread of one app (a process warms torch up once: an app started in a warm
    process is ready at once)."""

    def __init__(self) -> None:
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def ready(self) -> bool:
        return self._done.is_set() or (self._thread is None and warmup.is_warm())

    def start(self, app=None) -> None:
        """Warm up in a daemon thread (nothing to do when this process is already warm);
        with ``app``, from within its event loop, its routes too."""
        if self.ready or self._thread is not None:
            return
        loop = asyncio.get_running_loop() if app is not None else None
        self._thread = threading.Thread(
            target=self._run, args=(app, loop), name="warm-up", daemon=True
        )
        self._thread.start()

    def _run(self, app, loop: asyncio.AbstractEventLoop | None) -> None:
        try:
            warmup.warm_up()
            if app is not None and loop is not None and not loop.is_closed():
                asyncio.run_coroutine_threadsafe(warm_routes(app), loop).result(timeout=60)
        except Exception:  # a bug to log; serving cold is better than never being ready
            if loop is None or not loop.is_closed():  # not a server already gone
                log.exception("warming up failed; serving without it")
        finally:
            self._done.set()
