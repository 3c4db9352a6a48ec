"""The embedded engagement store: one SQLite file, no account needed.

Airflow tasks and the CLI may use the same file at the same time from several processes, so
every method is one transaction: WAL journal (readers and the writer never wait for each
other), a busy timeout instead of immediate "database is locked" errors, ``BEGIN IMMEDIATE``
for read-modify-write, and primary keys that make a repeated write find the first one instead
of adding a duplicate. Datetimes are stored as UTC ISO strings, mappings as JSON text.

Only a write creates the file (and its schema); a read of a file that does not exist finds
nothing and creates nothing, and a read never takes the write lock, so it also works on a file
it may not write. A record that cannot be decoded (edited by hand into something else) is a
:class:`StoreError` naming the file and the record.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

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

T = TypeVar("T")

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

    ``timeout`` is how long (seconds) a write waits for another process's write to finish
    before it gives up with :class:`StoreUnavailable`. Nothing touches the file until the
    first write, which creates it with its schema; its folder must exist.
    """

    backend = "local"
    """Which store this is, for messages that tell people how to record something in it."""

    def __init__(self, path: str | Path, *, timeout: float = 30.0) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self._ready = False
        self._recorded_at = False

    def __repr__(self) -> str:
        return f"LocalStore({str(self.path)!r})"

    @property
    def exists(self) -> bool:
        """Whether the file exists (anything was ever recorded here)."""
        return self.path.is_file()

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
        rows = self._read(
            f"read engagement {community_id!r}",
            "SELECT * FROM engagements WHERE community_id = ?",
            (community_id,),
        )
        return self._decode(_to_engagement, rows[0]) if rows else None

    def list_engagements(self, status: EngagementStatus | None = None) -> list[Engagement]:
        if status is None:
            rows = self._read("list engagements", "SELECT * FROM engagements ORDER BY community_id")
        else:
            rows = self._read(
                "list engagements",
                "SELECT * FROM engagements WHERE status = ? ORDER BY community_id",
                (EngagementStatus(status).value,),
            )
        return [self._decode(_to_engagement, row) for row in rows]

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
            return [_to_contact(row) for row in db.execute(*_contacts_query(community_id))]

    def list_contacts(self, community_id: str | None = None) -> list[Contact]:
        rows = self._read(f"list contacts of {whose(community_id)}", *_contacts_query(community_id))
        return [_to_contact(row) for row in rows]

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
            return self._milestone(db, community_id, milestone)

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
            return self._milestone(db, community_id, milestone)

    def get_milestone(self, community_id: str, milestone: str) -> MilestoneRecord | None:
        rows = self._read(
            f"read milestone {milestone!r}",
            "SELECT * FROM milestones WHERE community_id = ? AND milestone = ?",
            (community_id, milestone),
        )
        return self._decode(_to_milestone, rows[0]) if rows else None

    def list_milestones(self, community_id: str | None = None) -> list[MilestoneRecord]:
        where, params = _of(community_id)
        rows = self._read(
            f"list milestones of {whose(community_id)}",
            f"SELECT * FROM milestones{where} ORDER BY community_id, due IS NULL, due, milestone",
            params,
        )
        return [self._decode(_to_milestone, row) for row in rows]

    def list_milestones_recorded_since(self, since: dt.datetime) -> list[MilestoneRecord]:
        # A file no write has given ``recorded_at`` yet holds only older recordings: their
        # ``done_at`` is when they were written.
        stamp = "recorded_at" if self._has_recorded_at() else "done_at"
        rows = self._read(
            "list milestones recorded since " + _iso(as_utc(since)),
            f"SELECT * FROM milestones WHERE {stamp} > ?"
            " ORDER BY community_id, due IS NULL, due, milestone",
            (_iso(as_utc(since)),),
        )
        return [self._decode(_to_milestone, row) for row in rows]

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
            return [self._milestone(db, c, m) for c, m, _ in plans]

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
            return self._action(db, community_id, key)

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
            return [self._action(db, a.community_id, a.key) for a in actions]

    def update_action(self, community_id: str, key: str, detail: dict[str, Any]) -> ActionRecord:
        with self._transaction(f"update action {key!r}", write=True) as db:
            cursor = db.execute(
                "UPDATE actions SET detail = ? WHERE community_id = ? AND key = ?",
                (json.dumps(detail), community_id, key),
            )
            if cursor.rowcount == 0:
                raise NotFound(f"no action {key!r} for community {community_id!r}")
            return self._action(db, community_id, key)

    def get_action(self, community_id: str, key: str) -> ActionRecord | None:
        rows = self._read(
            f"read action {key!r}",
            "SELECT * FROM actions WHERE community_id = ? AND key = ?",
            (community_id, key),
        )
        return self._decode(_to_action, rows[0]) if rows else None

    def list_actions(
        self, community_id: str | None = None, kind: str | None = None
    ) -> list[ActionRecord]:
        where, params = _of(community_id)
        if kind is not None:
            where += " AND kind = ?" if where else " WHERE kind = ?"
            params += (kind,)
        rows = self._read(
            f"list actions of {whose(community_id)}",
            f"SELECT * FROM actions{where} ORDER BY community_id, created_at, key",
            params,
        )
        return [self._decode(_to_action, row) for row in rows]

    # plumbing

    def _read(self, what: str, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        """The rows of one query, in one read transaction that never takes the write lock.

        A file that does not exist has no rows, and is not created. A file this process may
        not write (or whose folder it may not write) is read as an unchanging snapshot.
        """
        if not self.exists:
            self._check_folder()
            return []
        try:
            return self._query(self._open(), sql, params)
        except sqlite3.OperationalError as exc:
            if getattr(exc, "sqlite_errorcode", 0) & 0xFF != sqlite3.SQLITE_READONLY:
                raise self._error(what, exc, wrote=False) from exc
            try:  # no -shm file and no right to create one: read the file as it is
                return self._query(self._open(immutable=True), sql, params)
            except sqlite3.Error as again:
                raise self._error(what, again, wrote=False) from again
        except sqlite3.Error as exc:
            raise self._error(what, exc, wrote=False) from exc

    @staticmethod
    def _query(db: sqlite3.Connection, sql: str, params: tuple[Any, ...]) -> list[sqlite3.Row]:
        try:
            db.execute("BEGIN")
            rows = db.execute(sql, params).fetchall()
            db.execute("COMMIT")
            return rows
        finally:
            db.close()

    def _has_recorded_at(self) -> bool:
        """Whether the milestones table has ``recorded_at`` (every write since adds it)."""
        if not self._recorded_at:
            rows = self._read(
                "read the milestones table's columns",
                "SELECT name FROM pragma_table_info('milestones') WHERE name = 'recorded_at'",
            )
            self._recorded_at = bool(rows)
        return self._recorded_at

    def _open(self, *, immutable: bool = False) -> sqlite3.Connection:
        """A read-only connection: it can never create the file or write to it."""
        mode = "ro&immutable=1" if immutable else "ro"
        uri = f"{self.path.resolve().as_uri()}?mode={mode}"
        db = sqlite3.connect(uri, uri=True, timeout=self.timeout, isolation_level=None)
        db.row_factory = sqlite3.Row
        return db

    @contextmanager
    def _transaction(self, what: str, *, write: bool = False) -> Iterator[sqlite3.Connection]:
        """One write transaction on a fresh connection; any failure rolls back everything.

        A connection per call keeps the store safe to use from threads and forked workers; the
        price is a WAL checkpoint when the last connection closes (milliseconds per write).
        """
        try:
            db = self._connect()
        except sqlite3.Error as exc:
            raise self._error(what, exc) from exc
        try:
            db.execute("BEGIN IMMEDIATE")
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
        """A connection for writing; the first one creates the file and its schema."""
        if not self._ready:
            self._check_folder()
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
            self._ready = self._recorded_at = True
        db.execute("PRAGMA synchronous = NORMAL")
        return db

    def _check_folder(self) -> None:
        """A missing folder is a wrong path, not a place to create: nothing is made there."""
        if not self.path.parent.is_dir():
            raise StoreError(
                f"SQLite store {self.path}: the folder {self.path.parent} does not exist; "
                "check ENGAGEMENTS_STORE_PATH (or engagements_store_path); nothing was written"
            )

    def _error(self, what: str, exc: sqlite3.Error, *, wrote: bool = True) -> StoreError:
        """Busy, locked, full or unreadable files are worth retrying later; the rest is a bug."""
        outcome = "nothing was written" if wrote else "nothing was read"
        message = f"SQLite store {self.path}: could not {what}: {exc}; {outcome}"
        if getattr(exc, "sqlite_errorcode", 0) & 0xFF in _TRANSIENT:
            return StoreUnavailable(message)
        return StoreError(message)

    def _decode(self, convert: Callable[[sqlite3.Row], T], row: sqlite3.Row) -> T:
        """A record as the pipelines use it; one edited into something else names itself."""
        try:
            return convert(row)
        except (ValueError, TypeError, KeyError) as exc:
            table = convert.__name__.removeprefix("_to_")
            columns = set(row.keys())
            name = "/".join(
                str(row[c]) for c in ("community_id", "milestone", "key") if c in columns
            )
            raise StoreError(
                f"SQLite store {self.path}: {table} {name!r} cannot be read: {_reason(exc)}; "
                "correct or remove that record"
            ) from exc

    def _engagement(self, db: sqlite3.Connection, community_id: str) -> Engagement:
        row = db.execute(
            "SELECT * FROM engagements WHERE community_id = ?", (community_id,)
        ).fetchone()
        if row is None:
            raise NotFound(f"no engagement for community {community_id!r}")
        return self._decode(_to_engagement, row)

    def _milestone(
        self, db: sqlite3.Connection, community_id: str, milestone: str
    ) -> MilestoneRecord:
        row = db.execute(
            "SELECT * FROM milestones WHERE community_id = ? AND milestone = ?",
            (community_id, milestone),
        ).fetchone()
        return self._decode(_to_milestone, row)

    def _action(self, db: sqlite3.Connection, community_id: str, key: str) -> ActionRecord:
        row = db.execute(
            "SELECT * FROM actions WHERE community_id = ? AND key = ?", (community_id, key)
        ).fetchone()
        return self._decode(_to_action, row)


def _reason(exc: Exception) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"its JSON is not valid ({exc.msg} at position {exc.pos})"
    return str(exc) or type(exc).__name__


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
        config=_mapping(row["config"], "config"),
        decisions=_mapping(row["decisions"], "decisions"),
        agreement_signed_community=bool(row["agreement_signed_community"]),
        agreement_signed_2i2c=bool(row["agreement_signed_2i2c"]),
        agreement_signed_css=bool(row["agreement_signed_css"]),
        agreement_url=row["agreement_url"],
        onboarding_run_id=row["onboarding_run_id"],
    )


