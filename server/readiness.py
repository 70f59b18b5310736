"""Readiness: the server warms torch up in the background and says "starting" until then.

``models.warmup.warm_up`` pays torch's one-time costs (the FLOP counter's imports, a first
inference of every preset, a first probe) so that no student's first request does. While it
runs, ``/healthz`` answers 503 with ``Retry-After`` and ``"status": "starting"``: a
readiness probe (a load balancer, Docker's HEALTHCHECK, ``server.child.ChildServer``) sees
the server as not ready yet, and a request sent anyway is still served, only slower. A
warm-up that fails is logged and the server becomes ready all the same.
"""

from __future__ import annotations

import logging
import threading

from models import warmup

log = logging.getLogger("playground")


class Readiness:
    """The warm-up thread of one app (a process warms up once: later apps are ready at once)."""

    def __init__(self) -> None:
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def ready(self) -> bool:
        return self._done.is_set() or warmup.is_warm()

    def start(self) -> None:
        """Warm up in a daemon thread (nothing to do when this process is already warm)."""
        if self.ready or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="warm-up", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            warmup.warm_up()
        except Exception:  # a bug to log; serving cold is better than never being ready
            log.exception("warming up failed; serving without it")
        finally:
            self._done.set()
