"""The worker: the one owner of the device and of the live models.

Every torch call of the server goes through :meth:`Worker.call` (a job without a
model) or :meth:`Worker.with_model` (a job on a workspace's model), never on the
event loop. :class:`EmbeddedWorker` runs jobs in one thread per device inside the
server process and keeps live models under a byte budget, least recently used
first out (they come back from the store on their next job). Another
implementation (Ray actors, one per GPU) only has to provide the same two methods.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
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

    @property
    def model(self) -> torch.nn.Module:
        return self.built.model


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

    @abstractmethod
    def adopt(self, live: Live) -> None:
        """Keep ``live`` as the current in-memory copy of its record (called on the worker)."""

    @abstractmethod
    def forget(self, model_id: str) -> None:
        """Drop a deleted model from memory."""

    @abstractmethod
    def stats(self) -> dict[str, Any]:
        """Device, live models and bytes held, for /healthz."""

    async def close(self) -> None:  # pragma: no cover - default: nothing to release
        return None


class EmbeddedWorker(Worker):
    """One job thread per device inside the server process, with an LRU of live models."""

    def __init__(self, device: torch.device, limits: Limits, cache_bytes: int) -> None:
        self.device = device
        self.limits = limits
        self.cache_bytes = cache_bytes
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"torch-{device}")
        self._live: OrderedDict[str, Live] = OrderedDict()
        self._lock = threading.Lock()
        self.jobs_done = 0

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._guard, fn, *args)

    async def with_model(self, record: ModelRecord, fn: Callable[[Live], T]) -> T:
        return await self.call(self._run_on_model, record, fn)

    def _run_on_model(self, record: ModelRecord, fn: Callable[[Live], T]) -> T:
        live = self._get(record)
        return fn(live)

    def _guard(self, fn: Callable[..., T], *args: Any) -> T:
        """Turn torch's runtime failures into errors the user can act on."""
        try:
            return fn(*args)
        except SpecError:
            raise
        except (torch.cuda.OutOfMemoryError, MemoryError) as exc:
            self._free_memory()
            raise SpecError(
                "out_of_memory",
                f"The {self.device.type} ran out of memory for this job ({exc.__class__.__name__})"
                f". Try a smaller model or input, or again in a moment.",
                status=503,
            ) from None
        except (RuntimeError, IndexError, ValueError) as exc:
            if "out of memory" in str(exc):
                self._free_memory()
                raise SpecError("out_of_memory", f"Out of memory: {exc}", status=503) from None
            raise SpecError(
                "run_failed",
                f"PyTorch refused this input: {str(exc).strip().splitlines()[0]}. "
                f"Check the input's values (e.g. token indices within the vocabulary).",
            ) from None
        finally:
            self.jobs_done += 1

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
        if record.weights is not None:
            load_safetensors(built.model, record.weights)
        frozen = set(record.frozen)
        for name, param in built.model.named_parameters():
            param.requires_grad_(name not in frozen)
        nbytes = sum(t.numel() * t.element_size() for t in built.model.state_dict().values())
        return Live(record, built, nbytes)

    def _get(self, record: ModelRecord) -> Live:
        with self._lock:
            live = self._live.get(record.id)
            if live is not None and live.record.version == record.version:
                self._live.move_to_end(record.id)
                return live
        live = self.load(record)
        self.adopt(live)
        return live

    def adopt(self, live: Live) -> None:
        with self._lock:
            self._live[live.record.id] = live
            self._live.move_to_end(live.record.id)
            total = sum(v.nbytes for v in self._live.values())
            while total > self.cache_bytes and len(self._live) > 1:
                _, old = self._live.popitem(last=False)
                total -= old.nbytes
                log.info("model %s left memory (LRU)", old.record.id)

    def forget(self, model_id: str) -> None:
        with self._lock:
            self._live.pop(model_id, None)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "device": str(self.device),
                "live_models": len(self._live),
                "live_bytes": sum(v.nbytes for v in self._live.values()),
                "cache_bytes": self.cache_bytes,
                "jobs_done": self.jobs_done,
            }

    async def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
