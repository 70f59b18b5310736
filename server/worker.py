"""The worker: the one owner of the device and of the live models.

Every torch call of the server goes through :meth:`Worker.call` (a job without a
model) or :meth:`Worker.with_model` (a job on a workspace's model), never on the
event loop. :class:`EmbeddedWorker` runs jobs in one thread per device inside the
server process and keeps live models under a byte budget, least recently used
first out (they come back from the store on their next job); models idle for
longer than a set time leave memory too (:meth:`Worker.unload_idle`, called by
``server.housekeeping``). Its queue is bounded: when ``queue_size`` jobs already
wait, a new one is refused at once with 503 ``busy`` and ``Retry-After``. Another
implementation (Ray actors, one per GPU) only has to provide the same methods.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import torch

from models.build import Built, build, infer
from models.errors import SpecError
from models.limits import Limits
from models.weights import load_safetensors
from server.store import ModelRecord

T = TypeVar("T")
log = logging.getLogger("playground.worker")


@dataclass
class Live:
    """A model in memory, built from one version of its record."""

    record: ModelRecord
    built: Built
    nbytes: int
    last_used: float = field(default_factory=time.monotonic)  # for the idle unload

    @property
    def model(self) -> torch.nn.Module:
        return self.built.model

    @property
    def held_bytes(self) -> int:
        """The model's state plus the weights blob its record carries (until saved)."""
        return self.nbytes + len(self.record.weights or b"")


class Busy(SpecError):
    """The device's queue is full (or its memory ran out): 503 with ``Retry-After``."""

    def __init__(self, code: str, message: str, retry_after: int) -> None:
        super().__init__(code, message, detail={"retry_after_s": retry_after})
        self.headers = {"Retry-After": str(retry_after)}


def pick_device(setting: str) -> torch.device:
    """``auto`` → CUDA when present, else CPU; ``cuda`` without a GPU is a startup error."""
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if setting == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("PLAYGROUND_DEVICE=cuda but torch sees no CUDA device")
    return torch.device(setting)


