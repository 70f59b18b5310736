"""``PLAYGROUND_WORKER=ray``: the jobs run on Ray actors, each workspace pinned to one.

One actor per GPU of the cluster (``PLAYGROUND_RAY_NUM_GPUS`` each, fractions allowed), or one
per CPU slot on a cluster without GPUs, or ``PLAYGROUND_WORKERS`` of them when that is set above
1. Each actor holds a :class:`server.workers.context.WorkerContext` (its live models, its own
store connection) and runs the same messages as a worker process, one at a time, with the same
pinning (rendezvous hashing on the workspace id) and the same bounded queue per actor (503
``busy`` beyond it). Ray restarts an actor that dies; the jobs it held are answered 503
``worker_lost`` with ``Retry-After`` and the next job builds from the store. Across machines
the store must be shared: PostgreSQL (``PLAYGROUND_DATABASE_URL``); SQLite means one machine.

``PLAYGROUND_RAY_ADDRESS=auto`` starts a local Ray with the server (or joins the one this
process already started); any other value is an existing cluster's address.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import os
import threading
from typing import Any

import ray
import torch
from ray.exceptions import RayActorError

from models.errors import SpecError
from server.ops.messages import WeightsIn
from server.settings import Settings
from server.store import SqlStore
from server.worker import Validator, Worker, full_queue
from server.workers.context import WorkerContext
from server.workers.process import RETRY_AFTER_S, lost, rendezvous
from server.workers.wire import for_the_wire, pack_error, unpack_error

log = logging.getLogger("playground.worker")


class JobActor:
    """The worker side on a Ray actor: one job at a time (Ray's default for an actor)."""

    def __init__(self, settings: Settings, index: int) -> None:
        from models import warmup
        from server import logs
        from server.worker import pick_device

        logs.setup_logging(settings.log_level, settings.log_format)
        if settings.torch_threads:
            torch.set_num_threads(settings.torch_threads)
        device = pick_device("cuda" if ray.get_gpu_ids() else settings.device)
        store = SqlStore(settings.db_url(), cache_records=False)
        self.ctx = WorkerContext(
            device, settings.limits(), settings.model_cache_bytes, store, settings
        )
        self.ctx.report_commits = True
        self.index = index
        # asked once: each job's answer carries the stats, and the runtime context is not free
        self.where = {"pid": os.getpid(), "node": ray.get_runtime_context().get_node_id()}
        try:  # torch's one-time costs, while the actor starts rather than in its first job
            warmup.warm_up()
        except Exception:
            log.exception("actor %d: warming up failed; serving without it", index)

    def run(self, msg: Any) -> tuple[bool, Any, list, dict]:
        from server.ops import handle
        from server.worker import translated

        try:
            ok, out = True, for_the_wire(msg, translated(self.ctx, handle, self.ctx, msg))
        except SpecError as exc:
            ok, out = False, pack_error(exc)
        except Exception as exc:
            log.exception("actor %d: job %s failed", self.index, type(msg).__name__)
            ok, out = False, {"bug": f"{type(exc).__name__}: {exc}"}
        return ok, out, self.ctx.take_committed(), self.stats()

    def forget(self, model_id: str) -> None:
        self.ctx.forget(model_id)

    def unload_idle(self, seconds: float) -> int:
        return self.ctx.unload_idle(seconds)

    def stats(self) -> dict[str, Any]:
        return {**self.ctx.stats(), **self.where}


def reads_file(msg: Any) -> bool:
    """Does ``msg`` name a file on the server's disk (an upload) rather than carry it?"""
    return isinstance(msg, WeightsIn) and msg.data is None


def inlined(msg: Any) -> Any:
    """``msg`` as an actor on another machine can run it: an uploaded file's bytes travel in
    the message (Ray's object store carries them), not its path on the server's disk."""
    if reads_file(msg):
        with open(msg.path, "rb") as file:
            return dataclasses.replace(msg, path="", data=file.read())
    return msg


def connect(settings: Settings) -> bool:
    """Join Ray (starting a local one for ``auto``); whether this call started it."""
    if ray.is_initialized():
        return False
    if settings.ray_address == "auto":
        ray.init(
            num_cpus=settings.workers if settings.workers > 1 else None,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
        )
    else:
        ray.init(address=settings.ray_address, log_to_driver=False, configure_logging=False)
    return settings.ray_address == "auto"


class RayWorker(Worker):
    """The server's side: one handle per actor, a bounded count of jobs in flight on each."""

    def __init__(self, settings: Settings, store: SqlStore, device: torch.device) -> None:
        self._started = connect(settings)  # a local Ray of ours: shut down with the server
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0))
        per_gpu = settings.ray_num_gpus if gpus else 0
        count = (
            settings.workers
            if settings.workers > 1
            else (int(gpus / per_gpu) if per_gpu else max(int(resources.get("CPU", 1)), 1))
        )
        # no task events: Ray would report every job to its control store (the dashboard's
        # task list; Ray Serve turns them off for its replicas too); the playground counts its
        # own jobs in /healthz and /metrics
        remote = ray.remote(
            num_cpus=0 if per_gpu else 1,
            num_gpus=per_gpu,
            max_restarts=-1,
            enable_task_events=False,
        )
        self.device = torch.device("cuda") if per_gpu else device
        self.settings = settings
        self.store = store
        self.queue_size = settings.job_queue_size
        self.actors = [remote(JobActor).remote(settings, i) for i in range(count)]
        self.jobs = [0] * count
        self.done = [0] * count
        self.refused = [0] * count
        self.lost = [0] * count
        self.last: list[dict[str, Any]] = [{} for _ in range(count)]
        self._lock = threading.Lock()
        self._ctx = WorkerContext(device, settings.limits(), 0, None, settings)  # validations
        self._validator = Validator(settings.validate_queue_size)
        self._turn = itertools.count()

    def slot_of(self, workspace_id: str) -> int:
        return rendezvous(workspace_id, len(self.actors))

    async def submit(self, msg: Any) -> Any:
        workspace_id = getattr(msg, "workspace_id", "")
        i = self.slot_of(workspace_id) if workspace_id else next(self._turn) % len(self.actors)
        with self._lock:
            waiting = max(self.jobs[i] - 1, 0)
            if waiting >= self.queue_size:
                self.refused[i] += 1
                raise full_queue(f"actor {i}", waiting, RETRY_AFTER_S)
            self.jobs[i] += 1
        try:
            if reads_file(msg):  # a disk read: off the event loop (a run skips the thread hop)
                msg = await asyncio.to_thread(inlined, msg)
            ok, payload, committed, stats = await self.actors[i].run.remote(msg)
        except RayActorError:
            self.lost[i] += 1
            raise lost(i) from None
        finally:
            with self._lock:
                self.jobs[i] -= 1
        for ws_id, model_id in committed:  # before the client hears of it
            self.store.records.committed(ws_id, model_id, None)
        self.done[i] += 1
        self.last[i] = stats
        if not ok:
            raise unpack_error(payload)
        return payload

    async def call_anonymous(self, fn, *args):
        return await self._validator.call(self._ctx, fn, *args)

    def forget(self, model_id: str) -> None:
        for actor in self.actors:
            actor.forget.remote(model_id)

    def unload_idle(self, seconds: float) -> int:
        for actor in self.actors:
            actor.unload_idle.remote(seconds)
        return 0

    def stats(self) -> dict[str, Any]:
        with self._lock:
            workers = [
                {
                    "index": i,
                    "jobs_queued": self.jobs[i],
                    "jobs_done": self.done[i],
                    "jobs_refused": self.refused[i],
                    "jobs_lost": self.lost[i],
                    **self.last[i],
                }
                for i in range(len(self.actors))
            ]
        return {
            "device": str(self.device),
            "backend": "ray",
            "processes": len(workers),
            "live_models": sum(w.get("live_models", 0) for w in workers),
            "live_bytes": sum(w.get("live_bytes", 0) for w in workers),
            "cache_bytes": self.settings.model_cache_bytes,
            "jobs_done": sum(self.done),
            "jobs_queued": sum(self.jobs),
            "queue_size": self.queue_size,
            "jobs_refused": sum(self.refused) + self._validator.refused,
            "validations_queued": self._validator.jobs,
            "workers": workers,
        }

    async def close(self) -> None:
        self._validator.close()
        for actor in self.actors:
            ray.kill(actor, no_restart=True)
        if self._started:
            await asyncio.to_thread(ray.shutdown)
