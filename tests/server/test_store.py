"""SqlStore: records round-trip, survive a restart, stay in their workspace, go when deleted.

Every test that is not about SQLite itself runs on SQLite and, when ``psycopg`` and
PostgreSQL's ``initdb``/``pg_ctl`` are installed, on a throwaway PostgreSQL server on
127.0.0.1 too (skipped otherwise).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest
import torch
from safetensors.torch import load as st_load
from sqlalchemy import create_engine, select, update

from models.errors import SpecError
from models.presets import PRESETS
from models.weights import to_safetensors
from server.db import metadata, models, workspaces
from server.errors import status_of
from server.store import ModelRecord, SqlStore, Workspace, hash_token

SPEC = PRESETS["linear_3_2"].spec


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    """A throwaway PostgreSQL server on 127.0.0.1 (as the postgres user when run as root)."""
    pytest.importorskip("psycopg", reason="psycopg is not installed")
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if not (initdb and pg_ctl):
        pytest.skip("PostgreSQL's initdb and pg_ctl are not installed")
    root = tempfile.mkdtemp(prefix="playground-pg-")
    as_user: list[str] = []
    if os.geteuid() == 0:  # postgres refuses to run as root
        shutil.chown(root, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = f"{root}/data"
    opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1"

    def run(*args: str) -> None:
        subprocess.run([*as_user, *args], check=True, capture_output=True, timeout=60)

    try:
        run(initdb, "-D", data, "-A", "trust", "-U", "postgres", "--no-sync")
        run(pg_ctl, "-D", data, "-o", opts, "-l", f"{root}/log", "-w", "start")
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        if os.path.exists(f"{data}/postmaster.pid"):
            run(pg_ctl, "-D", data, "-m", "immediate", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'data' / 'playground.db'}"  # the directory does not exist yet


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, sqlite_url) -> str:
    if request.param == "sqlite":
        return sqlite_url
    pg = request.getfixturevalue("postgres")
    engine = create_engine(pg)
    metadata.drop_all(engine)  # a fresh database for each test
    engine.dispose()
    return pg


@pytest.fixture
def store(url) -> Iterator[SqlStore]:
    s = SqlStore(url)
    yield s
    s.close()


@pytest.fixture
def sqlite_store(sqlite_url) -> Iterator[SqlStore]:
    s = SqlStore(sqlite_url)
    yield s
    s.close()


def weights(seed: int) -> bytes:
    torch.manual_seed(seed)
    return to_safetensors(torch.nn.Linear(3, 2))


def record(store: SqlStore, ws: Workspace, **kw) -> ModelRecord:
    return ModelRecord(id=store.new_model_id(), workspace_id=ws.id, spec=SPEC, seed=7, **kw)


def test_sqlite_runs_in_wal_mode_with_full_sync(sqlite_store, tmp_path):
    assert (tmp_path / "data" / "playground.db").exists()
    with sqlite_store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_a_workspace_is_opened_by_its_token_only(store):
    ws, token = store.create_workspace()
    assert store.workspace_for_token(token) == ws
    assert store.workspace_for_token(token + "x") is None
    assert store.workspace_for_token("") is None
    other, other_token = store.create_workspace()
    assert store.workspace_for_token(other_token) == other != ws
    assert store.count_workspaces() == 2


def test_tokens_are_stored_hashed(store):
    ws, token = store.create_workspace()
    with store.engine.connect() as conn:
        stored = conn.execute(select(workspaces.c.token_hash)).scalar_one()
    assert stored == hash_token(token) == ws.token_hash


def test_no_token_reaches_the_disk(sqlite_store, tmp_path):
    _, token = sqlite_store.create_workspace()
    sqlite_store.close()
    files = list((tmp_path / "data").iterdir())
    assert files and not any(token.encode() in f.read_bytes() for f in files)


def test_a_record_round_trips_with_every_field(store):
    ws, _ = store.create_workspace()
    blob = weights(1)
    rec = record(store, ws, params=8, weights=blob, frozen=("weight",))
    rec = replace(rec, seed=2**63 - 1)  # the largest seed the API takes
    store.put_model(rec)
    got = store.get_model(ws.id, rec.id)
    assert got == replace(rec, weights=None)  # the weights are left in the store
    assert got.weights_deferred and got.load_weights() == blob
    assert got.spec == SPEC and got.seed == 2**63 - 1 and got.frozen == ("weight",)
    assert got.created == rec.created and got.updated == rec.updated
    assert store.list_models(ws.id) == [got]
    assert store.count_models(ws.id) == 1


def test_a_seeded_record_has_no_weights(store):
    ws, _ = store.create_workspace()
    rec = record(store, ws)
    store.put_model(rec)
    got = store.get_model(ws.id, rec.id)
    assert not got.weights_deferred and got.load_weights() is None


def test_a_restarted_store_sees_everything(url, store):
    ws, token = store.create_workspace()
    recs = [record(store, ws, weights=weights(i)) for i in range(3)]
    for rec in recs:
        store.put_model(rec)
    beside = SqlStore(url)  # a second store on the same file, while the first is open
    try:
        assert beside.workspace_for_token(token) == ws
        assert [r.id for r in beside.list_models(ws.id)] == [r.id for r in recs]
    finally:
        beside.close()
    store.close()
    again = SqlStore(url)  # and after the first is closed: a restart
    try:
        assert again.workspace_for_token(token) == ws
        for rec in recs:
            assert again.get_model(ws.id, rec.id).load_weights() == rec.weights
    finally:
        again.close()


def test_a_workspace_sees_only_its_own_models(store):
    ws, _ = store.create_workspace()
    other, _ = store.create_workspace()
    rec = record(store, ws, weights=weights(0))
    store.put_model(rec)
    assert store.get_model(other.id, rec.id) is None
    assert store.list_models(other.id) == [] and store.count_models(other.id) == 0
    assert store.delete_model(other.id, rec.id) is False
    assert store.get_model(ws.id, rec.id) is not None


def test_changes_keep_or_replace_the_stored_weights(store):
    ws, _ = store.create_workspace()
    rec = record(store, ws, weights=weights(0))
    store.put_model(rec)
    frozen = store.get_model(ws.id, rec.id).changed(frozen=("bias",))
    assert frozen.weights_deferred  # a change that leaves the weights does not carry them
    store.put_model(frozen)
    got = store.get_model(ws.id, rec.id)
    assert (got.version, got.frozen, got.load_weights()) == (2, ("bias",), rec.weights)
    store.put_model(got.changed(weights=weights(5)))
    assert store.get_model(ws.id, rec.id).load_weights() == weights(5)
    store.put_model(store.get_model(ws.id, rec.id).changed(weights=None))  # back to "as seeded"
    got = store.get_model(ws.id, rec.id)
    assert got.version == 4 and got.load_weights() is None


def test_a_record_never_goes_back_in_time(store):
    ws, _ = store.create_workspace()
    rec = record(store, ws)
    v2 = rec.changed(frozen=("weight",))
    v3 = v2.changed(frozen=("weight", "bias"))
    for r in (rec, v2, v3, v3):  # the same version twice: an idempotent save
        store.put_model(r)
    store.put_model(v2)  # its request finished last: v3 already holds its change, a no-op
    got = store.get_model(ws.id, rec.id)
    assert (got.version, got.frozen) == (3, ("weight", "bias"))


def test_stale_weights_are_refused_not_mixed(store):
    ws, _ = store.create_workspace()
    rec = record(store, ws, weights=weights(0))
    store.put_model(rec)
    stale = store.get_model(ws.id, rec.id)
    store.put_model(stale.changed(weights=weights(1)))
    with pytest.raises(SpecError) as err:
        stale.load_weights()
    assert status_of(err.value) == 409
    latest = stale.fetch_latest()
    assert latest.version == 2 and latest.load_weights() == weights(1)


def test_a_deleted_model_is_not_brought_back(store):
    ws, _ = store.create_workspace()
    rec = record(store, ws)
    store.put_model(rec)
    assert store.delete_model(ws.id, rec.id) is True
    assert store.delete_model(ws.id, rec.id) is False
    assert store.get_model(ws.id, rec.id) is None and store.list_models(ws.id) == []
    with pytest.raises(SpecError) as err:  # a change whose request ran during the delete
        store.put_model(rec.changed(frozen=("weight",)))
    assert (status_of(err.value), err.value.code) == (404, "model_not_found")
    assert store.count_models(ws.id) == 0


def test_no_model_goes_into_a_deleted_workspace(store):
    ws, _ = store.create_workspace()
    store.delete_workspace(ws.id)
    with pytest.raises(SpecError) as err:
        store.put_model(record(store, ws))
    assert (status_of(err.value), err.value.code) == (404, "workspace_not_found")


def _age(store: SqlStore, ws: Workspace, days: float) -> None:
    with store.engine.begin() as conn:
        when = time.time() - days * 86_400
        conn.execute(update(workspaces).where(workspaces.c.id == ws.id).values(last_used=when))


def test_unused_workspaces_are_deleted_with_their_models(url, store):
    old, old_token = store.create_workspace()
    new, new_token = store.create_workspace()
    old_models = [record(store, old, weights=weights(i)) for i in range(2)]
    for rec in [*old_models, record(store, new)]:
        store.put_model(rec)
    store.workspace_for_token(old_token)  # cached in this store
    store.flush_usage()  # then unused for ten days
    _age(store, old, days=10)
    gone, model_ids = store.delete_unused_workspaces(time.time() - 7 * 86_400)
    assert gone == 1 and sorted(model_ids) == sorted(r.id for r in old_models)
    assert store.workspace_for_token(old_token) is None  # the cache forgot it too
    assert store.list_models(old.id) == []
    with store.engine.connect() as conn:
        assert conn.execute(select(models.c.workspace_id)).scalars().all() == [new.id]
    assert store.workspace_for_token(new_token) == new and store.count_workspaces() == 1


def test_a_used_workspace_is_kept(url, store):
    ws, token = store.create_workspace()
    _age(store, ws, days=10)
    restarted = SqlStore(url)
    try:
        assert restarted.workspace_for_token(token) == ws  # marks it used (written in batches)
        assert restarted.delete_unused_workspaces(time.time() - 7 * 86_400) == (0, [])
        with restarted.engine.connect() as conn:
            last_used = conn.execute(select(workspaces.c.last_used)).scalar_one()
        assert last_used > time.time() - 60
    finally:
        restarted.close()


def test_last_used_is_written_at_most_once_a_minute(store):
    _, token = store.create_workspace()
    for _ in range(50):
        store.workspace_for_token(token)
    assert store.flush_usage() == 1
    store.workspace_for_token(token)
    assert store.flush_usage() == 0


def test_concurrent_puts_from_threads(store):
    """Eight threads create and change models at once; every save is there afterwards."""
    spaces = [store.create_workspace()[0] for _ in range(4)]
    errors: list[BaseException] = []
    saved: dict[str, ModelRecord] = {}
    lock = threading.Lock()

    def client(n: int) -> None:
        try:
            ws = spaces[n % len(spaces)]
            for i in range(10):
                rec = record(store, ws, weights=weights(n * 100 + i))
                store.put_model(rec)
                rec = store.get_model(ws.id, rec.id).changed(frozen=(f"t{n}",))
                store.put_model(rec)
                rec = rec.changed(weights=weights(n * 100 + i + 50))
                store.put_model(rec)
                store.list_models(ws.id)
                with lock:
                    saved[rec.id] = rec
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sum(store.count_models(ws.id) for ws in spaces) == len(saved) == 80
    for rec in saved.values():
        got = store.get_model(rec.workspace_id, rec.id)
        assert (got.version, got.frozen) == (3, rec.frozen)
        assert got.load_weights() == rec.weights
        assert set(st_load(got.load_weights())) == {"weight", "bias"}


def test_an_in_memory_database_works_across_threads():
    store = SqlStore("sqlite://")
    try:
        ws, token = store.create_workspace()
        recs = [record(store, ws, weights=weights(i)) for i in range(20)]
        threads = [threading.Thread(target=store.put_model, args=(r,)) for r in recs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert store.workspace_for_token(token) == ws
        assert {r.id for r in store.list_models(ws.id)} == {r.id for r in recs}
    finally:
        store.close()
