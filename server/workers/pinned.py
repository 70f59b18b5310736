"""The server's front of N workers reached over channels (``server.workers.channel``): worker
processes or Ray actors. A workspace's jobs always go to the same one (rendezvous hashing on
its id), so its models stay warm there; a job without a workspace goes to the next in turn.
Validations run in the server's own process (:class:`server.worker.Validator`)."""

from __future__ import annotations

import hashlib
import itertools
from typing import Any

import torch

from server.settings import Settings
from server.worker import Validator, Worker
from server.workers.channel import Channel
from server.workers.context import WorkerContext


def rendezvous(workspace_id: str, slots: int) -> int:
    """The slot with the highest hash of (slot, workspace): stable, and when the number of
    slots changes only the workspaces of the slots added or removed move."""

    def score(slot: int) -> bytes:
        return hashlib.blake2b(f"{slot}:{workspace_id}".encode(), digest_size=8).digest()

    return max(range(slots), key=score)


class PinnedWorker(Worker):
    """Jobs over ``slots`` (one :class:`Channel` per worker), each workspace pinned to one."""

    backend: str | None = None  # named in /healthz when set ("ray")

    def __init__(self, settings: Settings, device: torch.device, slots: list[Channel]) -> None:
        self.device = device
        self.settings = settings
        self.queue_size = settings.job_queue_size
        self.slots = slots
        self._ctx = WorkerContext(device, settings.limits(), 0, None, settings)  # validations
        self._validator = Validator(settings.validate_queue_size)
        self._turn = itertools.count()

    def slot_of(self, workspace_id: str) -> int:
        return rendezvous(workspace_id, len(self.slots))

    async def submit(self, msg: Any) -> Any:
        workspace_id = getattr(msg, "workspace_id", "")
        if workspace_id:
            slot = self.slots[self.slot_of(workspace_id)]
        else:  # no workspace (a dataset's sample, a training plan): the next in turn
            slot = self.slots[next(self._turn) % len(self.slots)]
        return await slot.submit(msg)

    async def call_anonymous(self, fn, *args):
        return await self._validator.call(self._ctx, fn, *args)

    def forget(self, model_id: str) -> None:
        for slot in self.slots:
            slot.control("forget", model_id)

    def unload_idle(self, seconds: float) -> int:
        """Asks every worker to unload; they count it in their own stats."""
        for slot in self.slots:
            slot.control("unload_idle", seconds)
        return 0

    def stats(self) -> dict[str, Any]:
        workers = [slot.stats() for slot in self.slots]
        return {
            "device": str(self.device),
            **({"backend": self.backend} if self.backend else {}),
            "processes": len(workers),
            "live_models": sum(w.get("live_models", 0) for w in workers),
            "live_bytes": sum(w.get("live_bytes", 0) for w in workers),
            "cache_bytes": self.settings.model_cache_bytes,
            "jobs_done": sum(w["jobs_done"] for w in workers),
            "jobs_queued": sum(w["jobs_queued"] for w in workers),
            "queue_size": self.queue_size,
            "jobs_refused": sum(w["jobs_refused"] for w in workers) + self._validator.refused,
            "validations_queued": self._validator.jobs,
            "workers": workers,
        }