def _of(community_id: str | None) -> tuple[str, tuple[str, ...]]:
    """The WHERE clause of a listing: one community's rows, or every community's."""
    return ("", ()) if community_id is None else (" WHERE community_id = ?", (community_id,))


def _contacts_query(community_id: str | None) -> tuple[str, tuple[str, ...]]:
    where, params = _of(community_id)
    return f"SELECT * FROM contacts{where} ORDER BY community_id, email", params


def _to_contact(row: sqlite3.Row) -> Contact:
    return Contact(
        community_id=row["community_id"],
        email=row["email"],
        name=row["name"],
        role=row["role"],
        github=row["github"],
    )


def _to_milestone(row: sqlite3.Row) -> MilestoneRecord:
    return MilestoneRecord(
        community_id=row["community_id"],
        milestone=row["milestone"],
        due=dt.date.fromisoformat(row["due"]) if row["due"] else None,
        done_at=dt.datetime.fromisoformat(row["done_at"]) if row["done_at"] else None,
        done_by=row["done_by"],
        note=row["note"],
    )


def _to_action(row: sqlite3.Row) -> ActionRecord:
    return ActionRecord(
        community_id=row["community_id"],
        key=row["key"],
        kind=row["kind"],
        created_at=dt.datetime.fromisoformat(row["created_at"]),
        detail=_mapping(row["detail"], "detail"),
    )


def _mapping(text: str, name: str) -> dict[str, Any]:
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError(f"{name} is not a JSON object")
    return value
