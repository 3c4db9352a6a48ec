"""SQLite specifics: several processes on one file, lazy creation, storage format, locking,
reads that never write, and records that cannot be decoded."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import sqlite3
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import pytest

from engagements.store import StoreError, StoreUnavailable
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
    path = tmp_path / "engagements.sqlite"
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


def test_reads_create_nothing_and_the_first_write_creates_the_file(tmp_path: Path) -> None:
    path = tmp_path / "engagements.sqlite"
    store = LocalStore(path)

    assert store.get_engagement("openscience") is None
    assert store.list_engagements() == []
    assert store.list_actions() == []
    assert not path.exists()

    store.record_action("openscience", "email:welcome", "email")
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
    store.record_action("openscience", "first", "test")  # creates the file and its schema
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
    assert [a.key for a in store.list_actions("openscience")] == ["first"]


def test_a_failed_call_rolls_back(tmp_path: Path) -> None:
    """A detail that cannot be stored as JSON fails the call before anything is kept."""
    store = LocalStore(tmp_path / "engagements.sqlite")
    with pytest.raises(TypeError):
        store.record_action("openscience", "deck", "document", {"when": dt.date(2026, 1, 5)})
    assert store.get_action("openscience", "deck") is None


def test_a_store_file_from_before_recorded_at_is_polled_then_gets_it_from_done_at(
    tmp_path: Path,
) -> None:
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
    before = path.read_bytes()
    store = LocalStore(path)

    since = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    assert [m.milestone for m in store.list_milestones_recorded_since(since)] == ["held"]
    assert path.read_bytes() == before, "a read leaves the file as it is"

    store.record_action("openscience", "email:welcome", "email")  # the first write adds it
    with sqlite3.connect(path) as db:
        stamps = db.execute("SELECT milestone, recorded_at FROM milestones").fetchall()
        plan = db.execute(
            "EXPLAIN QUERY PLAN SELECT * FROM milestones WHERE recorded_at > ?", ("x",)
        ).fetchall()
    assert sorted(stamps) == [("held", "2026-01-05T10:00:00.000+00:00"), ("open", None)]
    assert "milestones_recorded_at" in str(plan), "the poll is an indexed query"
    again = LocalStore(path).list_milestones_recorded_since(since)
    assert [m.milestone for m in again] == ["held"]


def test_a_missing_folder_is_an_error_and_nothing_is_created(tmp_path: Path) -> None:
    path = tmp_path / "typo" / "engagements.sqlite"
    store = LocalStore(path)
    for call in (
        lambda: store.record_action("openscience", "email:welcome", "email"),
        lambda: store.get_engagement("openscience"),
    ):
        with pytest.raises(StoreError, match=r"the folder .*typo does not exist"):
            call()
    assert not path.parent.exists()


def test_reads_never_wait_for_a_writer(tmp_path: Path) -> None:
    """A writer holding the write lock does not hold up reads of a new store object (a fresh
    process's first read took the write lock to create the schema, and waited it out)."""
    path = tmp_path / "engagements.sqlite"
    LocalStore(path).upsert_engagement("openscience", "Open Science", {})
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("UPDATE engagements SET name = 'uncommitted'")
    try:
        reader = LocalStore(path, timeout=0.5)
        engagement = reader.get_engagement("openscience")
        assert engagement is not None
        assert engagement.name == "Open Science"
        assert [e.community_id for e in reader.list_engagements()] == ["openscience"]
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def another_user_python():
    """A Python 3.11+ and a pre-exec hook that runs it as a user without write access.

    As root that user is 'nobody', who needs an interpreter outside /root; as anyone else,
    the file modes alone keep the writes out.
    """
    import subprocess
    import sys

    if os.getuid() != 0:
        return sys.executable, None

    def as_nobody() -> None:
        os.setgid(65534)
        os.setuid(65534)

    for candidate in (sys._base_executable, "/usr/bin/python3.11", "/usr/bin/python3"):
        try:
            subprocess.run(
                [candidate, "-c", "import sys; assert sys.version_info >= (3, 11)"],
                preexec_fn=as_nobody,
                check=True,
                capture_output=True,
                timeout=30,
            )
        except (OSError, subprocess.CalledProcessError):
            continue
        return candidate, as_nobody
    pytest.skip("no Python 3.11 that the user 'nobody' may run")


READ_AS_ANOTHER_USER = """
import sys
sys.path.insert(0, sys.argv[2])
from engagements.store.local import LocalStore
store = LocalStore(sys.argv[1])
print(store.get_engagement("openscience").name, len(store.list_milestones("openscience")))
"""


@pytest.mark.parametrize("folder_writable", [True, False])
def test_a_file_it_may_not_write_can_still_be_read(folder_writable: bool) -> None:
    """Read by a user who may not write the file (as root, the test drops to 'nobody')."""
    import shutil
    import subprocess
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="engagements-read-only-"))
    try:
        path = folder / "engagements.sqlite"
        store = LocalStore(path)
        store.upsert_engagement("openscience", "Open Science", {})
        store.plan_milestone("openscience", "technical_meeting_held", None)
        path.chmod(0o444)
        folder.chmod(0o777 if folder_writable else 0o555)
        python, as_nobody = another_user_python()
        plugins = Path(__file__).resolve().parents[2] / "plugins"
        result = subprocess.run(
            [python, "-c", READ_AS_ANOTHER_USER, str(path), str(plugins)],
            capture_output=True,
            text=True,
            preexec_fn=as_nobody,
            check=False,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.split() == ["Open", "Science", "1"]
        with sqlite3.connect(path) as db:
            assert db.execute("SELECT name FROM engagements").fetchone() == ("Open Science",)
    finally:
        folder.chmod(0o755)
        shutil.rmtree(folder)


@pytest.mark.parametrize(
    ("table", "column", "value", "reason"),
    [
        ("engagements", "config", "{not json", "its JSON is not valid"),
        ("engagements", "config", "[1, 2]", "config is not a JSON object"),
        ("engagements", "status", "Paused", "'Paused' is not a valid EngagementStatus"),
        ("milestones", "due", "2027-02-30", "day is out of range"),
        ("actions", "detail", "nope", "its JSON is not valid"),
    ],
)
def test_a_record_that_cannot_be_decoded_names_the_store_and_the_record(
    tmp_path: Path, table: str, column: str, value: str, reason: str
) -> None:
    path = tmp_path / "engagements.sqlite"
    store = LocalStore(path)
    store.upsert_engagement("openscience", "Open Science", {})
    store.plan_milestone("openscience", "technical_meeting_held", dt.date(2027, 1, 1))
    store.record_action("openscience", "email:welcome", "email")
    with sqlite3.connect(path) as db:
        db.execute(f"UPDATE {table} SET {column} = ?", (value,))

    read = {
        "engagements": lambda: store.get_engagement("openscience"),
        "milestones": lambda: store.list_milestones("openscience"),
        "actions": lambda: store.get_action("openscience", "email:welcome"),
    }[table]
    with pytest.raises(StoreError) as caught:
        read()
    message = str(caught.value)
    assert message.startswith(f"SQLite store {path}: ")
    assert "'openscience" in message
    assert reason in message