class Worker(ABC):
    """Runs jobs next to the device; routes and ``models/`` never know where that is."""

    device: torch.device

    @abstractmethod
    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on the worker (torch work that needs no stored model)."""

    @abstractmethod
    async def with_model(self, record: ModelRecord, fn: Callable[[Live], T]) -> T:
        """Run ``fn(live)`` on the worker with the record's model loaded."""

    async def call_anonymous(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` for a request without a token (``/api/validate``): where it
        cannot delay workspaces' jobs. By default, like :meth:`call`."""
        return await self.call(fn, *args)

    @abstractmethod
    def adopt(self, live: Live) -> None:
        """Keep ``live`` as the current in-memory copy of its record (called on the worker)."""

    @abstractmethod
    def commit(self, live: Live) -> Live:
        """Save ``live.record`` durably, then adopt it (called on the worker, inside the job
        that made the change): the next job, whatever was evicted meanwhile, builds from a
        store that already holds it, and a client is answered only once it is saved."""

    @abstractmethod
    def forget(self, model_id: str) -> None:
        """Drop a deleted model from memory."""

    @abstractmethod
    def unload_idle(self, seconds: float) -> int:
        """Drop the live models untouched for ``seconds`` or more; how many went."""

    @abstractmethod
    def stats(self) -> dict[str, Any]:
        """Device, live models and bytes held, for /healthz."""

    async def close(self) -> None:  # pragma: no cover - default: nothing to release
        return None


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
        save: Callable[[ModelRecord], ModelRecord | None] | None = None,
        anonymous_queue_size: int = 4,
    ) -> None:
        self.device = device
        self._save = save  # the store's put_model (the record as stored); None: memory only
        self.limits = limits
        self.cache_bytes = cache_bytes
        self.queue_size = queue_size
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"torch-{device}")
        self._live: OrderedDict[str, Live] = OrderedDict()
        self._lock = threading.Lock()
        self._jobs = 0  # waiting + running
        self._job_seconds = 0.05  # moving average of a job's duration, for Retry-After
        self.jobs_done = 0
        self.jobs_refused = 0
        self._anonymous = ThreadPoolExecutor(max_workers=1, thread_name_prefix="validate")
        self.anonymous_queue_size = anonymous_queue_size
        self._anonymous_jobs = 0  # waiting + running

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        self._admit()
        try:
            future = self._executor.submit(self._guard, fn, *args)
        except RuntimeError:  # shut down
            self._release()
            raise
        future.add_done_callback(self._release)  # also when cancelled before it ran
        return await asyncio.wrap_future(future)

    async def call_anonymous(self, fn: Callable[..., T], *args: Any) -> T:
        with self._lock:
            waiting = max(self._anonymous_jobs - 1, 0)
            if waiting >= self.anonymous_queue_size:
                self.jobs_refused += 1
                full = True
            else:
                self._anonymous_jobs += 1
                full = False
        if full:
            raise Busy(
                "busy",
                f"Validation is busy: its queue is full ({waiting} waiting, the most "
                f"PLAYGROUND_VALIDATE_QUEUE_SIZE allows). Try again in 1 s.",
                1,
            )
        try:
            future = self._anonymous.submit(self._translated, fn, *args)
        except RuntimeError:  # shut down
            self._release_anonymous()
            raise
        future.add_done_callback(self._release_anonymous)
        return await asyncio.wrap_future(future)

    def _release_anonymous(self, _: Future | None = None) -> None:
        with self._lock:
            self._anonymous_jobs -= 1

    def _admit(self) -> None:
        with self._lock:
            waiting = max(self._jobs - 1, 0)
            if waiting < self.queue_size:
                self._jobs += 1
                return
            self.jobs_refused += 1
            retry = self._retry_after(self._jobs)
        raise Busy(
            "busy",
            f"The {self.device.type} is busy: its queue is full ({waiting} waiting, the most "
            f"PLAYGROUND_JOB_QUEUE_SIZE allows). Try again in {retry} s.",
            retry,
        )

    def _retry_after(self, jobs: int) -> int:
        return min(max(math.ceil(jobs * self._job_seconds), 1), 60)

    def _release(self, _: Future | None = None) -> None:
        with self._lock:
            self._jobs -= 1

    async def with_model(self, record: ModelRecord, fn: Callable[[Live], T]) -> T:
        return await self.call(self._run_on_model, record, fn)

    def _run_on_model(self, record: ModelRecord, fn: Callable[[Live], T]) -> T:
        live = self._get(record)
        return fn(live)

    def _guard(self, fn: Callable[..., T], *args: Any) -> T:
        """A device job: run it (errors translated) and keep the duration statistics."""
        started = time.perf_counter()
        try:
            return self._translated(fn, *args)
        finally:
            self.jobs_done += 1
            seconds = time.perf_counter() - started
            self._job_seconds = 0.9 * self._job_seconds + 0.1 * seconds

    def _translated(self, fn: Callable[..., T], *args: Any) -> T:
        """Turn torch's runtime failures into errors the user can act on."""
        try:
            return fn(*args)
        except SpecError:
            raise
        except (torch.cuda.OutOfMemoryError, MemoryError) as exc:
            self._free_memory()
            raise Busy(
                "out_of_memory",
                f"The {self.device.type} ran out of memory for this job ({exc.__class__.__name__})"
                f". Try a smaller model or input, or again in a moment.",
                retry_after=5,
            ) from None
        except RuntimeError as exc:  # a user's mistake is a SpecError by now; the rest: a 500
            if "out of memory" not in str(exc):
                raise
            self._free_memory()
            raise Busy("out_of_memory", f"Out of memory: {exc}", retry_after=5) from None

    def _free_memory(self) -> None:
        with self._lock:
            self._live.clear()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    # -- live models ------------------------------------------------------------------
    def load(self, record: ModelRecord) -> Live:
        """Build a record's model on the device (on the worker thread)."""
        inference = infer(record.spec, limits=self.limits)
        built = build(record.spec, seed=record.seed, device=self.device, inference=inference)
        weights = record.load_weights()  # read from the store when the record left them there
        if weights is not None:
            load_safetensors(built.model, weights)
        frozen = set(record.frozen)
        for name, param in built.model.named_parameters():
            param.requires_grad_(name not in frozen)
        built.model.eval()  # resting mode; every probe sets the mode it runs in
        nbytes = sum(t.numel() * t.element_size() for t in built.model.state_dict().values())
        return Live(record, built, nbytes)

    def live_model(self, record: ModelRecord) -> Live:
        """The record's live model, built when not in memory (called on the worker)."""
        return self._get(record)

    def _get(self, record: ModelRecord) -> Live:
        with self._lock:
            live = self._live.get(record.id)
            # >=: a job queued with an older record must see the changes made since
            if live is not None and live.record.version >= record.version:
                self._live.move_to_end(record.id)
                live.last_used = time.monotonic()
                return live
        if record.fetch_latest is not None:  # not in memory: build the newest stored version
            latest = record.fetch_latest()
            if latest is None:
                raise SpecError("model_not_found", "This model was deleted while the request ran.")
            if latest.version > record.version:
                record = latest
        live = self.load(record)
        self.adopt(live)
        return live

    def adopt(self, live: Live) -> None:
        live.last_used = time.monotonic()
        with self._lock:
            self._live[live.record.id] = live
            self._live.move_to_end(live.record.id)
            total = sum(v.held_bytes for v in self._live.values())
            while total > self.cache_bytes and len(self._live) > 1:
                _, old = self._live.popitem(last=False)
                total -= old.held_bytes
                log.info("model %s left memory (LRU)", old.record.id)

    def commit(self, live: Live) -> Live:
        if self._save is not None:
            try:
                stored = self._save(live.record)
            except BaseException:
                self.forget(live.record.id)  # memory never runs ahead of the store
                raise
            if stored is not None:  # keep the stored form: the weights blob leaves memory
                live = Live(stored, live.built, live.nbytes)
        self.adopt(live)
        return live

    def forget(self, model_id: str) -> None:
        with self._lock:
            self._live.pop(model_id, None)

    def unload_idle(self, seconds: float) -> int:
        cutoff = time.monotonic() - seconds
        with self._lock:
            idle = [k for k, v in self._live.items() if v.last_used <= cutoff]
            for model_id in idle:
                del self._live[model_id]
        if idle:
            log.info("%d idle models left memory", len(idle))
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
        return len(idle)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "device": str(self.device),
                "live_models": len(self._live),
                "live_bytes": sum(v.held_bytes for v in self._live.values()),
                "cache_bytes": self.cache_bytes,
                "jobs_done": self.jobs_done,
                "jobs_queued": self._jobs,
                "queue_size": self.queue_size,
                "jobs_refused": self.jobs_refused,
                "validations_queued": self._anonymous_jobs,
            }

    async def close(self) -> None:
        self._anonymous.shutdown(wait=True, cancel_futures=True)
        self._executor.shutdown(wait=True, cancel_futures=True)
