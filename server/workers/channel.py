"""One connection between the server and a worker (a worker process or a Ray actor), both ends.

The server's end, :class:`Channel`: jobs in flight as futures by job id, a send thread that
pickles each message off the event loop, a read thread per connection that settles the
futures, and a bounded queue (503 ``busy`` beyond it). When the connection drops, every job
in flight is answered 503 ``worker_lost`` with ``Retry-After`` and the subclass brings a
worker back (:meth:`Channel._recover`: a new process, or Ray's restart of the actor).

The worker's end, :class:`JobServer`: one thread runs the jobs one at a time next to the
device; :meth:`JobServer.serve` reads one connection's messages (jobs and the ``forget`` /
``unload_idle`` / ``stop`` controls) and each job is answered on the connection it came on.

Framing, both ways (``multiprocessing.connection``, pickles of our own messages only): a job
is ``(job_id, msg)``, a control ``("control", name, *args)``; an answer is ``(job_id, ok,
payload, committed, stats)``, job id 0 being the worker's hello (its stats) on a new
connection.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import queue
import threading
from multiprocessing.connection import Connection
from typing import Any

from models.errors import SpecError
from server.store import SqlStore
from server.worker import WorkerLost, full_queue
from server.workers.context import WorkerContext
from server.workers.wire import for_the_wire, pack_error, unpack_error

log = logging.getLogger("playground.worker")
RETRY_AFTER_S = 2  # a worker process restarts in about this long (importing torch)


class Channel:
    """The server's side of one worker: its connection, its jobs in flight, its restarts.

    A subclass connects (:meth:`_start`, under ``lock`` or before any job: it sets ``conn``
    and calls :meth:`_listen`) and brings the worker back once the connection dropped
    (:meth:`_recover`, on the dead connection's read thread)."""

    what = "Worker process"  # in the 503 a job in flight gets

    def __init__(self, index: int, queue_size: int, store: SqlStore) -> None:
        self.index = index
        self.store = store  # the server's: its record cache forgets what the worker saved
        self.queue_size = queue_size
        self.pending: dict[int, tuple[asyncio.AbstractEventLoop, asyncio.Future]] = {}
        self.lock = threading.Lock()
        self.outbox: queue.SimpleQueue[tuple | None] = queue.SimpleQueue()
        self.ids = itertools.count(1)
        self.closing = False
        self.restarts = 0
        self.jobs_done = 0
        self.jobs_refused = 0
        self.jobs_lost = 0  # answered 503 when the connection dropped
        self.worker_stats: dict[str, Any] = {}
        self.conn: Connection | None = None  # None while it comes back: jobs get 503
        self._reader: threading.Thread | None = None
        self._sender = threading.Thread(
            target=self._send_loop, name=f"worker{index}-send", daemon=True
        )

    def lost(self) -> WorkerLost:
        return WorkerLost(
            "worker_lost",
            f"{self.what} {self.index} stopped while running this request (it is being "
            f"restarted); a change it made may or may not be saved (read it back before "
            f"repeating an edit). Try again in {RETRY_AFTER_S} s.",
            RETRY_AFTER_S,
        )

    def _listen(self, conn: Connection) -> None:
        """Read ``conn``'s answers on a thread of its own, until it drops."""
        self._reader = threading.Thread(
            target=self._read_loop, args=(conn,), name=f"worker{self.index}-read", daemon=True
        )
        self._reader.start()

    # -- jobs ----------------------------------------------------------------------------------
    async def submit(self, msg: Any) -> Any:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        with self.lock:
            if self.conn is None:
                raise self.lost()
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
                    continue  # failed meanwhile (the connection dropped)
                conn = self.conn
            try:
                conn.send(item)  # type: ignore[union-attr]
            except (OSError, ValueError, AttributeError):
                pass  # the reader sees the connection gone and answers its jobs
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
        self._dropped(conn)

    def _answer(self, job_id: int, ok: bool, payload: Any) -> None:
        with self.lock:
            held = self.pending.pop(job_id, None)
        if held is None:
            return
        loop, future = held
        loop.call_soon_threadsafe(_settle, future, ok, payload)

    def _dropped(self, conn: Connection) -> None:
        with self.lock:
            if conn is not self.conn:
                return
            failed, self.pending, self.conn = self.pending, {}, None
            self.jobs_lost += len(failed)
        # not closed here: the send thread may be writing to it (a closed descriptor's number
        # may be reused at once); it closes when the last reference goes
        for loop, future in failed.values():
            loop.call_soon_threadsafe(_fail, future, self.lost())
        self._recover()

    def _recover(self) -> None:
        raise NotImplementedError

    def queued(self) -> int:
        with self.lock:
            return len(self.pending)

    def alive(self) -> bool:
        return self.conn is not None

    def stats(self) -> dict[str, Any]:
        """This worker in /healthz: the server's counts, then the worker's last stats."""
        return {
            "index": self.index,
            "alive": self.alive(),
            "restarts": self.restarts,
            "jobs_queued": self.queued(),
            "jobs_done": self.jobs_done,
            "jobs_refused": self.jobs_refused,
            "jobs_lost": self.jobs_lost,
            **self.worker_stats,
        }

    def stop(self) -> None:
        """No more jobs or restarts; ask the worker to stop serving this connection."""
        with self.lock:
            self.closing = True
        self.outbox.put(("control", "stop"))
        self.outbox.put(None)
        if self._sender.ident is not None:  # started
            self._sender.join(10)

    def join(self, timeout: float = 10) -> None:
        """Wait for the read thread (and the recovery it runs) to end, after :meth:`stop`."""
        reader = self._reader
        if reader is not None and reader is not threading.current_thread():
            reader.join(timeout)


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


# -- the worker's end -------------------------------------------------------------------------
class JobServer:
    """Runs the jobs of every connection it serves one at a time, on one thread."""

    def __init__(self, ctx: WorkerContext, index: int, where: dict[str, Any], warm: bool) -> None:
        self.ctx = ctx
        self.index = index
        self.where = where  # pid (and node): in every answer's stats
        self.jobs: queue.SimpleQueue[tuple[Connection, threading.Lock, int, Any] | None] = (
            queue.SimpleQueue()
        )
        self.runner = threading.Thread(
            target=self._run_jobs, args=(warm,), name=f"torch-{ctx.device}", daemon=True
        )
        self.runner.start()

    def _answer(self, conn: Connection, lock: threading.Lock, job_id: int, ok: bool, out: Any):
        stats = {**self.ctx.stats(), **self.where}
        reply = (job_id, ok, out, self.ctx.take_committed(), stats)
        try:
            with lock:
                conn.send(reply)
        except (OSError, ValueError):
            pass  # the server went away; it answered this job's client 503 already

    def _run_jobs(self, warm: bool) -> None:
        from models import warmup
        from server.ops import handle
        from server.worker import translated

        if warm:
            try:  # torch's one-time costs, before the first job rather than inside it
                warmup.warm_up()
            except Exception:
                log.exception("worker %d: warming up failed; serving without it", self.index)
        while (item := self.jobs.get()) is not None:
            conn, lock, job_id, msg = item
            try:
                result = for_the_wire(msg, translated(self.ctx, handle, self.ctx, msg))
            except SpecError as exc:
                self._answer(conn, lock, job_id, False, pack_error(exc))
            except Exception as exc:
                log.exception("worker %d: job %s failed", self.index, type(msg).__name__)
                self._answer(conn, lock, job_id, False, {"bug": f"{type(exc).__name__}: {exc}"})
            else:
                self._answer(conn, lock, job_id, True, result)

    def serve(self, conn: Connection) -> None:
        """Serve ``conn`` until it closes or the server says stop; then close it."""
        lock = threading.Lock()  # the runner's answers and this hello share the connection
        self._answer(conn, lock, 0, True, None)  # hello: the server learns this worker's stats
        try:
            while True:
                try:
                    item = conn.recv()
                except (EOFError, OSError):
                    break
                if item[0] != "control":
                    self.jobs.put((conn, lock, *item))
                elif item[1] == "forget":
                    self.ctx.forget(item[2])
                elif item[1] == "unload_idle":
                    self.ctx.unload_idle(item[2])
                elif item[1] == "stop":
                    break
        finally:
            with lock:  # not under an answer being written (its descriptor may be reused)
                conn.close()

    def close(self, timeout: float = 30) -> None:
        self.jobs.put(None)
        self.runner.join(timeout)
