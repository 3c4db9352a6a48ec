"""The embedded engagement store: one SQLite file, no account needed.

Airflow tasks and the CLI may use the same file at the same time from several processes, so
every method is one transaction: WAL journal (readers never block the writer), a busy
timeout instead of immediate "database is locked" errors, ``BEGIN IMMEDIATE`` for
read-modify-write, and primary keys that make a repeated write find the first one instead of
adding a duplicate. Datetimes are stored as UTC ISO strings, mappings as JSON text.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from engagements.store.base import (
    ActionRecord,
    Contact,
    Engagement,
    EngagementStatus,
    MilestoneRecord,
    NotFound,
    StoreError,
    StoreUnavailable,
    as_utc,
    index_contacts,
    normalize_fields,
    utc_now,
    whose,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS engagements (
    community_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    config TEXT NOT NULL,
    decisions TEXT NOT NULL DEFAULT '{}',
    agreement_signed_community INTEGER NOT NULL DEFAULT 0,
    agreement_signed_2i2c INTEGER NOT NULL DEFAULT 0,
    agreement_signed_css INTEGER NOT NULL DEFAULT 0,
    agreement_url TEXT,
    onboarding_run_id TEXT
);
CREATE TABLE IF NOT EXISTS contacts (
    community_id TEXT NOT NULL,
    email TEXT NOT NULL,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    github TEXT,
    PRIMARY KEY (community_id, email)
);
CREATE TABLE IF NOT EXISTS milestones (
    community_id TEXT NOT NULL,
    milestone TEXT NOT NULL,
    due TEXT,
    done_at TEXT,
    done_by TEXT,
    note TEXT,
    recorded_at TEXT,
    PRIMARY KEY (community_id, milestone)
);
CREATE TABLE IF NOT EXISTS actions (
    community_id TEXT NOT NULL,
    key TEXT NOT NULL,
    kind TEXT NOT NULL,
    created_at TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (community_id, key)
);
"""

RECORDED_AT_INDEX = "CREATE INDEX IF NOT EXISTS milestones_recorded_at ON milestones (recorded_at)"
"""``recorded_at`` is when a recording was written (``done_at`` is what it states): the
triggerer's shared poll asks for the milestones recorded since its last one. A store file
from before the column existed gets it, filled from ``done_at``."""

_ENGAGEMENT_COLUMNS = (
    "name",
    "status",
    "config",
    "decisions",
    "agreement_signed_community",
    "agreement_signed_2i2c",
    "agreement_signed_css",
    "agreement_url",
    "onboarding_run_id",
)

_TRANSIENT = frozenset(
    {
        sqlite3.SQLITE_BUSY,
        sqlite3.SQLITE_LOCKED,
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_FULL,
        sqlite3.SQLITE_CANTOPEN,
    }
)


