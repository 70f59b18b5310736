"""``PLAYGROUND_WORKER=ray``: the jobs run on Ray actors, each workspace pinned to one.

One actor per GPU of the cluster (``PLAYGROUND_RAY_NUM_GPUS`` each, fractions allowed), or one
per CPU slot on a cluster without GPUs, or ``PLAYGROUND_WORKERS`` of them when that is set above
1. Each actor holds a :class:`server.workers.context.WorkerContext` (its live models, its own
store connection) and runs the same messages as a worker process, one at a time, with the same
pinning (rendezvous hashing on the workspace id) and the same bounded queue per actor (503
``busy`` beyond it). Across machines the store must be shared: PostgreSQL
(``PLAYGROUND_DATABASE_URL``); SQLite means one machine.

Ray places the actors (``num_gpus``), restarts one that dies and is the cluster; the jobs do
not go through Ray's calls (a millisecond or two of its RPC machinery on each side of every
job) but over a direct connection (``server.workers.direct``): each actor listens on its node's
address on a free port, the server asks it for that address once (``address``) and connects,
proving the key it made (32 random bytes, in the actor's constructor arguments) before a byte
is unpickled. The connection carries the framing and answers of a worker process's pipe
(``server.workers.channel``: the same send and read threads on the server, the same job loop
on the actor). So the server must reach every Ray node on any TCP port, as Ray itself does.

An actor that dies drops its connection: the jobs it held are answered 503 ``worker_lost``
with ``Retry-After`` and the next job builds from the store (what was acknowledged is saved:
a change is saved inside its job). The server then waits for Ray's restart of the actor
(asking the restarted actor, which listens anew, for its address) and connects again; a job
arriving meanwhile gets the same 503 at once, as while a worker process restarts, rather than
waiting an unknown time. The server starts once every actor answers on its connection
(:data:`START_S` at most: a cluster without the resources for them is an error at start).

``PLAYGROUND_RAY_ADDRESS=auto`` starts a local Ray with the server (or joins the one this
process already started); any other value is an existing cluster's address.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import secrets
import threading
from multiprocessing import AuthenticationError
from typing import Any

import ray
import torch
from ray.exceptions import GetTimeoutError

from server.ops.messages import WeightsIn
from server.settings import Settings
from server.store import SqlStore
from server.workers.channel import Channel, JobServer
from server.workers.context import WorkerContext
from server.workers.direct import JobListener, dial
from server.workers.pinned import PinnedWorker

log = logging.getLogger("playground.worker")
START_S = 300  # for every actor to be placed, started and listening


class JobActor:
    """The worker side on a Ray actor: listens for the server and runs its jobs one at a time."""

    def __init__(self, settings: Settings, index: int, key: bytes) -> None:
        from models import warmup
        from server import logs
        from server.worker import pick_device

        logs.setup_logging(settings.log_level, settings.log_format)
        if settings.torch_threads:
            torch.set_num_threads(settings.torch_threads)
        device = pick_device("cuda" if ray.get_gpu_ids() else settings.device)
        store = SqlStore(settings.db_url(), cache_records=False)
        ctx = WorkerContext(device, settings.limits(), settings.model_cache_bytes, store, settings)
        ctx.report_commits = True
        try:  # torch's one-time costs, while the actor starts rather than in its first job
            warmup.warm_up()
        except Exception:
            log.exception("actor %d: warming up failed; serving without it", index)
        where = {"pid": os.getpid(), "node": ray.get_runtime_context().get_node_id()}
        self.server = JobServer(ctx, index, where, warm=False)
        self.listener = JobListener(ray.util.get_node_ip_address(), key, self.server.serve)

    def address(self) -> tuple[str, int]:
        """Where the server connects (a restarted actor listens on a new port)."""
        return self.listener.address


class ActorSlot(Channel):
    """The server's side of one actor: its direct connection, its jobs in flight."""

    what = "Ray actor"

    def __init__(self, index: int, actor: Any, key: bytes, settings: Settings, store: SqlStore):
        super().__init__(index, settings.job_queue_size, store)
        self.actor = actor
        self.key = key
        self.gone = threading.Event()  # set on close: the reconnection stops waiting

    def connect(self, address: tuple[str, int]) -> None:
        """The first connection (before any job)."""
        self.conn = dial(address, self.key)
        self._listen(self.conn)
        self._sender.start()

    def _recover(self) -> None:
        """Wait for Ray's restart of the actor and connect to the new one (or to the same
        one, should only the connection have dropped)."""
        if self.closing:
            return
        log.error(
            "Ray actor %d (pid %s) stopped; waiting for Ray to restart it",
            self.index,
            self.worker_stats.get("pid"),
        )
        ref, said = None, False
        while not self.closing:
            try:
                if ref is None:
                    ref = self.actor.address.remote()
                conn = dial(ray.get(ref, timeout=1), self.key)
            except GetTimeoutError:
                continue  # still starting; the same call answers once it is up
            except Exception as exc:  # the call reached the dead actor, the port is gone …
                ref = None  # … ask again (Ray queues the call while it restarts the actor)
                if not said:
                    log.info("Ray actor %d not back yet: %r", self.index, exc)
                    said = True
                self.gone.wait(0.5)
                continue
            with self.lock:
                if not self.closing:
                    self.restarts += 1
                    self.conn = conn
                    self._listen(conn)
                    log.warning("Ray actor %d is back; connected again", self.index)
                    return
            conn.close()

    def close(self) -> None:
        self.gone.set()
        self.stop()


