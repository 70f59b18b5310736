"""The worker side of the boundary: the device, the live models, the store, the trainers.

A :class:`WorkerContext` lives where the jobs run (a thread of the server process, a worker
process, a Ray actor) and never crosses the boundary: messages name a model by workspace id,
model id and version, and the handlers (``server.ops``) read it here. Live models are kept
under a byte budget, least recently used first out (they come back from the store on their
next job); models idle for longer than a set time leave memory too (:meth:`unload_idle`).
A change is saved inside the job that made it (:meth:`commit`): a client is answered only
once it is durable.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from models.build import Built, build, infer
from models.datasets import DataRoots
from models.errors import SpecError
from models.limits import Limits
from models.weights import load_safetensors
from server.records import ModelRecord
from server.settings import Settings
from server.store import SqlStore

if TYPE_CHECKING:
    from models.training import Trainer

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


def state_bytes(model: torch.nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in model.state_dict().values())


class WorkerContext:
    """Everything a job handler may use; one per worker (thread, process or actor)."""

    def __init__(
        self,
        device: torch.device,
        limits: Limits,
        cache_bytes: int,
        store: SqlStore | None = None,
        settings: Settings | None = None,
    ) -> None:
        self.device = device
        self.limits = limits
        self.cache_bytes = cache_bytes
        self.store = store  # None: memory only (unit tests of the cache)
        self.settings = settings or Settings()
        self.roots: DataRoots = self.settings.data_roots()
        self.trainers: dict[str, tuple[Trainer, Live]] = {}
        self.report_commits = False  # True in a worker process: the parent's cache forgets
        self.committed: list[tuple[str, str]] = []  # (workspace, model) saved since last asked
        self._live: OrderedDict[str, Live] = OrderedDict()
        self._lock = threading.Lock()

    # -- live models ------------------------------------------------------------------------
    def load(self, record: ModelRecord) -> Live:
        """Build a record's model on the device."""
        inference = infer(record.spec, limits=self.limits)
        built = build(record.spec, seed=record.seed, device=self.device, inference=inference)
        weights = record.load_weights()  # read from the store when the record left them there
        if weights is not None:
            load_safetensors(built.model, weights)
        frozen = set(record.frozen)
        for name, param in built.model.named_parameters():
            param.requires_grad_(name not in frozen)
        built.model.eval()  # resting mode; every probe sets the mode it runs in
        return Live(record, built, state_bytes(built.model))

    def live(self, workspace_id: str, model_id: str, version: int = 0) -> Live:
        """The model at ``version`` or newer: in memory, else built from the newest stored."""
        with self._lock:
            live = self._live.get(model_id)
            # >=: a job queued with an older version must see the changes made since
            if live is not None and live.record.version >= version:
                self._live.move_to_end(model_id)
                live.last_used = time.monotonic()
                return live
        record = self.store.get_model(workspace_id, model_id) if self.store else None
        if record is None:
            raise SpecError("model_not_found", "This model was deleted while the request ran.")
        live = self.load(record)
        self.adopt(live)
        return live

    def live_model(self, record: ModelRecord) -> Live:
        """``record``'s model (or a newer stored version's), for callers holding a record."""
        return self.live(record.workspace_id, record.id, record.version)

    def adopt(self, live: Live) -> None:
        """Keep ``live`` as the current in-memory copy of its record."""
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
        """Save ``live.record`` durably, then adopt it (inside the job that made the change):
        the next job, whatever was evicted meanwhile, builds from a store that already holds
        it, and a client is answered only once it is saved."""
        if self.store is not None:
            try:
                stored = self.store.put_model(live.record)
            except BaseException:
                self.forget(live.record.id)  # memory never runs ahead of the store
                raise
            if self.report_commits:
                self.committed.append((live.record.workspace_id, live.record.id))
            if stored is not None:  # keep the stored form: the weights blob leaves memory
                live = Live(stored, live.built, live.nbytes)
        self.adopt(live)
        return live

    def forget(self, model_id: str) -> None:
        with self._lock:
            self._live.pop(model_id, None)

    def free_memory(self) -> None:
        with self._lock:
            self._live.clear()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    def unload_idle(self, seconds: float) -> int:
        """Drop the live models untouched for ``seconds`` or more; how many went."""
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
            }

    def take_committed(self) -> list[tuple[str, str]]:
        """The models saved since the last call (another process's record cache forgets them)."""
        done, self.committed = self.committed, []
        return done