class LocalStore:
    """:class:`~engagements.store.base.EngagementStore` on a SQLite file.

    ``timeout`` is how long (seconds) a call waits for another process's write to finish
    before it gives up with :class:`StoreUnavailable`. Nothing touches the file until the
    first call, which creates the parent folder and the schema.
    """

    def __init__(self, path: str | Path, *, timeout: float = 30.0) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self._ready = False

    def __repr__(self) -> str:
        return f"LocalStore({str(self.path)!r})"

    @property
    def reference(self) -> dict[str, str]:
        return {"backend": "local", "path": str(self.path)}

    # engagements

    def upsert_engagement(
        self, community_id: str, name: str, config: dict[str, Any], **fields: Any
    ) -> Engagement:
        row = _engagement_row(normalize_fields({"name": name, "config": config, **fields}))
        # A new record starts as Closed-Won; an existing one keeps its status unless given.
        insert = {"community_id": community_id, "status": EngagementStatus.CLOSED_WON.value, **row}
        updates = ", ".join(f"{c} = excluded.{c}" for c in row)
        with self._transaction(f"save engagement {community_id!r}", write=True) as db:
            db.execute(
                f"INSERT INTO engagements ({', '.join(insert)})"
                f" VALUES ({', '.join('?' * len(insert))})"
                f" ON CONFLICT (community_id) DO UPDATE SET {updates}",
                tuple(insert.values()),
            )
            return self._engagement(db, community_id)

    def get_engagement(self, community_id: str) -> Engagement | None:
        with self._transaction(f"read engagement {community_id!r}") as db:
            row = db.execute(
                "SELECT * FROM engagements WHERE community_id = ?", (community_id,)
            ).fetchone()
        return _to_engagement(row) if row else None

    def list_engagements(self, status: EngagementStatus | None = None) -> list[Engagement]:
        with self._transaction("list engagements") as db:
            if status is None:
                rows = db.execute("SELECT * FROM engagements ORDER BY community_id").fetchall()
            else:
                rows = db.execute(
                    "SELECT * FROM engagements WHERE status = ? ORDER BY community_id",
                    (EngagementStatus(status).value,),
                ).fetchall()
        return [_to_engagement(row) for row in rows]

    def update_engagement(self, community_id: str, **fields: Any) -> Engagement:
        row = _engagement_row(normalize_fields(fields))
        with self._transaction(f"update engagement {community_id!r}", write=True) as db:
            if row:
                cursor = db.execute(
                    f"UPDATE engagements SET {', '.join(f'{c} = ?' for c in row)}"
                    " WHERE community_id = ?",
                    (*row.values(), community_id),
                )
                if cursor.rowcount == 0:
                    raise NotFound(f"no engagement for community {community_id!r}")
            return self._engagement(db, community_id)

    # contacts

    def replace_contacts(self, community_id: str, contacts: Iterable[Contact]) -> list[Contact]:
        wanted = index_contacts(community_id, contacts)
        with self._transaction(f"replace contacts of {community_id!r}", write=True) as db:
            marks = ", ".join("?" * len(wanted))
            db.execute(
                f"DELETE FROM contacts WHERE community_id = ? AND email NOT IN ({marks})",
                (community_id, *wanted),
            )
            db.executemany(
                "INSERT INTO contacts (community_id, email, name, role, github)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (community_id, email) DO UPDATE SET"
                " name = excluded.name, role = excluded.role, github = excluded.github",
                [(community_id, c.email, c.name, c.role, c.github) for c in wanted.values()],
            )
            return _contacts(db, community_id)

    def list_contacts(self, community_id: str | None = None) -> list[Contact]:
        with self._transaction(f"list contacts of {whose(community_id)}") as db:
            return _contacts(db, community_id)

    # milestones

    def plan_milestone(
        self, community_id: str, milestone: str, due: dt.date | None
    ) -> MilestoneRecord:
        with self._transaction(f"plan milestone {milestone!r}", write=True) as db:
            db.execute(
                "INSERT INTO milestones (community_id, milestone, due) VALUES (?, ?, ?)"
                " ON CONFLICT (community_id, milestone) DO UPDATE SET due = excluded.due",
                (community_id, milestone, due.isoformat() if due else None),
            )
            return _milestone(db, community_id, milestone)

    def record_milestone(
        self,
        community_id: str,
        milestone: str,
        *,
        by: str,
        note: str | None = None,
        at: dt.datetime | None = None,
    ) -> MilestoneRecord:
        done_at = as_utc(at) if at else utc_now()
        with self._transaction(f"record milestone {milestone!r}", write=True) as db:
            # The WHERE clause makes a second recording a no-op: the first who/when stay.
            db.execute(
                "INSERT INTO milestones"
                " (community_id, milestone, done_at, done_by, note, recorded_at)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (community_id, milestone) DO UPDATE SET"
                " done_at = excluded.done_at, done_by = excluded.done_by,"
                " note = COALESCE(excluded.note, note), recorded_at = excluded.recorded_at"
                " WHERE done_at IS NULL",
                (community_id, milestone, _iso(done_at), by, note, _iso(utc_now())),
            )
            return _milestone(db, community_id, milestone)

    def get_milestone(self, community_id: str, milestone: str) -> MilestoneRecord | None:
        with self._transaction(f"read milestone {milestone!r}") as db:
            row = db.execute(
                "SELECT * FROM milestones WHERE community_id = ? AND milestone = ?",
                (community_id, milestone),
            ).fetchone()
        return _to_milestone(row) if row else None

    def list_milestones(self, community_id: str | None = None) -> list[MilestoneRecord]:
        where, params = _of(community_id)
        with self._transaction(f"list milestones of {whose(community_id)}") as db:
            rows = db.execute(
                f"SELECT * FROM milestones{where}"
                " ORDER BY community_id, due IS NULL, due, milestone",
                params,
            ).fetchall()
        return [_to_milestone(row) for row in rows]

    def list_milestones_recorded_since(self, since: dt.datetime) -> list[MilestoneRecord]:
        with self._transaction("list milestones recorded since " + _iso(as_utc(since))) as db:
            rows = db.execute(
                "SELECT * FROM milestones WHERE recorded_at > ?"
                " ORDER BY community_id, due IS NULL, due, milestone",
                (_iso(as_utc(since)),),
            ).fetchall()
        return [_to_milestone(row) for row in rows]

    def plan_milestones(
        self, plans: Iterable[tuple[str, str, dt.date | None]]
    ) -> list[MilestoneRecord]:
        plans = list(plans)
        with self._transaction(f"plan {len(plans)} milestone(s)", write=True) as db:
            db.executemany(
                "INSERT INTO milestones (community_id, milestone, due) VALUES (?, ?, ?)"
                " ON CONFLICT (community_id, milestone) DO UPDATE SET due = excluded.due",
                [(c, m, due.isoformat() if due else None) for c, m, due in plans],
            )
            return [_milestone(db, c, m) for c, m, _ in plans]

    # actions

    def record_action(
        self, community_id: str, key: str, kind: str, detail: dict[str, Any] | None = None
    ) -> ActionRecord:
        with self._transaction(f"record action {key!r}", write=True) as db:
            db.execute(
                "INSERT INTO actions (community_id, key, kind, created_at, detail)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (community_id, key) DO NOTHING",
                (community_id, key, kind, _iso(utc_now()), json.dumps(detail or {})),
            )
            return _action(db, community_id, key)

    def save_actions(self, actions: Iterable[ActionRecord]) -> list[ActionRecord]:
        actions = list(actions)
        with self._transaction(f"save {len(actions)} action(s)", write=True) as db:
            db.executemany(
                "INSERT INTO actions (community_id, key, kind, created_at, detail)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (community_id, key) DO UPDATE SET"
                " kind = excluded.kind, created_at = excluded.created_at,"
                " detail = excluded.detail",
                [
                    (
                        a.community_id,
                        a.key,
                        a.kind,
                        _iso(as_utc(a.created_at)),
                        json.dumps(a.detail),
                    )
                    for a in actions
                ],
            )
            return [_action(db, a.community_id, a.key) for a in actions]

    def update_action(self, community_id: str, key: str, detail: dict[str, Any]) -> ActionRecord:
        with self._transaction(f"update action {key!r}", write=True) as db:
            cursor = db.execute(
                "UPDATE actions SET detail = ? WHERE community_id = ? AND key = ?",
                (json.dumps(detail), community_id, key),
            )
            if cursor.rowcount == 0:
                raise NotFound(f"no action {key!r} for community {community_id!r}")
            return _action(db, community_id, key)

    def get_action(self, community_id: str, key: str) -> ActionRecord | None:
        with self._transaction(f"read action {key!r}") as db:
            row = db.execute(
                "SELECT * FROM actions WHERE community_id = ? AND key = ?", (community_id, key)
            ).fetchone()
        return _to_action(row) if row else None

    def list_actions(
        self, community_id: str | None = None, kind: str | None = None
    ) -> list[ActionRecord]:
        where, params = _of(community_id)
        if kind is not None:
            where += " AND kind = ?" if where else " WHERE kind = ?"
            params += (kind,)
        with self._transaction(f"list actions of {whose(community_id)}") as db:
            rows = db.execute(
                f"SELECT * FROM actions{where} ORDER BY community_id, created_at, key", params
            ).fetchall()
        return [_to_action(row) for row in rows]

    # plumbing

    @contextmanager
    def _transaction(self, what: str, *, write: bool = False) -> Iterator[sqlite3.Connection]:
        """One transaction on a fresh connection; any SQLite failure rolls back everything.

        A connection per call keeps the store safe to use from threads and forked workers; the
        price is a WAL checkpoint when the last connection closes (milliseconds per write).
        """
        try:
            db = self._connect()
        except sqlite3.Error as exc:
            raise self._error(what, exc) from exc
        try:
            db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            yield db
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise self._error(what, exc) from exc
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        finally:
            db.close()

    def _connect(self) -> sqlite3.Connection:
        if not self._ready:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
        db.row_factory = sqlite3.Row
        if not self._ready:
            try:
                db.execute("PRAGMA journal_mode = WAL")
                db.executescript(f"BEGIN IMMEDIATE;{SCHEMA}COMMIT;")
                _add_recorded_at(db)
            except BaseException:
                db.close()
                raise
            self._ready = True
        db.execute("PRAGMA synchronous = NORMAL")
        return db

    def _error(self, what: str, exc: sqlite3.Error) -> StoreError:
        """Busy, locked, full or unreadable files are worth retrying later; the rest is a bug."""
        message = f"SQLite store {self.path}: could not {what}: {exc}; nothing was written"
        if getattr(exc, "sqlite_errorcode", 0) & 0xFF in _TRANSIENT:
            return StoreUnavailable(message)
        return StoreError(message)

    def _engagement(self, db: sqlite3.Connection, community_id: str) -> Engagement:
        row = db.execute(
            "SELECT * FROM engagements WHERE community_id = ?", (community_id,)
        ).fetchone()
        if row is None:
            raise NotFound(f"no engagement for community {community_id!r}")
        return _to_engagement(row)


