"""Trainings on the event loop's side: one driver task per running training, the stream.

A driver sends :class:`server.training_jobs.TrainSlice` messages to the worker one after
another and hands the numbered events each slice saved to the stream's subscribers. All
drivers share one slice gate per worker, so at most one slice is queued or running on a worker
at a time: a student's run waits behind at most one slice (``PLAYGROUND_TRAINING_SLICE_MS``),
however many trainings run. Pause, resume, one step and cancel are commands to the driver.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

from starlette.concurrency import run_in_threadpool

from models.datasets import DataRoots
from models.errors import SpecError
from server.records import ModelRecord
from server.store import SqlStore
from server.training_jobs import TrainSlice, TrainStop
from server.training_store import FINISHED, TrainingRecord
from server.worker import Busy, Worker, WorkerLost

log = logging.getLogger("playground.training")
QUEUE_EVENTS = 256  # slices a slow subscriber may fall behind before it is dropped


@dataclass(frozen=True)
class Side:
    """What the event loop's side reads for trainings: the store and the dataset roots."""

    store: SqlStore
    roots: DataRoots


@dataclass
class Driver:
    training_id: str
    workspace_id: str
    model_id: str
    task: asyncio.Task[None] | None = None
    paused: bool = False
    cancel: str | None = None  # the final status asked: "cancelled"
    steps: int = 0  # single steps asked while paused
    wake: asyncio.Event = field(default_factory=asyncio.Event)


