"""The database's schema version: recorded when made, migrations run once in order, a
database from a newer playground refused with a message that says what to do."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, select, text

from models.presets import PRESETS
from server import db
from server.db import SchemaTooNew, schema_info
from server.store import ModelRecord, SqlStore


@pytest.fixture
def url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'playground.db'}"


def stored_version(store: SqlStore) -> int:
    with store.engine.connect() as conn:
        return conn.execute(select(schema_info.c.version)).scalar_one()


def test_a_new_database_records_the_current_schema(url):
    store = SqlStore(url)
    assert store.schema_found == db.SCHEMA_VERSION == stored_version(store)
    store.close()


def test_a_database_from_before_versions_is_version_1_and_keeps_its_data(url):
    store = SqlStore(url)
    ws, token = store.create_workspace()
    rec = ModelRecord(store.new_model_id(), ws.id, PRESETS["linear_3_2"].spec, 7)
    store.put_model(rec)
    with store.engine.begin() as conn:  # as the first layout left it: no version row
        conn.execute(delete(schema_info))
    store.close()
    again = SqlStore(url)
    assert again.schema_found == 1 and stored_version(again) == db.SCHEMA_VERSION
    assert again.workspace_for_token(token).id == ws.id
    assert again.get_model(ws.id, rec.id).version == 1
    again.close()


def test_migrations_run_once_in_order(url, monkeypatch):
    SqlStore(url).close()  # written at the current version
    now = db.SCHEMA_VERSION
    ran: list[int] = []

    def add_note(conn) -> None:
        ran.append(now)
        conn.execute(text("ALTER TABLE models ADD COLUMN note TEXT"))

    monkeypatch.setattr(db, "SCHEMA_VERSION", now + 2)
    monkeypatch.setattr(
        db, "MIGRATIONS", {**db.MIGRATIONS, now: add_note, now + 1: lambda c: ran.append(now + 1)}
    )
    store = SqlStore(url)
    assert ran == [now, now + 1] and store.schema_found == now
    assert stored_version(store) == now + 2
    with store.engine.connect() as conn:
        columns = [row[1] for row in conn.exec_driver_sql("PRAGMA table_info(models)")]
    assert "note" in columns
    store.close()
    SqlStore(url).close()
    assert ran == [now, now + 1]  # not again


def test_a_failed_migration_changes_nothing(url, monkeypatch):
    SqlStore(url).close()
    now = db.SCHEMA_VERSION

    def broken(conn) -> None:
        conn.execute(text("ALTER TABLE models ADD COLUMN half_done TEXT"))
        raise RuntimeError("migration bug")

    monkeypatch.setattr(db, "SCHEMA_VERSION", now + 1)
    monkeypatch.setattr(db, "MIGRATIONS", {**db.MIGRATIONS, now: broken})
    with pytest.raises(RuntimeError, match="migration bug"):
        SqlStore(url)
    monkeypatch.setattr(db, "SCHEMA_VERSION", now)
    store = SqlStore(url)
    with store.engine.connect() as conn:
        columns = [row[1] for row in conn.exec_driver_sql("PRAGMA table_info(models)")]
    assert "half_done" not in columns and stored_version(store) == now
    store.close()


def test_a_database_from_a_newer_playground_is_refused(url, monkeypatch):
    SqlStore(url).close()
    monkeypatch.setattr(db, "SCHEMA_VERSION", 7)
    monkeypatch.setattr(db, "MIGRATIONS", dict.fromkeys(range(1, 7), lambda conn: None))
    SqlStore(url).close()  # a newer playground wrote it
    monkeypatch.setattr(db, "SCHEMA_VERSION", 1)
    with pytest.raises(SchemaTooNew) as err:
        SqlStore(url)
    message = str(err.value)
    assert "newer playground (schema 7)" in message and "reads schema 1" in message
    assert "PLAYGROUND_DATA_DIR" in message


def test_the_refusal_never_shows_a_password(monkeypatch):
    monkeypatch.setattr(db, "SCHEMA_VERSION", 1)
    with pytest.raises(SchemaTooNew) as err:

        class Newer:
            def execute(self, _stmt):
                return self

            def first(self):
                return type("Row", (), {"version": 9})()

        db.migrate(Newer(), "postgresql+psycopg://teacher:s3cret@db.example/playground")
    assert "s3cret" not in str(err.value) and "teacher" in str(err.value)


def test_a_version_2_database_gains_the_preset_column(url):
    store = SqlStore(url)
    ws, _ = store.create_workspace()
    rec = ModelRecord(store.new_model_id(), ws.id, PRESETS["linear_3_2"].spec, 7)
    store.put_model(rec)
    with store.engine.begin() as conn:  # as schema 2 left it: no preset column
        conn.execute(text("ALTER TABLE models DROP COLUMN preset"))
        conn.execute(schema_info.update().values(version=2))
    store.close()
    again = SqlStore(url)
    assert again.schema_found == 2 and stored_version(again) == db.SCHEMA_VERSION
    assert again.get_model(ws.id, rec.id).preset is None
    made = ModelRecord(again.new_model_id(), ws.id, PRESETS["mlp"].spec, 1, preset="mlp")
    again.put_model(made)
    assert again.get_model(ws.id, made.id).preset == "mlp"
    again.close()


def test_a_version_1_database_gains_the_trainings_tables(url):
    store = SqlStore(url)
    ws, _ = store.create_workspace()
    rec = ModelRecord(store.new_model_id(), ws.id, PRESETS["linear_3_2"].spec, 7)
    store.put_model(rec)
    with store.engine.begin() as conn:  # as schema 1 left it: no trainings tables
        for table in ("checkpoints", "training_events", "trainings"):
            conn.execute(text(f"DROP TABLE {table}"))
        conn.execute(schema_info.update().values(version=1))
    store.close()
    again = SqlStore(url)
    assert again.schema_found == 1 and stored_version(again) == db.SCHEMA_VERSION
    t = again.trainings.create(ws.id, rec.id, 1, {"dataset": "digits"}, 10)
    assert again.trainings.get(ws.id, t.id).status == "queued"
    again.close()