def reads_file(msg: Any) -> bool:
    """Does ``msg`` name a file on the server's disk (an upload) rather than carry it?"""
    return isinstance(msg, WeightsIn) and msg.data is None


def inlined(msg: Any) -> Any:
    """``msg`` as an actor on another machine can run it: an uploaded file's bytes travel in
    the message (over the actor's connection), not its path on the server's disk."""
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


class RayWorker(PinnedWorker):
    """The server's side: one :class:`ActorSlot` per actor."""

    backend = "ray"

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
        # no task events: Ray would report every call to its control store (the dashboard's
        # task list); the playground counts its own jobs in /healthz and /metrics
        remote = ray.remote(
            num_cpus=0 if per_gpu else 1,
            num_gpus=per_gpu,
            max_restarts=-1,
            enable_task_events=False,
        )
        key = secrets.token_bytes(32)  # only this server can connect to its actors
        self.actors = [remote(JobActor).remote(settings, i, key) for i in range(count)]
        slots = [ActorSlot(i, a, key, settings, store) for i, a in enumerate(self.actors)]
        super().__init__(settings, device, slots)  # validations on this process's device
        self.device = torch.device("cuda") if per_gpu else device  # the actors' (/healthz)
        try:
            addresses = ray.get([a.address.remote() for a in self.actors], timeout=START_S)
            for slot, address in zip(self.slots, addresses, strict=True):
                slot.connect(tuple(address))
        except BaseException as exc:
            self._abandon()
            if isinstance(exc, GetTimeoutError):
                raise RuntimeError(
                    f"{count} Ray actors did not start within {START_S} s: does the cluster "
                    f"have {per_gpu or 1} {'GPU' if per_gpu else 'CPU'} free for each?"
                ) from None
            if isinstance(exc, (OSError, AuthenticationError)):
                raise RuntimeError(
                    f"cannot connect to a Ray actor ({exc}): the server must reach every "
                    f"Ray node on any TCP port"
                ) from exc
            raise

    async def submit(self, msg: Any) -> Any:
        if reads_file(msg):  # a disk read: off the event loop (a run skips the thread hop)
            msg = await asyncio.to_thread(inlined, msg)
        return await super().submit(msg)

    def _abandon(self) -> None:
        """Stop the slots and the actors (and our local Ray); no restart, no reconnection."""
        for slot in self.slots:
            slot.close()
        for actor in self.actors:
            ray.kill(actor, no_restart=True)
        for slot in self.slots:
            slot.join()
        if self._started:
            ray.shutdown()

    async def close(self) -> None:
        self._validator.close()
        await asyncio.to_thread(self._abandon)
