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
    SqlStore(url).close()  # written at version 1
    ran: list[int] = []

    def add_note(conn) -> None:
        ran.append(1)
        conn.execute(text("ALTER TABLE models ADD COLUMN note TEXT"))

    monkeypatch.setattr(db, "SCHEMA_VERSION", 3)
    monkeypatch.setattr(db, "MIGRATIONS", {1: add_note, 2: lambda conn: ran.append(2)})
    store = SqlStore(url)
    assert ran == [1, 2] and store.schema_found == 1 and stored_version(store) == 3
    with store.engine.connect() as conn:
        columns = [row[1] for row in conn.exec_driver_sql("PRAGMA table_info(models)")]
    assert "note" in columns
    store.close()
    SqlStore(url).close()
    assert ran == [1, 2]  # not again


def test_a_failed_migration_changes_nothing(url, monkeypatch):
    SqlStore(url).close()

    def broken(conn) -> None:
        conn.execute(text("ALTER TABLE models ADD COLUMN half_done TEXT"))
        raise RuntimeError("migration bug")

    monkeypatch.setattr(db, "SCHEMA_VERSION", 2)
    monkeypatch.setattr(db, "MIGRATIONS", {1: broken})
    with pytest.raises(RuntimeError, match="migration bug"):
        SqlStore(url)
    monkeypatch.setattr(db, "SCHEMA_VERSION", 1)
    store = SqlStore(url)
    with store.engine.connect() as conn:
        columns = [row[1] for row in conn.exec_driver_sql("PRAGMA table_info(models)")]
    assert "half_done" not in columns and stored_version(store) == 1
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
