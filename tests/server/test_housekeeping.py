"""Housekeeping: idle models leave memory, unused workspaces go with their models, last_used is
written, and the app's lifespan runs it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
import torch
from sqlalchemy import select, update

from models.build import infer
from models.limits import Limits
from models.presets import PRESETS
from server.db import workspaces
from server.housekeeping import Housekeeper
from server.settings import Settings
from server.store import ModelRecord, SqlStore
from server.worker import EmbeddedWorker

SPEC = infer(PRESETS["linear_3_2"].spec).spec.model_dump(exclude_none=True)


@pytest.fixture
def store(tmp_path) -> Iterator[SqlStore]:
    s = SqlStore(f"sqlite:///{tmp_path / 'playground.db'}")
    yield s
    s.close()


def keeper(store: SqlStore, **settings) -> Housekeeper:
    worker = EmbeddedWorker(torch.device("cpu"), Limits(), 2**30, store=store)
    return Housekeeper(store, worker, Settings(**settings))


def load(k: Housekeeper, record: ModelRecord):
    async def go():
        return await k.worker.call(lambda: k.worker.ctx.live_model(record))

    return asyncio.run(go())


def saved(store: SqlStore, ws_id: str) -> ModelRecord:
    rec = ModelRecord(store.new_model_id(), ws_id, SPEC, seed=0)
    store.put_model(rec)
    return store.get_model(ws_id, rec.id)


def test_models_idle_past_the_setting_leave_memory(store):
    k = keeper(store, idle_unload_seconds=60)
    ws, _ = store.create_workspace()
    old, fresh = saved(store, ws.id), saved(store, ws.id)
    load(k, old).last_used -= 61  # untouched for 61 s
    load(k, fresh)
    assert k.tick()["unloaded"] == 1
    assert k.worker.stats()["live_models"] == 1
    assert k.tick()["unloaded"] == 0


def test_zero_keeps_models_and_workspaces(store):
    k = keeper(store, idle_unload_seconds=0, workspace_ttl_days=0)
    ws, _ = store.create_workspace()
    load(k, saved(store, ws.id)).last_used -= 10**6
    done = k.tick(now=time.time() + 10**9)
    assert done["unloaded"] == 0 and done["workspaces_deleted"] == 0
    assert k.worker.stats()["live_models"] == 1 and store.count_workspaces() == 1


def test_unused_workspaces_are_deleted_and_their_models_forgotten(store):
    k = keeper(store, workspace_ttl_days=30)
    old, old_token = store.create_workspace()
    new, _ = store.create_workspace()
    load(k, saved(store, old.id))
    keep = saved(store, new.id)
    with store.engine.begin() as conn:
        when = time.time() - 31 * 86_400
        conn.execute(update(workspaces).where(workspaces.c.id == old.id).values(last_used=when))
    assert k.tick()["workspaces_deleted"] == 1
    assert store.workspace_for_token(old_token) is None
    assert k.worker.stats()["live_models"] == 0  # the deleted model left memory at once
    assert store.list_models(new.id) == [keep]
    assert k.tick(now=time.time() + 29 * 86_400)["workspaces_deleted"] == 0
    assert k.tick(now=time.time() + 31 * 86_400)["workspaces_deleted"] == 1


def test_a_tick_writes_the_last_used_marks(store):
    k = keeper(store)
    _, token = store.create_workspace()
    with store.engine.begin() as conn:
        conn.execute(update(workspaces).values(last_used=0.0))
    store.workspace_for_token(token)
    assert k.tick()["usage_written"] == 1
    with store.engine.connect() as conn:
        assert conn.execute(select(workspaces.c.last_used)).scalar_one() > time.time() - 60


def test_the_period_follows_a_short_idle_time(store):
    assert keeper(store).every == 30
    assert keeper(store, idle_unload_seconds=10).every == 5
    assert keeper(store, idle_unload_seconds=1).every == 1


def test_the_app_unloads_idle_models_on_its_own(make_api):
    api = make_api(idle_unload_seconds=1)
    model = api.create(preset="linear_3_2", seed=0)
    before = api.weights(model["id"])

    def live() -> int:
        return api.client.get("/healthz").json()["worker"]["live_models"]

    assert live() == 1
    deadline = time.monotonic() + 20
    while live() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert live() == 0
    assert api.weights(model["id"]) == before  # back from the store, the same
