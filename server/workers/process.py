"""``PLAYGROUND_WORKERS=N``: N worker processes, each workspace pinned to one of them.

Each worker process (``multiprocessing``'s spawn: a fresh interpreter) has its own torch
threads, its own live models and its own store connection; jobs reach it as the pickled
messages of ``server.ops.messages`` and ``server.training_jobs`` over a pipe (our own
messages only: a user's bytes are never unpickled, they travel inside them as bytes or
validated fields) and their plain-data results come back the same way. A workspace goes to
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
import queue
import signal
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

import torch

from models.errors import SpecError
from server.settings import Settings
from server.store import SqlStore
from server.worker import Validator, Worker, WorkerLost, full_queue
from server.workers.context import WorkerContext
from server.workers.wire import for_the_wire, pack_error, unpack_error

log = logging.getLogger("playground.worker")
RETRY_AFTER_S = 2  # a worker process restarts in about this long (importing torch)


def rendezvous(workspace_id: str, slots: int) -> int:
    """The slot with the highest hash of (slot, workspace): stable, and when the number of
    slots changes only the workspaces of the slots added or removed move."""

    def score(slot: int) -> bytes:
        return hashlib.blake2b(f"{slot}:{workspace_id}".encode(), digest_size=8).digest()

    return max(range(slots), key=score)


def lost(index: int) -> WorkerLost:
    return WorkerLost(
        "worker_lost",
        f"Worker process {index} stopped while running this request (it is being restarted); "
        f"a change it made may or may not be saved (read it back before repeating an edit). "
        f"Try again in {RETRY_AFTER_S} s.",
        RETRY_AFTER_S,
    )


class Slot:
    """The server's side of one worker process: its pipe, its jobs in flight, its restarts."""

    def __init__(self, index: int, settings: Settings, store: SqlStore) -> None:
        self.index = index
        self.settings = settings
        self.store = store  # the server's: its record cache forgets what the worker saved
        self.queue_size = settings.job_queue_size
        self.pending: dict[int, tuple[asyncio.AbstractEventLoop, asyncio.Future]] = {}
        self.lock = threading.Lock()
        self.outbox: queue.SimpleQueue[tuple | None] = queue.SimpleQueue()
        self.ids = itertools.count(1)
        self.closing = False
        self.restarts = 0
        self.jobs_done = 0
        self.jobs_refused = 0
        self.worker_stats: dict[str, Any] = {}
        self.pid: int | None = None
        self.started_at = 0.0
        self.conn: Connection | None = None  # None while it restarts: jobs get 503
        self.process: multiprocessing.process.BaseProcess | None = None
        self._start()
        threading.Thread(target=self._send_loop, name=f"worker{index}-send", daemon=True).start()

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
        threading.Thread(
            target=self._read_loop, args=(mine,), name=f"worker{self.index}-read", daemon=True
        ).start()

    # -- jobs ----------------------------------------------------------------------------------
    async def submit(self, msg: Any) -> Any:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        with self.lock:
            if self.conn is None:
                raise lost(self.index)
            waiting = max(len(self.pending) - 1, 0)
            if waiting >= self.queue_size:
                self.jobs_refused += 1
                raise full_queue(f"worker {self.index}", waiting, RETRY_AFTER_S)
            job_id = next(self.ids)
            self.pending[job_id] = (loop, future)
        self.outbox.put((job_id, msg))  # pickled and sent off the event loop
        return await future

    def control(self, *command: Any) -> None:
        self.outbox.put(("control", *command))

    def _send_loop(self) -> None:
        while True:
            item = self.outbox.get()
            if item is None:
                return
            with self.lock:
                if item[0] != "control" and item[0] not in self.pending:
                    continue  # failed meanwhile (the process died)
                conn = self.conn
            try:
                conn.send(item)  # type: ignore[union-attr]
            except (OSError, ValueError, AttributeError):
                pass  # the reader sees the process gone and answers its jobs
            except Exception as exc:  # a message that cannot be pickled: a bug
                self._answer(item[0], False, {"bug": repr(exc)})

    def _read_loop(self, conn: Connection) -> None:
        while True:
            try:
                job_id, ok, payload, committed, stats = conn.recv()
            except (EOFError, OSError):
                break
            for workspace_id, model_id in committed:  # before the client hears of it
                self.store.records.committed(workspace_id, model_id, None)
            self.worker_stats = stats
            if job_id:
                self.jobs_done += 1
                self._answer(job_id, ok, payload)
        self._died(conn)

    def _answer(self, job_id: int, ok: bool, payload: Any) -> None:
        with self.lock:
            held = self.pending.pop(job_id, None)
        if held is None:
            return
        loop, future = held
        loop.call_soon_threadsafe(_settle, future, ok, payload)

    def _died(self, conn: Connection) -> None:
        with self.lock:
            if conn is not self.conn:
                return
            failed, self.pending, self.conn = self.pending, {}, None
        for loop, future in failed.values():
            loop.call_soon_threadsafe(_fail, future, lost(self.index))
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
        with self.lock:
            jobs = len(self.pending)
        alive = self.process is not None and self.process.is_alive()
        return {
            "index": self.index,
            "pid": self.pid,
            "alive": alive,
            "restarts": self.restarts,
            "jobs_queued": jobs,
            "jobs_done": self.jobs_done,
            "jobs_refused": self.jobs_refused,
            **self.worker_stats,
        }

    def close(self) -> None:
        with self.lock:
            self.closing = True
        self.outbox.put(("control", "stop"))
        self.outbox.put(None)
        if self.process is not None:
            self.process.join(10)
            if self.process.is_alive():
                self.process.kill()
                self.process.join(5)
        if self.conn is not None:
            self.conn.close()


