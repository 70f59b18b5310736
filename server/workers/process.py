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
from server.workers.channel import RETRY_AFTER_S, Channel, JobServer
from server.workers.context import WorkerContext
from server.workers.pinned import PinnedWorker

log = logging.getLogger("playground.worker")


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

    def alive(self) -> bool:
        return self.process is not None and self.process.is_alive()

    def stats(self) -> dict[str, Any]:
        return {"pid": self.pid, **super().stats()}  # the process's own answer has its pid

    def close(self) -> None:
        self.stop()
        if self.process is not None:
            self.process.join(10)
            if self.process.is_alive():
                self.process.kill()
                self.process.join(5)
        if self.conn is not None:
            self.conn.close()


class ProcessWorker(PinnedWorker):
    """N worker processes; a workspace's jobs always go to the same one."""

    def __init__(self, settings: Settings, store: SqlStore, device: torch.device) -> None:
        if store.url.startswith("sqlite") and (":memory:" in store.url or store.url == "sqlite://"):
            raise RuntimeError("PLAYGROUND_WORKERS > 1 needs a database file, not :memory:")
        slots = [Slot(i, settings, store) for i in range(settings.workers)]
        super().__init__(settings, device, slots)

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
