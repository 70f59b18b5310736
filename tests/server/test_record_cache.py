"""The store's in-memory record cache (SQLite): it always holds the stored version or
nothing, so a request served from it sees what a database read would have shown."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from models.presets import PRESETS
from models.weights import to_safetensors
from server import record_cache
from server.store import ModelRecord, SqlStore

SPEC = PRESETS["linear_3_2"].spec


@pytest.fixture
def store(tmp_path) -> Iterator[SqlStore]:
    s = SqlStore(f"sqlite:///{tmp_path / 'playground.db'}")
    yield s
    s.close()


def weights(seed: int) -> bytes:
    torch.manual_seed(seed)
    return to_safetensors(torch.nn.Linear(3, 2))


def saved(store: SqlStore, **kw) -> ModelRecord:
    ws, _ = store.create_workspace()
    rec = ModelRecord(store.new_model_id(), ws.id, SPEC, 7, **kw)
    store.put_model(rec)
    return rec


def test_a_saved_record_is_served_from_memory_as_stored(store):
    rec = saved(store, weights=weights(1))
    cached = store.cached_model(rec.workspace_id, rec.id)
    assert cached is not None and cached.version == 1
    assert cached.weights is None and cached.weights_deferred  # left in the store
    assert (
        cached.load_weights()
        == weights(1)
        == store.get_model(rec.workspace_id, rec.id).weights_loader()
    )
    assert cached.fetch_latest().version == 1


def test_each_save_replaces_the_cached_version(store):
    rec = saved(store, weights=weights(1))
    v2 = rec.changed(frozen=("weight",))  # weights kept as stored
    store.put_model(v2)
    v3 = v2.changed(weights=weights(2))
    store.put_model(v3)
    cached = store.cached_model(rec.workspace_id, rec.id)
    assert (cached.version, cached.frozen) == (3, ("weight",))
    assert cached.load_weights() == weights(2)
    store.put_model(v2)  # stale: a no-op in the database and in memory
    assert store.cached_model(rec.workspace_id, rec.id).version == 3


def test_a_seeded_record_stays_seeded_in_memory(store):
    rec = saved(store)
    assert store.cached_model(rec.workspace_id, rec.id).load_weights() is None


def test_a_deleted_model_leaves_memory_too(store):
    rec = saved(store)
    assert store.delete_model(rec.workspace_id, rec.id)
    assert store.cached_model(rec.workspace_id, rec.id) is None
    assert store.get_model(rec.workspace_id, rec.id) is None
    assert store.cached_model(rec.workspace_id, rec.id) is None


def test_a_deleted_workspace_takes_its_cached_models(store):
    rec = saved(store)
    assert store.delete_workspace(rec.workspace_id) == [rec.id]
    assert store.cached_model(rec.workspace_id, rec.id) is None


def test_a_read_that_raced_a_delete_is_not_cached(store, monkeypatch):
    """The row was read, then a delete committed before the read could fill the cache."""
    rec = saved(store)
    store.records.clear()  # as after a restart: the next read fills the cache
    real = store._record

    def read_then_delete(row):
        out = real(row)
        store.delete_model(rec.workspace_id, rec.id)
        return out

    monkeypatch.setattr(store, "_record", read_then_delete)
    assert store.get_model(rec.workspace_id, rec.id) is not None  # what the read saw
    assert store.cached_model(rec.workspace_id, rec.id) is None  # not remembered


def test_only_another_workspace_key_misses(store):
    rec = saved(store)
    other, _ = store.create_workspace()
    assert store.cached_model(other.id, rec.id) is None
    assert store.get_model(other.id, rec.id) is None


def test_the_cache_is_bounded(store, monkeypatch):
    monkeypatch.setattr(record_cache, "SIZE", 3)
    records = [saved(store) for _ in range(5)]
    kept = [r for r in records if store.cached_model(r.workspace_id, r.id) is not None]
    assert kept == records[2:]
    first = records[0]
    assert store.get_model(first.workspace_id, first.id) is not None  # read back, cached again
    assert store.cached_model(first.workspace_id, first.id) is not None
