"""The worker: the one owner of the device and of the live models.

Every torch call of the server goes through :meth:`Worker.submit`: a job is a message of plain
data (``server.ops.messages``, ``server.training_jobs``) whose handler runs next to the device
with the worker side's :class:`server.workers.context.WorkerContext`, never on the event loop.
:class:`EmbeddedWorker` (the default) runs jobs in one thread per device inside the server
process; ``server.workers.process.ProcessWorker`` (``PLAYGROUND_WORKERS=N``) in N worker
processes, each workspace pinned to one. Queues are bounded: when ``queue_size`` jobs already
wait, a new one is refused at once with 503 ``busy`` and ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

import torch

from models.errors import SpecError
from models.limits import Limits
from server.ops import handle
from server.settings import Settings
from server.store import SqlStore
from server.workers.context import Live, WorkerContext

__all__ = [
    "Busy",
    "EmbeddedWorker",
    "Live",
    "Worker",
    "WorkerContext",
    "WorkerLost",
    "pick_device",
]

T = TypeVar("T")
log = logging.getLogger("playground.worker")


class Busy(SpecError):
    """The device's queue is full (or its memory ran out): 503 with ``Retry-After``."""

    def __init__(self, code: str, message: str, retry_after: int) -> None:
        super().__init__(code, message, detail={"retry_after_s": retry_after})
        self.headers = {"Retry-After": str(retry_after)}


class WorkerLost(Busy):
    """The worker process running a job died (``server.workers.process``): 503, try again."""


def pick_device(setting: str) -> torch.device:
    """``auto`` → CUDA when present, else CPU; ``cuda`` without a GPU is a startup error."""
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if setting == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("PLAYGROUND_DEVICE=cuda but torch sees no CUDA device")
    return torch.device(setting)