def _settle(future: asyncio.Future, ok: bool, payload: Any) -> None:
    if future.done():  # its request went away
        return
    if ok:
        future.set_result(payload)
    else:
        future.set_exception(unpack_error(payload))


def _fail(future: asyncio.Future, exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)


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
    from models import warmup
    from server import logs
    from server.ops import handle
    from server.worker import pick_device, translated

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the server, which stops us
    logs.setup_logging(settings.log_level, settings.log_format)
    if settings.torch_threads:
        torch.set_num_threads(settings.torch_threads)
    store = SqlStore(settings.db_url(), cache_records=False)  # the server's cache is the one
    ctx = WorkerContext(
        pick_device(settings.device), settings.limits(), settings.model_cache_bytes, store, settings
    )
    ctx.report_commits = True
    jobs: queue.SimpleQueue[tuple[int, Any] | None] = queue.SimpleQueue()
    send_lock = threading.Lock()

    def answer(job_id: int, ok: bool, payload: Any) -> None:
        reply = (job_id, ok, payload, ctx.take_committed(), {**ctx.stats(), "pid": os.getpid()})
        with send_lock:
            conn.send(reply)

    def run_jobs() -> None:
        try:  # torch's one-time costs, before the first job rather than inside it
            warmup.warm_up()
        except Exception:
            log.exception("worker %d: warming up failed; serving without it", index)
        while (item := jobs.get()) is not None:
            job_id, msg = item
            try:
                result = for_the_wire(msg, translated(ctx, handle, ctx, msg))
            except SpecError as exc:
                answer(job_id, False, pack_error(exc))
            except Exception as exc:
                log.exception("worker %d: job %s failed", index, type(msg).__name__)
                answer(job_id, False, {"bug": f"{type(exc).__name__}: {exc}"})
            else:
                answer(job_id, True, result)

    runner = threading.Thread(target=run_jobs, name=f"torch-{ctx.device}", daemon=True)
    runner.start()
    answer(0, True, None)  # ready: the server learns this worker's stats
    try:
        while True:
            try:
                item = conn.recv()
            except (EOFError, OSError):
                break
            if item[0] != "control":
                jobs.put(item)
            elif item[1] == "forget":
                ctx.forget(item[2])
            elif item[1] == "unload_idle":
                ctx.unload_idle(item[2])
            elif item[1] == "stop":
                break
    finally:
        jobs.put(None)
        runner.join(30)
        store.close()
