"""``PLAYGROUND_WORKERS=N``: N worker processes, each workspace pinned to one of them.

Each worker process (``multiprocessing``'s spawn: a fresh interpreter) has its own torch
threads, its own live models and its own store connection; jobs reach it as the pickled
messages of ``server.ops.messages`` and ``server.training_jobs`` over a pipe (our own
messages only: a user's bytes are never unpickled, they travel inside them as bytes or
validated fields) and their plain-data results come back the same way (both ends of the pipe:
``server.workers.channel``, shared with the Ray actors' connections). A workspace goes to
the worker that rendezvous hashing on its id picks, so its models stay warm there.

A worker process that dies (kill -9, out of memory) is started again at once; the jobs it
held are answered 503 ``worker_lost`` with ``Retry-After``. What it acknowledged is in the
store already (a change is saved inside its job), and the next job builds from there. The
server process keeps the record cache (``server.record_cache``): each answer names the
models its job saved and the cache forgets them, so a record a route reads is never newer
in the cache than in the database, and at worst older (the worker builds the newest).
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import logging
import multiprocessing
import os
import signal
import time
from multiprocessing.connection import Connection
from typing import Any

import torch

from server.settings import Settings
from server.store import SqlStore
from server.worker import Validator, Worker
from server.workers.channel import RETRY_AFTER_S, Channel, JobServer
from server.workers.context import WorkerContext

log = logging.getLogger("playground.worker")


def rendezvous(workspace_id: str, slots: int) -> int:
    """The slot with the highest hash of (slot, workspace): stable, and when the number of
    slots changes only the workspaces of the slots added or removed move."""

    def score(slot: int) -> bytes:
        return hashlib.blake2b(f"{slot}:{workspace_id}".encode(), digest_size=8).digest()

    return max(range(slots), key=score)


class Slot(Channel):
    """The server's side of one worker process: its pipe, its jobs in flight, its restarts."""

    def __init__(self, index: int, settings: Settings, store: SqlStore) -> None:
        super().__init__(index, settings.job_queue_size, store)
        self.settings = settings
        self.pid: int | None = None
        self.started_at = 0.0
        self.process: multiprocessing.process.BaseProcess | None = None
        self._start()
        self._sender.start()

    def _start(self) -> None:  # under lock, or before any job
        ctx = multiprocessing.get_context("spawn")
        mine, theirs = ctx.Pipe(duplex=True)
        process = ctx.Process(
            target=child_main,
            args=(theirs, self.settings, self.index),
            name=f"playground-worker-{self.index}",
            daemon=True,
        )
        process.start()
        theirs.close()  # the child's end: its death closes the pipe for our reader
        self.conn, self.process, self.pid = mine, process, process.pid
        self.started_at = time.monotonic()
        self._listen(mine)

    def _recover(self) -> None:
        code = None
        if self.process is not None:
            self.process.join(1)
            code = self.process.exitcode
        if self.closing:
            return
        log.error(
            "worker process %d (pid %s) died (exit code %s); restarting it",
            self.index,
            self.pid,
            code,
        )
        if time.monotonic() - self.started_at < 10:  # dying at start: not in a tight loop
            time.sleep(RETRY_AFTER_S)
        with self.lock:
            if not self.closing:
                self.restarts += 1
                self._start()

    def stats(self) -> dict[str, Any]:
        alive = self.process is not None and self.process.is_alive()
        return {
            "index": self.index,
            "pid": self.pid,
            "alive": alive,
            "restarts": self.restarts,
            "jobs_queued": self.queued(),
            "jobs_done": self.jobs_done,
            "jobs_refused": self.jobs_refused,
            **self.worker_stats,
        }

    def close(self) -> None:
        self.stop()
        if self.process is not None:
            self.process.join(10)
            if self.process.is_alive():
                self.process.kill()
                self.process.join(5)
        if self.conn is not None:
            self.conn.close()


class ProcessWorker(Worker):
    """N worker processes; a workspace's jobs always go to the same one."""

    def __init__(self, settings: Settings, store: SqlStore, device: torch.device) -> None:
        if store.url.startswith("sqlite") and (":memory:" in store.url or store.url == "sqlite://"):
            raise RuntimeError("PLAYGROUND_WORKERS > 1 needs a database file, not :memory:")
        self.device = device
        self.settings = settings
        self.queue_size = settings.job_queue_size
        self.slots = [Slot(i, settings, store) for i in range(settings.workers)]
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
        """Asks every worker process to unload; they count it in their own stats."""
        for slot in self.slots:
            slot.control("unload_idle", seconds)
        return 0

    def stats(self) -> dict[str, Any]:
        workers = [slot.stats() for slot in self.slots]
        return {
            "device": str(self.device),
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

    async def close(self) -> None:
        self._validator.close()
        await asyncio.gather(*(asyncio.to_thread(slot.close) for slot in self.slots))


# -- the worker process ---------------------------------------------------------------------
def child_main(conn: Connection, settings: Settings, index: int) -> None:
    """A worker process: receive messages, run them one at a time, answer each."""
    from server import logs
    from server.worker import pick_device

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the server, which stops us
    logs.setup_logging(settings.log_level, settings.log_format)
    if settings.torch_threads:
        torch.set_num_threads(settings.torch_threads)
    store = SqlStore(settings.db_url(), cache_records=False)  # the server's cache is the one
    ctx = WorkerContext(
        pick_device(settings.device), settings.limits(), settings.model_cache_bytes, store, settings
    )
    ctx.report_commits = True
    server = JobServer(ctx, index, {"pid": os.getpid()}, warm=True)
    try:
        server.serve(conn)
    finally:
        server.close()
        store.close()