def _add_recorded_at(db: sqlite3.Connection) -> None:
    """Give a store file written before ``recorded_at`` existed the column and its index."""
    db.execute("BEGIN IMMEDIATE")
    try:
        columns = {row["name"] for row in db.execute("PRAGMA table_info(milestones)")}
        if "recorded_at" not in columns:
            db.execute("ALTER TABLE milestones ADD COLUMN recorded_at TEXT")
            db.execute("UPDATE milestones SET recorded_at = done_at WHERE done_at IS NOT NULL")
        db.execute(RECORDED_AT_INDEX)
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


def _iso(moment: dt.datetime) -> str:
    """One fixed width, so that text order is time order (ORDER BY created_at)."""
    return moment.isoformat(timespec="milliseconds")


def _engagement_row(values: dict[str, Any]) -> dict[str, Any]:
    """Column values for the given (already normalized) engagement fields, in schema order.

    Only names from ``_ENGAGEMENT_COLUMNS`` reach the SQL text; values are always bound.
    """
    row: dict[str, Any] = {}
    for column in _ENGAGEMENT_COLUMNS:
        if column not in values:
            continue
        value = values[column]
        if column in ("config", "decisions"):
            value = json.dumps(value)
        elif column == "status":
            value = value.value
        row[column] = value
    return row


