"""The production engagement store: four tables of one Airtable base, through pyairtable.

The base must have these tables and fields (names exactly as below; more fields are fine):

**Engagements** (one record per community)

| Field | Type | Holds |
|---|---|---|
| Community ID | single line text (primary) | the community's id, e.g. `openscience` |
| Name | single line text | the community's display name |
| Status | single select | lifecycle state (options below) |
| Config | long text | the community config as JSON |
| Decisions | long text | the technical decisions as JSON |
| Agreement signed by community | checkbox | |
| Agreement signed by 2i2c | checkbox | |
| Agreement signed by CS&S | checkbox | |
| Agreement URL | URL | link to the signed agreement |
| Onboarding run | single line text | Airflow run id of the onboarding run |

Status options: Closed-Won, Onboarding, Active, Premium referral, Renewal, Decommissioning,
Decommissioned (writes use ``typecast``, so a missing option is added on first use).

**Contacts** (one record per community and email)

| Field | Type | Holds |
|---|---|---|
| Community ID | single line text | |
| Email | email | |
| Name | single line text | |
| Role | single select | representative, technical lead, invoicing |
| GitHub | single line text | GitHub login, may be empty |

**Milestones** (one record per community and human milestone)

| Field | Type | Holds |
|---|---|---|
| Key | single line text (primary) | `<community id>/<milestone>` |
| Community ID | single line text | |
| Milestone | single line text | the milestone's name from the catalogue |
| Due | date (ISO) | runbook deadline, may be empty |
| Done at | date and time (UTC, ISO) | empty until the milestone is recorded done |
| Done by | single line text | who recorded it |
| Note | long text | |

**Actions** (one record per external action already taken)

| Field | Type | Holds |
|---|---|---|
| Key | single line text (primary) | `<community id>/<action key>` |
| Community ID | single line text | |
| Action | single line text | the action key, e.g. `email:welcome` |
| Kind | single line text | email, document, issue, ... |
| Created at | date and time (UTC, ISO) | when the action was first recorded |
| Detail | long text | JSON details (message id, path, URL, ...) |

Lookups send formulas built with :mod:`pyairtable.formulas`, so user text is always quoted
and escaped. New records are written with ``performUpsert`` on the key fields, so a retried
or repeated write updates the record it created instead of adding a duplicate. Airtable has
no transactions: two processes racing on the same milestone may both write, and the later
one's who/when is kept. Errors raise :class:`StoreUnavailable` (rate limit, 5xx, timeout,
connection) or :class:`StoreError` (anything else) naming the table, what was not done and
whether anything was written; the access token travels only in a request header and never
appears in a message.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import requests
from pyairtable import Api, retry_strategy
from pyairtable.api.types import RecordDict
from pyairtable.formulas import (
    AND,
    BLANK,
    EQ,
    IS_AFTER,
    LAST_MODIFIED_TIME,
    NOT,
    Field,
    match,
)
from pyairtable.utils import datetime_from_iso_str, datetime_to_iso_str
from urllib3 import exceptions as urllib3_errors

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

ENGAGEMENTS = "Engagements"
CONTACTS = "Contacts"
MILESTONES = "Milestones"
ACTIONS = "Actions"

COMMUNITY_ID = "Community ID"
KEY = "Key"
STATUS = "Status"
EMAIL = "Email"
DUE = "Due"
DONE_AT = "Done at"
DONE_BY = "Done by"
NOTE = "Note"
KIND = "Kind"
DETAIL = "Detail"

ENGAGEMENT_FIELD_NAMES = {
    "name": "Name",
    "status": STATUS,
    "config": "Config",
    "decisions": "Decisions",
    "agreement_signed_community": "Agreement signed by community",
    "agreement_signed_2i2c": "Agreement signed by 2i2c",
    "agreement_signed_css": "Agreement signed by CS&S",
    "agreement_url": "Agreement URL",
    "onboarding_run_id": "Onboarding run",
}
CONTACT_FIELD_NAMES = {"email": EMAIL, "name": "Name", "role": "Role", "github": "GitHub"}

DEFAULT_TIMEOUT = (5.0, 20.0)
"""Seconds to connect and to wait for an answer, per attempt."""
DEFAULT_BACKOFF = 1.0
"""Retries wait 0, 2, 4, 8 and 16 s: Airtable asks for 30 s of quiet after a 429."""
RETRY_STATUSES = (429, 500, 502, 503, 504)
PAGE_SIZE = 100  # the API's maximum
BATCH_SIZE = 10  # records per write request: the API's maximum

T = TypeVar("T")


def make_api(
    token: str,
    *,
    endpoint_url: str | None = None,
    timeout: tuple[float, float] = DEFAULT_TIMEOUT,
    retries: int = 5,
    backoff: float = DEFAULT_BACKOFF,
) -> Api:
    """A pyairtable client that retries rate limits and server errors and never waits forever.

    Every write this store makes is keyed (upsert or update by id), so retrying a request
    whose answer was lost cannot create a duplicate.
    """
    if not token:
        raise StoreError("Airtable: no access token configured")
    options: dict[str, Any] = {"endpoint_url": endpoint_url} if endpoint_url else {}
    return Api(
        token,
        timeout=timeout,
        retry_strategy=retry_strategy(
            total=retries, backoff_factor=backoff, status_forcelist=RETRY_STATUSES
        ),
        **options,
    )


class AirtableStore:
    """:class:`~engagements.store.base.EngagementStore` on an Airtable base.

    Build it from an Airflow connection with
    :meth:`engagements.hooks.airtable.AirtableHook.get_store`, or from plain credentials with
    :meth:`from_credentials` (CLI, tests). Constructing it makes no request.
    """

    backend = "airtable"
    """Which store this is, for messages that tell people how to record something in it."""

    def __init__(self, api: Api, base_id: str, *, conn_id: str | None = None) -> None:
        self.base_id = base_id
        self.conn_id = conn_id
        """The Airflow connection it was built from, if any: how another process opens it."""
        self._tables = {
            name: api.table(base_id, name) for name in (ENGAGEMENTS, CONTACTS, MILESTONES, ACTIONS)
        }

    @classmethod
    def from_credentials(
        cls,
        token: str,
        base_id: str,
        *,
        endpoint_url: str | None = None,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        retries: int = 5,
        backoff: float = DEFAULT_BACKOFF,
    ) -> AirtableStore:
        api = make_api(
            token, endpoint_url=endpoint_url, timeout=timeout, retries=retries, backoff=backoff
        )
        return cls(api, base_id)

    def __repr__(self) -> str:
        return f"AirtableStore(base_id={self.base_id!r})"

    @property
    def reference(self) -> dict[str, str]:
        reference = {"backend": "airtable", "base_id": self.base_id}
        return reference | ({"conn_id": self.conn_id} if self.conn_id else {})

    # engagements

    def upsert_engagement(
        self, community_id: str, name: str, config: dict[str, Any], **fields: Any
    ) -> Engagement:
        values = _engagement_fields(normalize_fields({"name": name, "config": config, **fields}))
        call = _Call(ENGAGEMENTS, f"save engagement {community_id!r}")
        existing = self._find(call, ENGAGEMENTS, {COMMUNITY_ID: community_id})
        if existing:
            record = call.write(
                self._tables[ENGAGEMENTS].update, existing["id"], values, typecast=True
            )
        else:
            new = {COMMUNITY_ID: community_id, STATUS: EngagementStatus.CLOSED_WON.value, **values}
            record = self._create(call, ENGAGEMENTS, new, [COMMUNITY_ID])
        return _to_engagement(record)

    def get_engagement(self, community_id: str) -> Engagement | None:
        call = _Call(ENGAGEMENTS, f"read engagement {community_id!r}")
        record = self._find(call, ENGAGEMENTS, {COMMUNITY_ID: community_id})
        return _to_engagement(record) if record else None

    def list_engagements(self, status: EngagementStatus | None = None) -> list[Engagement]:
        call = _Call(ENGAGEMENTS, "list engagements")
        where = {STATUS: EngagementStatus(status).value} if status else None
        records = self._all(call, ENGAGEMENTS, where)
        return sorted(map(_to_engagement, records), key=lambda e: e.community_id)

    def update_engagement(self, community_id: str, **fields: Any) -> Engagement:
        """One request: an upsert on the community id. Should it have created a record (no
        engagement of that id), the record is deleted again and NotFound raised."""
        values = _engagement_fields(normalize_fields(fields))
        call = _Call(ENGAGEMENTS, f"update engagement {community_id!r}")
        if not values:
            record = self._find(call, ENGAGEMENTS, {COMMUNITY_ID: community_id})
        else:
            table = self._tables[ENGAGEMENTS]
            answer = call.write(
                table.batch_upsert,
                [{"fields": {COMMUNITY_ID: community_id, **values}}],
                key_fields=[COMMUNITY_ID],
                typecast=True,
            )
            record = answer["records"][0]
            if record["id"] in answer.get("createdRecords", []):
                call.write(table.delete, record["id"])
                record = None
        if record is None:
            raise NotFound(f"no engagement for community {community_id!r}")
        return _to_engagement(record)

    # contacts

    def replace_contacts(self, community_id: str, contacts: Iterable[Contact]) -> list[Contact]:
        """Upsert new or changed contacts, then delete the rest; a re-run mends a failed delete."""
        wanted = index_contacts(community_id, contacts)
        call = _Call(CONTACTS, f"replace contacts of {community_id!r}")
        table = self._tables[CONTACTS]
        kept: dict[str, Contact] = {}
        stale: list[str] = []
        for record in self._all(call, CONTACTS, {COMMUNITY_ID: community_id}):
            contact = _to_contact(record)
            if contact.email in wanted and contact.email not in kept:
                kept[contact.email] = contact
            else:  # no longer wanted, or a duplicate row added by hand
                stale.append(record["id"])
        changed = [
            {"fields": _contact_fields(c)} for email, c in wanted.items() if kept.get(email) != c
        ]
        if changed:
            call.write(table.batch_upsert, changed, key_fields=[COMMUNITY_ID, EMAIL], typecast=True)
        if stale:
            call.write(table.batch_delete, stale)
        return sorted(wanted.values(), key=lambda c: c.email)

    def list_contacts(self, community_id: str | None = None) -> list[Contact]:
        call = _Call(CONTACTS, f"list contacts of {whose(community_id)}")
        records = self._all(call, CONTACTS, _of(community_id))
        return sorted(map(_to_contact, records), key=lambda c: (c.community_id, c.email))

    # milestones

    def plan_milestone(
        self, community_id: str, milestone: str, due: dt.date | None
    ) -> MilestoneRecord:
        key = _key(community_id, milestone)
        due_text = due.isoformat() if due else None
        call = _Call(MILESTONES, f"plan milestone {key!r}")
        record = self._find(call, MILESTONES, {KEY: key})
        if record is None:
            new = {KEY: key, COMMUNITY_ID: community_id, "Milestone": milestone, DUE: due_text}
            record = self._create(call, MILESTONES, new, [KEY])
        elif record["fields"].get(DUE) != due_text:
            update = self._tables[MILESTONES].update
            record = call.write(update, record["id"], {DUE: due_text}, typecast=True)
        return _to_milestone(record)

    def record_milestone(
        self,
        community_id: str,
        milestone: str,
        *,
        by: str,
        note: str | None = None,
        at: dt.datetime | None = None,
    ) -> MilestoneRecord:
        key = _key(community_id, milestone)
        call = _Call(MILESTONES, f"record milestone {key!r}")
        record = self._find(call, MILESTONES, {KEY: key})
        if record and record["fields"].get(DONE_AT):
            return _to_milestone(record)
        done: dict[str, Any] = {
            DONE_AT: datetime_to_iso_str(as_utc(at) if at else utc_now()),
            DONE_BY: by,
        }
        if note is not None:
            done[NOTE] = note
        if record:
            update = self._tables[MILESTONES].update
            record = call.write(update, record["id"], done, typecast=True)
        else:
            new = {KEY: key, COMMUNITY_ID: community_id, "Milestone": milestone, **done}
            record = self._create(call, MILESTONES, new, [KEY])
        return _to_milestone(record)

    def get_milestone(self, community_id: str, milestone: str) -> MilestoneRecord | None:
        key = _key(community_id, milestone)
        record = self._find(_Call(MILESTONES, f"read milestone {key!r}"), MILESTONES, {KEY: key})
        return _to_milestone(record) if record else None

    def list_milestones(self, community_id: str | None = None) -> list[MilestoneRecord]:
        call = _Call(MILESTONES, f"list milestones of {whose(community_id)}")
        records = self._all(call, MILESTONES, _of(community_id))
        return sorted(
            map(_to_milestone, records),
            key=lambda m: (m.community_id, m.due is None, m.due or dt.date.min, m.milestone),
        )

    def list_milestones_recorded_since(self, since: dt.datetime) -> list[MilestoneRecord]:
        """``Done at`` set and last modified after ``since`` (Airtable's own clock keeps the
        modification time, whatever date the person entered)."""
        call = _Call(MILESTONES, f"list milestones recorded since {datetime_to_iso_str(since)}")
        done = Field(DONE_AT)
        formula = AND(NOT(EQ(done, BLANK())), IS_AFTER(LAST_MODIFIED_TIME(done), as_utc(since)))
        records = call.read(self._tables[MILESTONES].all, formula=formula, page_size=PAGE_SIZE)
        return sorted(
            map(_to_milestone, records),
            key=lambda m: (m.community_id, m.due is None, m.due or dt.date.min, m.milestone),
        )

    def plan_milestones(
        self, plans: Iterable[tuple[str, str, dt.date | None]]
    ) -> list[MilestoneRecord]:
        """Upserts on the key, 10 a request; ``Done at`` and ``Done by`` are never sent."""
        rows = [
            {
                KEY: _key(community_id, milestone),
                COMMUNITY_ID: community_id,
                "Milestone": milestone,
                DUE: due.isoformat() if due else None,
            }
            for community_id, milestone, due in plans
        ]
        call = _Call(MILESTONES, f"plan {len(rows)} milestone(s)")
        return [_to_milestone(r) for r in self._upsert(call, MILESTONES, rows, [KEY])]

    # actions

    def save_actions(self, actions: Iterable[ActionRecord]) -> list[ActionRecord]:
        rows = [
            {
                KEY: _key(action.community_id, action.key),
                COMMUNITY_ID: action.community_id,
                "Action": action.key,
                KIND: action.kind,
                "Created at": datetime_to_iso_str(as_utc(action.created_at)),
                DETAIL: json.dumps(action.detail),
            }
            for action in actions
        ]
        call = _Call(ACTIONS, f"save {len(rows)} action(s)")
        return [_to_action(r) for r in self._upsert(call, ACTIONS, rows, [KEY])]

    def record_action(
        self, community_id: str, key: str, kind: str, detail: dict[str, Any] | None = None
    ) -> ActionRecord:
        full_key = _key(community_id, key)
        call = _Call(ACTIONS, f"record action {full_key!r}")
        record = self._find(call, ACTIONS, {KEY: full_key})
        if record is None:
            new = {
                KEY: full_key,
                COMMUNITY_ID: community_id,
                "Action": key,
                KIND: kind,
                "Created at": datetime_to_iso_str(utc_now()),
                DETAIL: json.dumps(detail or {}),
            }
            record = self._create(call, ACTIONS, new, [KEY])
        return _to_action(record)

    def update_action(self, community_id: str, key: str, detail: dict[str, Any]) -> ActionRecord:
        full_key = _key(community_id, key)
        call = _Call(ACTIONS, f"update action {full_key!r}")
        record = self._find(call, ACTIONS, {KEY: full_key})
        if record is None:
            raise NotFound(f"no action {key!r} for community {community_id!r}")
        update = self._tables[ACTIONS].update
        record = call.write(update, record["id"], {DETAIL: json.dumps(detail)}, typecast=True)
        return _to_action(record)

    def get_action(self, community_id: str, key: str) -> ActionRecord | None:
        full_key = _key(community_id, key)
        record = self._find(_Call(ACTIONS, f"read action {full_key!r}"), ACTIONS, {KEY: full_key})
        return _to_action(record) if record else None

    def list_actions(
        self, community_id: str | None = None, kind: str | None = None
    ) -> list[ActionRecord]:
        call = _Call(ACTIONS, f"list actions of {whose(community_id)}")
        where = _of(community_id)
        if kind is not None:
            where[KIND] = kind
        records = self._all(call, ACTIONS, where)
        return sorted(map(_to_action, records), key=lambda a: (a.community_id, a.created_at, a.key))

    # plumbing

    def _find(self, call: _Call, table: str, where: dict[str, str]) -> RecordDict | None:
        """The one record matching ``where`` (one request, at most one record)."""
        return call.read(self._tables[table].first, formula=match(where))

    def _all(self, call: _Call, table: str, where: dict[str, str] | None) -> list[RecordDict]:
        """Every matching record, in one pass over the pages (one request per 100 records)."""
        options: dict[str, Any] = {"page_size": PAGE_SIZE}
        if where:
            options["formula"] = match(where)
        return call.read(self._tables[table].all, **options)

    def _upsert(
        self, call: _Call, table: str, rows: list[dict[str, Any]], key_fields: list[str]
    ) -> list[RecordDict]:
        """Create or update by key, 10 records a request (the API's maximum)."""
        upsert = self._tables[table].batch_upsert
        records: list[RecordDict] = []
        for start in range(0, len(rows), BATCH_SIZE):
            batch = [{"fields": row} for row in rows[start : start + BATCH_SIZE]]
            records += call.write(upsert, batch, key_fields=key_fields, typecast=True)["records"]
        return records

    def _create(
        self, call: _Call, table: str, fields: dict[str, Any], key_fields: list[str]
    ) -> RecordDict:
        """Create by upsert on the key, so a retry or a racing writer cannot add a duplicate."""
        upsert = self._tables[table].batch_upsert
        result = call.write(upsert, [{"fields": fields}], key_fields=key_fields, typecast=True)
        return result["records"][0]


class _Call:
    """The requests of one store operation; turns client failures into a StoreError.

    The message names Airtable, the table and what was not done, and says whether anything
    may have been written: nothing, if every failed request was a read or was certainly
    refused; possibly, once a write's answer was lost (timeout, connection, 500/502/504) or
    an earlier write of the same operation went through.
    """

    def __init__(self, table: str, what: str) -> None:
        self.table = table
        self.what = what
        self.wrote = False

    def read(self, method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return self._run(method, args, kwargs, writing=False)

    def write(self, method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        result = self._run(method, args, kwargs, writing=True)
        self.wrote = True
        return result

    def _run(
        self, method: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any], writing: bool
    ) -> T:
        try:
            return method(*args, **kwargs)
        except (requests.RequestException, urllib3_errors.MaxRetryError) as exc:
            status = _status(exc)
            refused = status is not None and status not in (500, 502, 504)
            if self.wrote or (writing and not refused):
                outcome = "it may be partly written; re-running it is safe"
            else:
                outcome = "nothing was written"
            message = f"Airtable {self.table}: could not {self.what}: {_reason(exc)}; {outcome}"
            if status is None or status in RETRY_STATUSES:  # may pass; a 4xx will not
                raise StoreUnavailable(message) from exc
            raise StoreError(message) from exc


def _status(exc: Exception) -> int | None:
    """The HTTP status that ended the request (the last one, after retries); None if none."""
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return exc.response.status_code
    cause = getattr(_retried(exc), "reason", None)
    if isinstance(cause, urllib3_errors.ResponseError):  # "too many 503 error responses"
        found = re.search(r"too many (\d{3}) error", str(cause))
        return int(found.group(1)) if found else None
    return None


def _retried(exc: Exception) -> urllib3_errors.MaxRetryError | None:
    """The urllib3 error behind a request that failed after its retries, if it is one."""
    cause = exc if isinstance(exc, urllib3_errors.MaxRetryError) else (exc.args or [None])[0]
    return cause if isinstance(cause, urllib3_errors.MaxRetryError) else None


def _reason(exc: Exception) -> str:
    """A short cause, without the request's URL or headers."""
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        reason = f"HTTP {exc.response.status_code}"
        try:
            error = exc.response.json().get("error")
        except (ValueError, AttributeError):
            error = None
        if isinstance(error, dict):
            reason += f" {error.get('type', '')}: {error.get('message', '')}"
        elif error:
            reason += f" {error}"
        return reason
    retried = _retried(exc)
    if retried is not None:
        cause = retried.reason
        if isinstance(cause, urllib3_errors.ResponseError):
            return f"{cause}, after retries"
        if isinstance(cause, urllib3_errors.TimeoutError):
            return "no answer before the timeout, after retries"
        return f"connection failed ({type(cause).__name__}), after retries"
    if isinstance(exc, requests.Timeout):
        return "no answer before the timeout"
    return f"connection failed ({type(exc).__name__})"


def _of(community_id: str | None) -> dict[str, str]:
    """The match of a listing: one community's records, or (empty) every community's."""
    return {} if community_id is None else {COMMUNITY_ID: community_id}


def _key(community_id: str, name: str) -> str:
    """Community ids cannot contain '/', so the key is unambiguous."""
    return f"{community_id}/{name}"


def _engagement_fields(values: dict[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name, value in values.items():
        if name in ("config", "decisions"):
            value = json.dumps(value, indent=2)
        elif name == "status":
            value = value.value
        fields[ENGAGEMENT_FIELD_NAMES[name]] = value
    return fields


def _to_engagement(record: RecordDict) -> Engagement:
    """Airtable leaves out empty fields and unticked checkboxes; they read as defaults."""
    fields = record["fields"]
    names = ENGAGEMENT_FIELD_NAMES
    try:
        return Engagement(
            community_id=fields[COMMUNITY_ID],
            name=fields.get(names["name"], ""),
            status=EngagementStatus(fields.get(STATUS, EngagementStatus.CLOSED_WON)),
            config=_json(fields, names["config"]),
            decisions=_json(fields, names["decisions"]),
            agreement_signed_community=bool(fields.get(names["agreement_signed_community"])),
            agreement_signed_2i2c=bool(fields.get(names["agreement_signed_2i2c"])),
            agreement_signed_css=bool(fields.get(names["agreement_signed_css"])),
            agreement_url=fields.get(names["agreement_url"]),
            onboarding_run_id=fields.get(names["onboarding_run_id"]),
        )
    except (KeyError, ValueError) as exc:
        raise _bad_record(ENGAGEMENTS, record, exc) from exc


def _contact_fields(contact: Contact) -> dict[str, Any]:
    fields = {field: getattr(contact, attr) for attr, field in CONTACT_FIELD_NAMES.items()}
    return {COMMUNITY_ID: contact.community_id, **fields}


def _to_contact(record: RecordDict) -> Contact:
    fields = record["fields"]
    return Contact(
        community_id=fields.get(COMMUNITY_ID, ""),
        email=fields.get(EMAIL, ""),
        name=fields.get(CONTACT_FIELD_NAMES["name"], ""),
        role=fields.get(CONTACT_FIELD_NAMES["role"], ""),
        github=fields.get(CONTACT_FIELD_NAMES["github"]),
    )


def _to_milestone(record: RecordDict) -> MilestoneRecord:
    fields = record["fields"]
    try:
        return MilestoneRecord(
            community_id=fields[COMMUNITY_ID],
            milestone=fields["Milestone"],
            due=dt.date.fromisoformat(fields[DUE]) if fields.get(DUE) else None,
            done_at=datetime_from_iso_str(fields[DONE_AT]) if fields.get(DONE_AT) else None,
            done_by=fields.get(DONE_BY),
            note=fields.get(NOTE),
        )
    except (KeyError, ValueError) as exc:
        raise _bad_record(MILESTONES, record, exc) from exc


def _to_action(record: RecordDict) -> ActionRecord:
    fields = record["fields"]
    try:
        return ActionRecord(
            community_id=fields[COMMUNITY_ID],
            key=fields["Action"],
            kind=fields[KIND],
            created_at=datetime_from_iso_str(fields["Created at"]),
            detail=_json(fields, DETAIL),
        )
    except (KeyError, ValueError) as exc:
        raise _bad_record(ACTIONS, record, exc) from exc


def _json(fields: dict[str, Any], name: str) -> dict[str, Any]:
    text = fields.get(name)
    if not text:
        return {}
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError(f"{name} is not a JSON object")
    return value


def _bad_record(table: str, record: RecordDict, exc: Exception) -> StoreError:
    """A record edited by hand into a shape the pipelines cannot read."""
    return StoreError(f"Airtable {table}: record {record['id']} cannot be read: {exc!r}")
