"""Periodic upkeep: idle models leave memory, unused workspaces go, last_used is written.

One asyncio task, started and stopped by the app's lifespan. Each tick runs in a thread,
so the store's writes never hold up the event loop:

- the workspaces' pending ``last_used`` marks are written in one transaction;
- live models untouched for ``idle_unload_seconds`` leave the worker's memory (they come
  back from the store on their next job); 0 turns this off;
- workspaces unused for ``workspace_ttl_days`` days are deleted with their models; 0 (the
  default) turns this off.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from server.settings import Settings
from server.store import SqlStore
from server.worker import Worker

log = logging.getLogger("playground.housekeeping")
DAY_S = 86_400.0
EVERY_S = 30.0


class Housekeeper:
    """Runs :meth:`tick` every ``every`` seconds (at most half the idle-unload time)."""

    def __init__(
        self, store: SqlStore, worker: Worker, settings: Settings, every: float = EVERY_S
    ) -> None:
        self.store = store
        self.worker = worker
        self.idle_seconds = settings.idle_unload_seconds
        self.ttl_days = settings.workspace_ttl_days
        if self.idle_seconds:
            every = min(every, max(self.idle_seconds / 2, 1.0))
        self.every = every
        self._task: asyncio.Task[None] | None = None

    def tick(self, now: float | None = None) -> dict[str, int]:
        """One round of upkeep; what it did."""
        now = time.time() if now is None else now
        done = {"usage_written": self.store.flush_usage(), "unloaded": 0, "workspaces_deleted": 0}
        if self.idle_seconds:
            done["unloaded"] = self.worker.unload_idle(self.idle_seconds)
        if self.ttl_days:
            gone, model_ids = self.store.delete_unused_workspaces(now - self.ttl_days * DAY_S)
            for model_id in model_ids:
                self.worker.forget(model_id)
            done["workspaces_deleted"] = gone
            if gone:
                log.info("deleted %d unused workspaces and %d models", gone, len(model_ids))
        return done

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            try:
                await asyncio.to_thread(self.tick)
            except Exception:  # a failed round is logged; the next one tries again
                log.exception("housekeeping round failed")

    def start(self) -> None:
        """Start the periodic task on the running event loop."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Stop the periodic task (a round already in its thread finishes on its own)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