class TrainingManager:
    def __init__(self, worker: Worker, ctx: Side, slice_ms: int) -> None:
        self.worker = worker
        self.ctx = ctx
        self.slice_s = slice_ms / 1000
        self.drivers: dict[str, Driver] = {}
        self._gates: dict[int, asyncio.Lock] = {}  # one per worker: a slice queued on each
        self.creating = asyncio.Lock()  # a workspace's check for a training and its start
        self._subscribers: dict[str, set[asyncio.Queue[list[tuple[int, dict]] | None]]] = {}

    # -- commands ----------------------------------------------------------------------------
    def start(self, training_id: str, workspace_id: str, model_id: str) -> None:
        driver = Driver(training_id, workspace_id, model_id)
        self.drivers[training_id] = driver
        driver.task = asyncio.create_task(self._drive(driver), name=f"training-{training_id}")

    def running(self, training_id: str) -> bool:
        return training_id in self.drivers

    def in_workspace(self, workspace_id: str) -> str | None:
        """The id of the workspace's training in progress, if any."""
        return next(
            (d.training_id for d in self.drivers.values() if d.workspace_id == workspace_id), None
        )

    def check_idle(self, model_id: str, doing: str) -> None:
        """409 when the model is training: what ``doing`` would change, it is changing."""
        for d in self.drivers.values():
            if d.model_id == model_id:
                raise SpecError(
                    "model_training",
                    f"This model is training (training '{d.training_id}'): {doing} would "
                    f"change it under the training. Pause is not enough: cancel the training "
                    f"(POST …/trainings/{d.training_id}/cancel) or wait until it is done.",
                    detail={"training": d.training_id},
                )

    def _driver(self, training_id: str) -> Driver:
        driver = self.drivers.get(training_id)
        if driver is None:
            raise SpecError(
                "training_finished",
                "This training has finished; start a new one (POST …/trainings).",
            )
        return driver

    async def pause(self, training_id: str) -> None:
        driver = self._driver(training_id)
        if not driver.paused:
            driver.paused = True
            await self._status(training_id, "paused")

    async def resume(self, training_id: str) -> None:
        driver = self._driver(training_id)
        if driver.paused:
            driver.paused = False
            await self._status(training_id, "running")
            driver.wake.set()

    def step(self, training_id: str) -> None:
        driver = self._driver(training_id)
        if not driver.paused:
            raise SpecError(
                "training_running",
                "One step is for a paused training: pause it first (POST …/pause).",
            )
        driver.steps += 1
        driver.wake.set()

    async def cancel(self, training_id: str) -> None:
        driver = self._driver(training_id)
        driver.cancel = "cancelled"
        driver.wake.set()
        if driver.task is not None:
            await asyncio.shield(driver.task)

    async def _status(self, training_id: str, status: str) -> None:
        numbered = await run_in_threadpool(
            self.ctx.store.trainings.save,
            training_id,
            events=[{"kind": "status", "status": status}],
            status=status,
        )
        self.publish(training_id, numbered)

    # -- the driver ----------------------------------------------------------------------------
    async def _drive(self, driver: Driver) -> None:
        tid = driver.training_id
        try:
            while True:
                if driver.cancel:
                    out = await self._send(TrainStop(tid, driver.cancel, driver.workspace_id))
                    self.publish(tid, out["events"])
                    return
                max_steps = None
                if driver.paused:
                    if not driver.steps:
                        driver.wake.clear()
                        await driver.wake.wait()
                        continue
                    driver.steps -= 1
                    max_steps = 1
                gate = self._gates.setdefault(
                    self.worker.slot_of(driver.workspace_id), asyncio.Lock()
                )
                async with gate:  # one slice in a worker's queue at a time
                    out = await self._send(
                        TrainSlice(tid, self.slice_s, max_steps, driver.workspace_id)
                    )
                self.publish(tid, out["events"])
                if out["status"] not in ("running", "paused"):
                    return
                await asyncio.sleep(0)  # let waiting requests reach the worker first
        except asyncio.CancelledError:
            raise
        except WorkerLost:  # its trainer went with the process: the training stops here
            log.warning("training %s: its worker process died", tid)
            with contextlib.suppress(Exception):
                await self._status(tid, "interrupted")
        except Exception:  # pragma: no cover - a bug: logged, the training marked failed
            log.exception("training %s driver failed", tid)
            with contextlib.suppress(Exception):
                await self._status(tid, "failed")
        finally:
            self.drivers.pop(tid, None)
            self.publish(tid, None)

    async def _send(self, msg: Any) -> dict[str, Any]:
        """Send a message; a full queue is waited out, never a failed training."""
        while True:
            try:
                return await self.worker.submit(msg)
            except WorkerLost:
                raise
            except Busy as exc:
                await asyncio.sleep(float(exc.headers.get("Retry-After", "1")))

    # -- the stream ------------------------------------------------------------------------------
    def subscribe(self, training_id: str) -> asyncio.Queue[list[tuple[int, dict]] | None]:
        queue: asyncio.Queue[list[tuple[int, dict]] | None] = asyncio.Queue(QUEUE_EVENTS)
        self._subscribers.setdefault(training_id, set()).add(queue)
        return queue

    def unsubscribe(self, training_id: str, queue: asyncio.Queue) -> None:
        subs = self._subscribers.get(training_id)
        if subs is not None:
            subs.discard(queue)
            if not subs:
                del self._subscribers[training_id]

    def publish(self, training_id: str, events: list[tuple[int, dict]] | None) -> None:
        """Hand numbered events to the subscribers (None: the stream ends)."""
        if events == []:
            return
        for queue in list(self._subscribers.get(training_id, ())):
            try:
                queue.put_nowait(events)
            except asyncio.QueueFull:  # too slow: it resumes from the store (Last-Event-ID)
                self.unsubscribe(training_id, queue)
                with contextlib.suppress(asyncio.QueueFull):
                    queue.get_nowait()
                    queue.put_nowait(None)

    async def close(self) -> None:
        """At shutdown: stop the drivers; their trainings read ``interrupted``."""
        tasks = [d.task for d in self.drivers.values() if d.task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await run_in_threadpool(self.ctx.store.trainings.interrupt_all)


def finished(status: str) -> bool:
    return status in FINISHED


async def find_training(store: SqlStore, record: ModelRecord, training_id: str) -> TrainingRecord:
    """The model's training ``training_id`` (read off the event loop), or 404."""
    rec = await run_in_threadpool(store.trainings.get, record.workspace_id, training_id)
    if rec is None or rec.model_id != record.id:
        raise SpecError(
            "training_not_found",
            f"Model '{record.id}' has no training '{training_id}'; GET "
            f"/api/models/{record.id}/trainings lists them.",
        )
    return rec
