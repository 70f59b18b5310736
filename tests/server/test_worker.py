"""The embedded worker: live models under a byte budget (LRU) and an idle time, the bounded
queue (503 busy with Retry-After), and out-of-memory errors turned into 503s."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest
import torch

from models.build import build, infer
from models.errors import SpecError
from models.limits import Limits
from models.presets import PRESETS
from models.weights import to_safetensors
from server import jobs
from server.errors import status_of
from server.store import ModelRecord, SqlStore, Workspace
from server.worker import Busy, EmbeddedWorker, Live

LENET = infer(PRESETS["lenet5"].spec).spec.model_dump(exclude_none=True)
LENET_BYTES = sum(t.numel() * t.element_size() for t in build(LENET).model.state_dict().values())


@pytest.fixture
def store(tmp_path) -> Iterator[SqlStore]:
    s = SqlStore(f"sqlite:///{tmp_path / 'playground.db'}")
    yield s
    s.close()


@pytest.fixture
def ws(store) -> Workspace:
    return store.create_workspace()[0]


def worker(
    cache_bytes: int = 2**30, queue_size: int = 64, store: SqlStore | None = None
) -> EmbeddedWorker:
    return EmbeddedWorker(
        torch.device("cpu"), Limits(), cache_bytes, queue_size=queue_size, store=store
    )


async def with_model(w: EmbeddedWorker, record: ModelRecord, fn):
    """``fn(live)`` on the worker's thread with ``record``'s model live (what a handler does)."""
    return await w.call(lambda: fn(w.ctx.live_model(record)))


def trained(store: SqlStore, ws: Workspace, seed: int) -> ModelRecord:
    """LeNet-5 with weights that its seed would not give, saved and read back (deferred)."""
    model = build(LENET, seed=seed).model
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p))
    rec = ModelRecord(store.new_model_id(), ws.id, LENET, seed, weights=to_safetensors(model))
    store.put_model(rec)
    return store.get_model(ws.id, rec.id)


def state(live: Live) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in live.model.state_dict().items()}


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_lru_evicts_and_the_model_comes_back_identical(store, ws):
    a, b = trained(store, ws, 1), trained(store, ws, 2)
    w = worker(cache_bytes=LENET_BYTES + 1000, store=store)  # room for one LeNet

    async def scenario():
        first = await with_model(w, a, lambda live: (live.model, state(live)))
        await with_model(w, b, state)
        assert w.stats()["live_models"] == 1  # a left memory
        again = await with_model(w, a, lambda live: (live.model, state(live)))
        await w.close()
        return first, again

    (model1, state1), (model2, state2) = asyncio.run(scenario())
    assert model2 is not model1  # rebuilt from the store
    assert same(state1, state2)
    want = build(LENET, seed=1).model.state_dict()
    assert not torch.equal(state1["conv1.weight"], want["conv1.weight"])  # not just the seed


def test_a_model_under_the_budget_stays_live(store, ws):
    a, b = trained(store, ws, 1), trained(store, ws, 2)
    w = worker(store=store)

    async def scenario():
        first = await with_model(w, a, lambda live: live.model)
        await with_model(w, b, state)
        again = await with_model(w, a, lambda live: live.model)
        await w.close()
        return first, again

    first, again = asyncio.run(scenario())
    assert again is first
    assert w.stats()["live_models"] == 2
    assert w.stats()["live_bytes"] == 2 * LENET_BYTES


def test_idle_models_leave_memory_and_come_back(store, ws):
    a = trained(store, ws, 3)
    w = worker(store=store)

    async def scenario():
        before = await with_model(w, a, state)
        assert w.unload_idle(3600) == 0  # used just now
        assert w.stats()["live_models"] == 1
        assert w.unload_idle(0) == 1
        assert w.stats()["live_models"] == 0
        after = await with_model(w, a, state)
        await w.close()
        return before, after

    before, after = asyncio.run(scenario())
    assert same(before, after)


def test_a_job_queued_behind_a_change_builds_the_newest_version(store, ws):
    """The record a request read is stale when its job runs after another change and an
    eviction: the worker builds the newest stored version, so no change is lost."""
    a = trained(store, ws, 4)
    w = worker(store=store)

    async def scenario():
        await with_model(w, a, lambda live: jobs.patch_grad(live, "conv1", False, w.ctx))
        w.unload_idle(0)
        live = await with_model(w, a, lambda live: live)  # a: version 1, the store has 2
        await w.close()
        return live

    live = asyncio.run(scenario())
    assert live.record.version == 2
    assert not live.model.get_parameter("conv1.weight").requires_grad


def test_a_committed_change_is_saved_before_the_job_ends_and_keeps_no_blob(store, ws):
    """commit() saves inside the job; the live copy then holds the stored form of the record
    (weights read from the store on demand), not a second copy of the weights in memory."""
    a = trained(store, ws, 5)
    w = worker(store=store)

    def perturb(live: Live) -> None:
        with torch.no_grad():
            live.model.get_parameter("fc3.bias").add_(1.0)
        jobs.save_state(live, w.ctx)

    async def scenario():
        await with_model(w, a, perturb)
        saved_version = store.get_model(ws.id, a.id).version  # before anything else ran
        live = await with_model(w, a, lambda live: live)
        await w.close()
        return saved_version, live

    saved_version, live = asyncio.run(scenario())
    assert saved_version == live.record.version == 2
    assert live.record.weights is None and live.record.weights_deferred
    assert live.held_bytes == live.nbytes == LENET_BYTES
    assert live.record.load_weights() == to_safetensors(live.model)


def _hold(
    w: EmbeddedWorker, count: int, release: threading.Event
) -> tuple[list[asyncio.Future], threading.Event]:
    """``count`` jobs that wait for ``release``; the event tells when the first one runs."""
    started = threading.Event()

    def blocker() -> str:
        started.set()
        release.wait(10)
        return "done"

    futures = [asyncio.ensure_future(w.call(blocker)) for _ in range(count)]
    return futures, started


def test_a_full_queue_refuses_at_once_with_retry_after():
    w = worker(queue_size=2)
    release = threading.Event()

    async def scenario():
        futures, started = _hold(w, 3, release)  # one runs, two wait: the queue is full
        await asyncio.sleep(0)
        assert await asyncio.to_thread(started.wait, 5)
        assert w.stats()["jobs_queued"] == 3
        with pytest.raises(Busy) as err:
            await w.call(lambda: "one too many")
        release.set()
        results = await asyncio.gather(*futures)
        after = await w.call(lambda: "served")
        stats = w.stats()
        await w.close()
        return err.value, results, after, stats

    err, results, after, stats = asyncio.run(scenario())
    assert (status_of(err), err.code) == (503, "busy")
    assert int(err.headers["Retry-After"]) >= 1
    assert "PLAYGROUND_JOB_QUEUE_SIZE" in err.message
    assert results == ["done"] * 3 and after == "served"
    assert stats["jobs_queued"] == 0 and stats["jobs_refused"] == 1


def test_a_cancelled_job_leaves_the_queue():
    w = worker(queue_size=1)
    release = threading.Event()

    async def scenario():
        futures, started = _hold(w, 2, release)
        await asyncio.sleep(0)
        assert await asyncio.to_thread(started.wait, 5)
        futures[1].cancel()  # its request went away before the job ran
        await asyncio.sleep(0.05)
        queued = w.stats()["jobs_queued"]
        extra = asyncio.ensure_future(w.call(lambda: "fits"))
        release.set()
        out = await extra
        await w.close()
        return queued, out

    assert asyncio.run(scenario()) == (1, "fits")


@pytest.mark.parametrize(
    "exc",
    [
        torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB"),
        MemoryError(),
        RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: out of memory"),
    ],
    ids=["cuda", "python", "cpu-allocator"],
)
def test_out_of_memory_is_a_503_and_the_worker_keeps_serving(store, ws, exc):
    a = trained(store, ws, 5)
    w = worker(store=store)

    def boom(live: Live) -> None:
        raise exc

    async def scenario():
        before = await with_model(w, a, state)
        with pytest.raises(SpecError) as err:
            await with_model(w, a, boom)
        live_after_oom = w.stats()["live_models"]
        after = await with_model(w, a, state)
        await w.close()
        return err.value, live_after_oom, before, after

    err, live_after_oom, before, after = asyncio.run(scenario())
    assert (status_of(err), err.code) == (503, "out_of_memory")
    assert err.headers["Retry-After"].isdigit()
    assert live_after_oom == 0  # memory was given back
    assert same(before, after)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_real_cuda_out_of_memory_is_a_503():
    w = EmbeddedWorker(torch.device("cuda"), Limits(), 2**30)

    async def scenario():
        with pytest.raises(SpecError) as err:
            await w.call(lambda: torch.empty(2**50, dtype=torch.uint8, device="cuda"))  # 1 PiB
        after = await w.call(lambda: torch.ones(4, device="cuda").sum().item())
        await w.close()
        return err.value, after

    err, after = asyncio.run(scenario())
    assert (status_of(err), err.code) == (503, "out_of_memory") and after == 4.0


# -- through the API: the error handler sends the headers ------------------------------------
def test_the_api_answers_503_busy_with_retry_after(make_api):
    api = make_api(job_queue_size=1)
    client = api.client
    w = client.app.state.playground.worker
    release = threading.Event()
    started = threading.Event()

    def blocker() -> None:
        started.set()
        release.wait(10)

    futures = [client.portal.start_task_soon(w.call, blocker) for _ in range(2)]
    try:
        assert started.wait(5)
        r = api.post("/api/models", json={"preset": "linear_3_2"})
        api.error(r, 503, "busy")
        assert int(r.headers["retry-after"]) >= 1
    finally:
        release.set()
        for f in futures:
            f.result(10)
    api.create(preset="linear_3_2")  # served again; the refused one was never made
    assert len(api.ok(api.get("/api/models"))["models"]) == 1


def test_the_api_answers_503_out_of_memory_and_keeps_serving(api, lenet, monkeypatch):
    real = jobs.run_model

    def oom(*args, **kw):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 8.00 GiB")

    monkeypatch.setattr(jobs, "run_model", oom)
    r = api.post(f"/api/models/{lenet['id']}/run", json={})
    err = api.error(r, 503, "out_of_memory")
    assert "smaller model" in err["message"] and r.headers["retry-after"].isdigit()
    monkeypatch.setattr(jobs, "run_model", real)
    assert api.run(lenet["id"])["outputs"]
