"""SQLite specifics: several processes on one file, lazy creation, storage format, locking."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import sqlite3
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import pytest

from engagements.store import StoreUnavailable
from engagements.store.local import LocalStore

WORKERS = 4
KEYS = 15


def race(path: str, start: Event, results: Any) -> None:
    """One process recording the same actions and milestones as all the others."""
    store = LocalStore(path)
    start.wait(30)
    seen = []
    for n in range(KEYS):
        action = store.record_action("openscience", f"email:{n}", "email", {"pid": os.getpid()})
        milestone = store.record_milestone("openscience", f"step-{n}", by=f"pid {os.getpid()}")
        seen.append((action, milestone))
    results.put(seen)


def test_processes_racing_on_the_same_keys_write_each_once(tmp_path: Path) -> None:
    """Every process gets the first writer's record back; no 'database is locked' errors.

    The file does not exist when the processes start, so they also race to create it.
    """
    path = tmp_path / "fresh" / "engagements.sqlite"
    context = multiprocessing.get_context("spawn")  # separate interpreters, like Airflow tasks
    start, results = context.Event(), context.Queue()
    workers = [
        context.Process(target=race, args=(str(path), start, results)) for _ in range(WORKERS)
    ]
    for worker in workers:
        worker.start()
    start.set()
    seen = [results.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(30)
        assert worker.exitcode == 0

    assert all(view == seen[0] for view in seen), "every process saw the same first records"
    store = LocalStore(path)
    actions = store.list_actions("openscience")
    assert len(actions) == KEYS
    assert [a for a, _ in seen[0]] == sorted(actions, key=lambda a: int(a.key.split(":")[1]))
    assert len(store.list_milestones("openscience")) == KEYS
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM actions").fetchone() == (KEYS,)


def test_nothing_is_created_until_first_use(tmp_path: Path) -> None:
    path = tmp_path / "not" / "yet" / "engagements.sqlite"
    store = LocalStore(path)
    assert not path.parent.exists()

    assert store.get_engagement("openscience") is None

    assert path.exists()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert tables == {"engagements", "contacts", "milestones", "actions"}


def test_datetimes_are_stored_as_utc_iso_text_and_json_as_text(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "engagements.sqlite")
    paris = dt.timezone(dt.timedelta(hours=1))
    store.record_milestone(
        "openscience", "agreement", by="ada", at=dt.datetime(2026, 1, 5, 10, 0, tzinfo=paris)
    )
    store.upsert_engagement("openscience", "Open Science", {"hubs": ["prod"]})

    with sqlite3.connect(tmp_path / "engagements.sqlite") as db:
        (done_at,) = db.execute("SELECT done_at FROM milestones").fetchone()
        (config,) = db.execute("SELECT config FROM engagements").fetchone()
    assert done_at == "2026-01-05T09:00:00.000+00:00"
    assert config == '{"hubs": ["prod"]}'
    recorded = store.get_milestone("openscience", "agreement")
    assert recorded is not None
    assert recorded.done_at == dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)


def test_locked_file_raises_unavailable_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "engagements.sqlite"
    store = LocalStore(path, timeout=0.2)
    store.get_engagement("openscience")  # creates the schema
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreUnavailable) as caught:
            store.record_action("openscience", "email:welcome", "email")
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()

    assert str(caught.value) == (
        f"SQLite store {path}: could not record action 'email:welcome':"
        " database is locked; nothing was written"
    )
    assert store.list_actions("openscience") == []


def test_a_failed_call_rolls_back(tmp_path: Path) -> None:
    """A detail that cannot be stored as JSON fails the call before anything is kept."""
    store = LocalStore(tmp_path / "engagements.sqlite")
    with pytest.raises(TypeError):
        store.record_action("openscience", "deck", "document", {"when": dt.date(2026, 1, 5)})
    assert store.get_action("openscience", "deck") is None


def test_a_store_file_from_before_recorded_at_gets_it_from_done_at(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript(
            "CREATE TABLE milestones (community_id TEXT NOT NULL, milestone TEXT NOT NULL,"
            " due TEXT, done_at TEXT, done_by TEXT, note TEXT,"
            " PRIMARY KEY (community_id, milestone));"
            "INSERT INTO milestones VALUES"
            " ('openscience', 'held', NULL, '2026-01-05T10:00:00.000+00:00', 'ada', NULL),"
            " ('openscience', 'open', '2026-02-01', NULL, NULL, NULL);"
        )
    store = LocalStore(path)

    since = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    assert [m.milestone for m in store.list_milestones_recorded_since(since)] == ["held"]
    with sqlite3.connect(path) as db:
        plan = db.execute(
            "EXPLAIN QUERY PLAN SELECT * FROM milestones WHERE recorded_at > ?", ("x",)
        ).fetchall()
    assert "milestones_recorded_at" in str(plan), "the poll is an indexed query"