def _to_engagement(row: sqlite3.Row) -> Engagement:
    return Engagement(
        community_id=row["community_id"],
        name=row["name"],
        status=EngagementStatus(row["status"]),
        config=json.loads(row["config"]),
        decisions=json.loads(row["decisions"]),
        agreement_signed_community=bool(row["agreement_signed_community"]),
        agreement_signed_2i2c=bool(row["agreement_signed_2i2c"]),
        agreement_signed_css=bool(row["agreement_signed_css"]),
        agreement_url=row["agreement_url"],
        onboarding_run_id=row["onboarding_run_id"],
    )


def _of(community_id: str | None) -> tuple[str, tuple[str, ...]]:
    """The WHERE clause of a listing: one community's rows, or every community's."""
    return ("", ()) if community_id is None else (" WHERE community_id = ?", (community_id,))


def _contacts(db: sqlite3.Connection, community_id: str | None) -> list[Contact]:
    where, params = _of(community_id)
    rows = db.execute(
        f"SELECT * FROM contacts{where} ORDER BY community_id, email", params
    ).fetchall()
    return [
        Contact(
            community_id=row["community_id"],
            email=row["email"],
            name=row["name"],
            role=row["role"],
            github=row["github"],
        )
        for row in rows
    ]


def _milestone(db: sqlite3.Connection, community_id: str, milestone: str) -> MilestoneRecord:
    row = db.execute(
        "SELECT * FROM milestones WHERE community_id = ? AND milestone = ?",
        (community_id, milestone),
    ).fetchone()
    return _to_milestone(row)


def _to_milestone(row: sqlite3.Row) -> MilestoneRecord:
    return MilestoneRecord(
        community_id=row["community_id"],
        milestone=row["milestone"],
        due=dt.date.fromisoformat(row["due"]) if row["due"] else None,
        done_at=dt.datetime.fromisoformat(row["done_at"]) if row["done_at"] else None,
        done_by=row["done_by"],
        note=row["note"],
    )


def _action(db: sqlite3.Connection, community_id: str, key: str) -> ActionRecord:
    row = db.execute(
        "SELECT * FROM actions WHERE community_id = ? AND key = ?", (community_id, key)
    ).fetchone()
    return _to_action(row)


def _to_action(row: sqlite3.Row) -> ActionRecord:
    return ActionRecord(
        community_id=row["community_id"],
        key=row["key"],
        kind=row["kind"],
        created_at=dt.datetime.fromisoformat(row["created_at"]),
        detail=json.loads(row["detail"]),
    )