def translated(ctx: WorkerContext, fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn(*args)``, turning torch's runtime failures into errors the user can act on."""
    try:
        return fn(*args)
    except SpecError:
        raise
    except (torch.cuda.OutOfMemoryError, MemoryError) as exc:
        ctx.free_memory()
        raise Busy(
            "out_of_memory",
            f"The {ctx.device.type} ran out of memory for this job ({exc.__class__.__name__})"
            f". Try a smaller model or input, or again in a moment.",
            retry_after=5,
        ) from None
    except RuntimeError as exc:  # a user's mistake is a SpecError by now; the rest: a 500
        if "out of memory" not in str(exc):
            raise
        ctx.free_memory()
        raise Busy("out_of_memory", f"Out of memory: {exc}", retry_after=5) from None


def full_queue(device: str, waiting: int, retry: int) -> Busy:
    return Busy(
        "busy",
        f"The {device} is busy: its queue is full ({waiting} waiting, the most "
        f"PLAYGROUND_JOB_QUEUE_SIZE allows). Try again in {retry} s.",
        retry,
    )


class Worker(ABC):
    """Runs jobs next to the device; routes and ``models/`` never know where that is."""

    device: torch.device

    @abstractmethod
    async def submit(self, msg: Any) -> Any:
        """Run a job message on the worker its workspace is pinned to; its plain-data result."""

    def slot_of(self, workspace_id: str) -> int:
        """Which of the workers runs ``workspace_id``'s jobs (0 with one worker)."""
        return 0

    @abstractmethod
    async def call_anonymous(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` for a request without a token (``/api/validate``, meta-device
        inference only, in the server's process): where it cannot delay workspaces' jobs."""

    @abstractmethod
    def forget(self, model_id: str) -> None:
        """Drop a deleted model from memory."""

    @abstractmethod
    def unload_idle(self, seconds: float) -> int:
        """Drop the live models untouched for ``seconds`` or more; how many went."""

    @abstractmethod
    def stats(self) -> dict[str, Any]:
        """Device, live models, bytes held and queues, for /healthz."""

    async def close(self) -> None:  # pragma: no cover - default: nothing to release
        return None


class Validator:
    """The thread and bounded queue of anonymous validations, in the server's process."""

    def __init__(self, queue_size: int) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="validate")
        self.queue_size = queue_size
        self.jobs = 0  # waiting + running
        self.refused = 0
        self._lock = threading.Lock()

    async def call(self, ctx: WorkerContext, fn: Callable[..., T], *args: Any) -> T:
        with self._lock:
            waiting = max(self.jobs - 1, 0)
            full = waiting >= self.queue_size
            if full:
                self.refused += 1
            else:
                self.jobs += 1
        if full:
            raise Busy(
                "busy",
                f"Validation is busy: its queue is full ({waiting} waiting, the most "
                f"PLAYGROUND_VALIDATE_QUEUE_SIZE allows). Try again in 1 s.",
                1,
            )
        try:
            future = self._executor.submit(translated, ctx, fn, *args)
        except RuntimeError:  # shut down
            self._release()
            raise
        future.add_done_callback(self._release)
        return await asyncio.wrap_future(future)

    def _release(self, _: Future | None = None) -> None:
        with self._lock:
            self.jobs -= 1

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)


class EmbeddedWorker(Worker):
    """One job thread per device inside the server process, with an LRU of live models.

    At most ``queue_size`` jobs wait behind the running one; a job past that is refused.
    Anonymous jobs (``/api/validate``, meta-device inference only) have their own thread and
    their own queue of ``anonymous_queue_size``, so they never wait in, nor hold, the device's
    queue; their time budget is the caller's (``jobs.resolve``'s deadline).
    """

    def __init__(
        self,
        device: torch.device,
        limits: Limits,
        cache_bytes: int,
        queue_size: int = 64,
        store: SqlStore | None = None,
        anonymous_queue_size: int = 4,
        settings: Settings | None = None,
    ) -> None:
        self.device = device
        self.ctx = WorkerContext(device, limits, cache_bytes, store, settings)
        self.queue_size = queue_size
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"torch-{device}")
        self._lock = threading.Lock()
        self._jobs = 0  # waiting + running
        self._job_seconds = 0.05  # moving average of a job's duration, for Retry-After
        self.jobs_done = 0
        self.jobs_refused = 0
        self._validator = Validator(anonymous_queue_size)

    async def submit(self, msg: Any) -> Any:
        return await self.call(handle, self.ctx, msg)

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on the job thread (in-process only: ``submit`` and tests)."""
        self._admit()
        try:
            future = self._executor.submit(self._guard, fn, *args)
        except RuntimeError:  # shut down
            self._release()
            raise
        future.add_done_callback(self._release)  # also when cancelled before it ran
        return await asyncio.wrap_future(future)

    async def call_anonymous(self, fn: Callable[..., T], *args: Any) -> T:
        return await self._validator.call(self.ctx, fn, *args)

    def _admit(self) -> None:
        with self._lock:
            waiting = max(self._jobs - 1, 0)
            if waiting < self.queue_size:
                self._jobs += 1
                return
            self.jobs_refused += 1
            retry = min(max(math.ceil(self._jobs * self._job_seconds), 1), 60)
        raise full_queue(self.device.type, waiting, retry)

    def _release(self, _: Future | None = None) -> None:
        with self._lock:
            self._jobs -= 1

    def _guard(self, fn: Callable[..., T], *args: Any) -> T:
        """A device job: run it (errors translated) and keep the duration statistics."""
        started = time.perf_counter()
        try:
            return translated(self.ctx, fn, *args)
        finally:
            self.jobs_done += 1
            seconds = time.perf_counter() - started
            self._job_seconds = 0.9 * self._job_seconds + 0.1 * seconds

    def forget(self, model_id: str) -> None:
        self.ctx.forget(model_id)

    def unload_idle(self, seconds: float) -> int:
        return self.ctx.unload_idle(seconds)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            queue = {
                "jobs_done": self.jobs_done,
                "jobs_queued": self._jobs,
                "queue_size": self.queue_size,
                "jobs_refused": self.jobs_refused + self._validator.refused,
                "validations_queued": self._validator.jobs,
            }
        mine = {**self.ctx.stats(), **queue}
        return {**mine, "workers": [{"index": 0, "pid": os.getpid(), **mine}]}

    async def close(self) -> None:
        self._validator.close()
        self._executor.shutdown(wait=True, cancel_futures=True)


def make_worker(settings: Settings, store: SqlStore) -> Worker:
    """The worker ``settings`` ask for: embedded, ``PLAYGROUND_WORKERS`` processes, or Ray."""
    device = pick_device(settings.device)
    if settings.worker == "ray":
        from server.workers.ray_worker import RayWorker

        return RayWorker(settings, store, device)
    if settings.workers > 1:
        from server.workers.process import ProcessWorker

        return ProcessWorker(settings, store, device)
    return EmbeddedWorker(
        device,
        settings.limits(),
        settings.model_cache_bytes,
        queue_size=settings.job_queue_size,
        store=store,
        anonymous_queue_size=settings.validate_queue_size,
        settings=settings,
    )
