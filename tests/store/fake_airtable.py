"""An HTTP-level fake of the Airtable REST API v0 on 127.0.0.1.

pyairtable's own ``MockAirtable`` replaces ``Table`` methods and ignores formulas, so it
cannot show that a lookup finds the right record, that paging works, or that retries and
timeouts behave. This fake is a real HTTP server answering in the API's shape, so the store
runs through pyairtable, requests and urllib3 exactly as in production:

- ``GET /v0/{base}/{table}`` with ``filterByFormula``, ``pageSize`` (at most 100),
  ``maxRecords`` and ``offset``; ``GET /v0/{base}/{table}/{id}``;
- ``POST`` one record (``{"fields": ...}``) or up to 10 (``{"records": [...]}``);
- ``PATCH`` one record by id, up to 10 by id, or an upsert (``performUpsert``);
- ``DELETE`` one record by id, or up to 10 with ``records[]``.

It checks what the real service checks and a careless client gets wrong: the bearer token
(401), the table (422) and field names (422), value types, single-select options without
``typecast`` (422), and formulas, which it parses and evaluates for the subset that
:mod:`pyairtable.formulas` generates (``AND``/``OR``/``NOT``, ``TRUE()``/``FALSE()``/
``BLANK()``, comparisons of ``{Field}`` with quoted text or numbers, backslash escapes, and
``IS_AFTER``/``DATETIME_PARSE``/``LAST_MODIFIED_TIME({Field}, ...)`` on date-times: the fake
keeps when each field of a record was last modified, as Airtable does); anything else is
rejected with 422 ``INVALID_FILTER_BY_FORMULA``, as a wrongly built formula would be by
Airtable. Every request is recorded, and faults can be injected: the next
requests answer 429/5xx, or stall past the client's timeout.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
import threading
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

TABLES: dict[str, dict[str, str]] = {
    "Engagements": {
        "Community ID": "text",
        "Name": "text",
        "Status": "select",
        "Config": "text",
        "Decisions": "text",
        "Agreement signed by community": "checkbox",
        "Agreement signed by 2i2c": "checkbox",
        "Agreement signed by CS&S": "checkbox",
        "Agreement URL": "text",
        "Onboarding run": "text",
    },
    "Contacts": {
        "Community ID": "text",
        "Email": "text",
        "Name": "text",
        "Role": "select",
        "GitHub": "text",
    },
    "Milestones": {
        "Key": "text",
        "Community ID": "text",
        "Milestone": "text",
        "Due": "date",
        "Done at": "datetime",
        "Done by": "text",
        "Note": "text",
    },
    "Actions": {
        "Key": "text",
        "Community ID": "text",
        "Action": "text",
        "Kind": "text",
        "Created at": "datetime",
        "Detail": "text",
    },
}
"""The base's schema as documented in ``engagements.store.airtable`` (written out again here
on purpose: the fake checks the store against the documentation, not against itself)."""

MAX_PAGE_SIZE = 100
MAX_RECORDS_PER_WRITE = 10


class ApiError(Exception):
    """An error answer: HTTP status and Airtable's ``{"error": {"type", "message"}}``."""

    def __init__(self, status: int, type_: str, message: str = "") -> None:
        super().__init__(f"{status} {type_}: {message}")
        self.status = status
        self.body = {"error": {"type": type_, "message": message}}


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    status: int


@dataclass
class _Fault:
    remaining: int
    status: int | None
    delay: float
    methods: Collection[str] | None


# formulas ---------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"\s*(?:(?P<number>\d+(?:\.\d+)?)|(?P<name>[A-Z_][A-Z0-9_]*)|(?P<op>!=|<=|>=|[=<>(),-])"
    r"|(?P<field>\{)|(?P<string>['\"]))"
)
_FUNCTIONS: dict[str, tuple[int, int | None]] = {  # name: (min args, max args)
    "AND": (1, None),
    "OR": (1, None),
    "NOT": (1, 1),
    "TRUE": (0, 0),
    "FALSE": (0, 0),
    "BLANK": (0, 0),
    "IS_AFTER": (2, 2),
    "DATETIME_PARSE": (1, 1),
    "LAST_MODIFIED_TIME": (0, None),
}
Evaluator = Callable[[dict[str, Any]], Any]
MODIFIED = object()
"""Key, in the mapping a formula is evaluated on, of ``{field: when last modified}``."""


class FormulaError(ValueError):
    pass


def parse_formula(text: str, fields: Collection[str]) -> Evaluator:
    """Compile a formula into a function of a record's fields; FormulaError if invalid."""
    tokens = list(_tokenize(text))
    position = 0

    def peek() -> tuple[str, Any] | None:
        return tokens[position] if position < len(tokens) else None

    def take(kind: str | None = None, value: Any = None) -> tuple[str, Any]:
        nonlocal position
        token = peek()
        if token is None or (kind and token[0] != kind) or (value and token[1] != value):
            raise FormulaError(f"unexpected {token[1] if token else 'end'!r} in {text!r}")
        position += 1
        return token

    def comparison() -> Evaluator:
        left = operand()
        token = peek()
        if token and token[0] == "op" and token[1] in _COMPARE:
            take()
            right = operand()
            compare = _COMPARE[token[1]]
            return lambda record: compare(left(record), right(record))
        return left

    def operand() -> Evaluator:
        kind, value = take()
        if kind == "number":
            return lambda record: value
        if kind == "string":
            return lambda record: value
        if kind == "field":
            if value not in fields:
                raise FormulaError(f"Unknown field names: {value}")
            return lambda record: record.get(value)
        if kind == "op" and value == "-":
            number = take("number")[1]
            return lambda record: -number
        if kind == "op" and value == "(":
            inner = comparison()
            take("op", ")")
            return inner
        if kind == "name":
            return call(value)
        raise FormulaError(f"unexpected {value!r} in {text!r}")

    def call(name: str) -> Evaluator:
        if name not in _FUNCTIONS:
            raise FormulaError(f"unknown function {name}")
        take("op", "(")
        if name == "LAST_MODIFIED_TIME":
            return last_modified()
        args: list[Evaluator] = []
        if peek() != ("op", ")"):
            args.append(comparison())
            while peek() == ("op", ","):
                take()
                args.append(comparison())
        take("op", ")")
        low, high = _FUNCTIONS[name]
        if len(args) < low or (high is not None and len(args) > high):
            raise FormulaError(f"{name}() takes {low}..{high} arguments, not {len(args)}")
        if name == "AND":
            return lambda record: all(_truthy(a(record)) for a in args)
        if name == "OR":
            return lambda record: any(_truthy(a(record)) for a in args)
        if name == "NOT":
            return lambda record: not _truthy(args[0](record))
        if name == "DATETIME_PARSE":
            return lambda record: _moment(args[0](record))
        if name == "IS_AFTER":
            return lambda record: _after(_moment(args[0](record)), _moment(args[1](record)))
        constant = {"TRUE": True, "FALSE": False, "BLANK": None}[name]
        return lambda record: constant

    def last_modified() -> Evaluator:
        """``LAST_MODIFIED_TIME({A}, {B})``: the latest change of those fields (any field if
        none is named); blank if none was ever set."""
        names: list[str] = []
        while peek() != ("op", ")"):
            if names:
                take("op", ",")
            name = take("field")[1]
            if name not in fields:
                raise FormulaError(f"Unknown field names: {name}")
            names.append(name)
        take("op", ")")

        def evaluate(record: dict[str, Any]) -> Any:
            changed = record.get(MODIFIED, {})
            times = [changed[n] for n in (names or changed) if n in changed]
            return max(times, key=_moment) if times else None

        return evaluate

    if not tokens:
        raise FormulaError("empty formula")
    evaluator = comparison()
    if position != len(tokens):
        raise FormulaError(f"unexpected {tokens[position][1]!r} in {text!r}")
    return evaluator


def _tokenize(text: str) -> Iterator[tuple[str, Any]]:
    position = 0
    while position < len(text):
        if text[position:].isspace():
            return
        match = _TOKEN.match(text, position)
        if match is None:
            raise FormulaError(f"cannot read {text[position:]!r}")
        kind = match.lastgroup or ""
        position = match.end()
        if kind == "number":
            yield kind, float(match.group(kind))
        elif kind in ("field", "string"):
            closing = "}" if kind == "field" else match.group(kind)
            value, position = _read_quoted(text, position, closing)
            yield kind, value
        else:
            yield kind, match.group(kind)


def _read_quoted(text: str, position: int, closing: str) -> tuple[str, int]:
    """Text up to the unescaped ``closing`` character; a backslash escapes the next one."""
    chars: list[str] = []
    while position < len(text):
        char = text[position]
        if char == "\\" and position + 1 < len(text):
            chars.append(text[position + 1])
            position += 2
        elif char == closing:
            return "".join(chars), position + 1
        else:
            chars.append(char)
            position += 1
    raise FormulaError(f"unterminated {closing!r} in {text!r}")


def _value(value: Any) -> Any:
    """Formula semantics: a checkbox or boolean is 1/0; an empty cell is blank (None)."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        return float(value)
    return value if value != "" else None


def _equal(left: Any, right: Any) -> bool:
    left, right = _value(left), _value(right)
    if left is None or right is None:  # blank equals blank, '' and 0
        return (left or right) in (None, 0.0)
    return type(left) is type(right) and left == right


def _ordered(check: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def compare(left: Any, right: Any) -> bool:
        left, right = _value(left), _value(right)
        return type(left) is type(right) and left is not None and check(left, right)

    return compare


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": _equal,
    "!=": lambda left, right: not _equal(left, right),
    "<": _ordered(lambda a, b: a < b),
    ">": _ordered(lambda a, b: a > b),
    "<=": _ordered(lambda a, b: a <= b),
    ">=": _ordered(lambda a, b: a >= b),
}


def _truthy(value: Any) -> bool:
    return _value(value) not in (None, 0.0)


def _moment(value: Any) -> dt.datetime | None:
    """A date-time from ISO text (UTC when no zone is given, as Airtable's API does)."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value
    try:
        moment = dt.datetime.fromisoformat(str(value))
    except ValueError as exc:
        raise FormulaError(f"cannot read {value!r} as a date") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _after(left: dt.datetime | None, right: dt.datetime | None) -> bool | None:
    return None if left is None or right is None else left > right


# the service ------------------------------------------------------------------------------


class FakeAirtable:
    """One Airtable base served on 127.0.0.1; use as a context manager (start/stop)."""

    def __init__(
        self, token: str, base_id: str, tables: dict[str, dict[str, str]] | None = None
    ) -> None:
        self.token = token
        self.base_id = base_id
        self.schema = tables or TABLES
        self.requests: list[Request] = []
        self._records: dict[str, dict[str, dict[str, Any]]] = {t: {} for t in self.schema}
        self._modified: dict[str, dict[str, dict[str, str]]] = {t: {} for t in self.schema}
        self._options: dict[tuple[str, str], set[str]] = {}
        self._faults: list[_Fault] = []
        self._next_id = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: _Server | None = None

    # lifecycle

    def __enter__(self) -> FakeAirtable:
        self._server = _Server(self)
        serve = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        serve.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stopping.set()  # wakes stalled requests
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server, "the fake is not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # test helpers

    def records(self, table: str) -> list[dict[str, Any]]:
        with self._lock:
            return json.loads(json.dumps(list(self._records[table].values())))

    def seed(self, table: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Add records as someone editing the base would (select options are created)."""
        with self._lock:
            return [self._create(table, fields, typecast=True) for fields in rows]

    def edit(self, table: str, where: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
        """Change the one record matching ``where`` as a person in the base would."""
        with self._lock:
            (record,) = [
                r
                for r in self._records[table].values()
                if all(r["fields"].get(k) == v for k, v in where.items())
            ]
            return copy.deepcopy(self._update(table, record["id"], fields, typecast=True))

    def dump(self) -> str:
        """Everything the base holds, as text (to look for things that must not be there)."""
        with self._lock:
            return json.dumps(self._records)

    def requests_to(self, table: str, method: str = "GET") -> list[Request]:
        prefix = f"/v0/{self.base_id}/{table}"
        return [
            r
            for r in self.requests
            if r.method == method and (r.path == prefix or r.path.startswith(prefix + "/"))
        ]

    def fail_next(self, count: int, status: int, *, methods: Collection[str] | None = None) -> None:
        """The next ``count`` requests (of these methods) answer ``status``."""
        self._faults.append(_Fault(count, status, 0.0, methods))

    def stall_next(
        self, count: int, seconds: float, *, methods: Collection[str] | None = None
    ) -> None:
        """The next ``count`` requests are answered only after ``seconds`` (then processed)."""
        self._faults.append(_Fault(count, None, seconds, methods))

    # request handling

    def handle(
        self, method: str, raw_path: str, authorization: str | None, body: bytes
    ) -> tuple[int, Any]:
        url = urlsplit(raw_path)
        query = parse_qs(url.query, keep_blank_values=True)
        try:
            fault = self._take_fault(method)
            if fault and fault.delay:
                self._stopping.wait(fault.delay)
            if fault and fault.status:
                raise ApiError(fault.status, "FAULT_INJECTED", "injected by the test")
            if authorization != f"Bearer {self.token}":
                raise ApiError(401, "AUTHENTICATION_REQUIRED", "Authentication required")
            payload = json.loads(body) if body else {}
            status, answer = 200, self._route(method, url.path, query, payload)
        except ApiError as exc:
            status, answer = exc.status, exc.body
        except (ValueError, KeyError, TypeError) as exc:
            status, answer = 422, {"error": {"type": "INVALID_REQUEST", "message": str(exc)}}
        with self._lock:
            self.requests.append(Request(method, url.path, query, status))
        return status, answer

    def _take_fault(self, method: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.methods is None or method in fault.methods:
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def _route(
        self, method: str, path: str, query: dict[str, list[str]], payload: dict[str, Any]
    ) -> Any:
        parts = [unquote(p) for p in path.split("/")[1:]]
        if len(parts) not in (3, 4) or parts[0] != "v0":
            raise ApiError(404, "NOT_FOUND", f"no route {path}")
        if parts[1] != self.base_id:
            raise ApiError(404, "NOT_FOUND", "Could not find what you are looking for")
        table = parts[2]
        if table not in self.schema:
            raise ApiError(422, "TABLE_NOT_FOUND", f'Could not find table "{table}"')
        record_id = parts[3] if len(parts) == 4 else None
        with self._lock:  # one request at a time; answer with a copy taken under the lock
            if method == "GET" and record_id:
                return copy.deepcopy(self._existing(table, record_id))
            if method == "GET":
                return copy.deepcopy(self._list(table, query))
            if method == "POST" and not record_id:
                return copy.deepcopy(self._post(table, payload))
            if method == "PATCH":
                return copy.deepcopy(self._patch(table, record_id, payload))
            if method == "DELETE":
                return self._delete(table, record_id, query)
        raise ApiError(404, "NOT_FOUND", f"{method} {path} is not supported by the fake")

    def _list(self, table: str, query: dict[str, list[str]]) -> dict[str, Any]:
        unknown = set(query) - {"filterByFormula", "pageSize", "maxRecords", "offset"}
        if unknown:
            raise ApiError(422, "INVALID_REQUEST_UNKNOWN", f"unknown parameters {sorted(unknown)}")
        page_size = int(query.get("pageSize", [MAX_PAGE_SIZE])[0])
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ApiError(422, "INVALID_PAGE_SIZE", f"pageSize {page_size}")
        formula = query.get("filterByFormula", [""])[0]
        try:
            where = parse_formula(formula, self.schema[table]) if formula else None
        except FormulaError as exc:
            message = f"The formula for filtering records is invalid: {exc}"
            raise ApiError(422, "INVALID_FILTER_BY_FORMULA", message) from exc
        try:
            matching = [
                r
                for r in self._records[table].values()
                if where is None or _truthy(where(self._evaluated(table, r)))
            ]
        except FormulaError as exc:
            message = f"The formula for filtering records is invalid: {exc}"
            raise ApiError(422, "INVALID_FILTER_BY_FORMULA", message) from exc
        if "maxRecords" in query:
            matching = matching[: int(query["maxRecords"][0])]
        start = 0
        if "offset" in query:
            found = re.fullmatch(r"itr(\d{8})/rec\w+", query["offset"][0])
            if not found:
                raise ApiError(422, "LIST_RECORDS_ITERATOR_NOT_AVAILABLE")
            start = int(found.group(1))
        page = matching[start : start + page_size]
        answer: dict[str, Any] = {"records": page}
        if start + page_size < len(matching):
            answer["offset"] = f"itr{start + page_size:08d}/{page[-1]['id']}"
        return answer

    def _post(self, table: str, payload: dict[str, Any]) -> Any:
        typecast = bool(payload.get("typecast"))
        if "records" not in payload:
            return self._create(table, payload["fields"], typecast)
        records = self._batch(payload)
        return {"records": [self._create(table, r["fields"], typecast) for r in records]}

    def _patch(self, table: str, record_id: str | None, payload: dict[str, Any]) -> Any:
        typecast = bool(payload.get("typecast"))
        if record_id:
            return self._update(table, record_id, payload["fields"], typecast)
        records = self._batch(payload)
        upsert = payload.get("performUpsert")
        if not upsert:
            updated = [self._update(table, r["id"], r["fields"], typecast) for r in records]
            return {"records": updated}
        answer: dict[str, Any] = {"records": [], "createdRecords": [], "updatedRecords": []}
        for record in records:
            merge_on = upsert["fieldsToMergeOn"]
            fields = self._clean(table, record["fields"], typecast)
            if any(fields.get(name) is None for name in merge_on):
                raise ApiError(422, "INVALID_RECORDS", f"a record lacks one of {merge_on}")
            same = [
                r
                for r in self._records[table].values()
                if all(_equal(r["fields"].get(name), fields[name]) for name in merge_on)
            ]
            if len(same) > 1:
                raise ApiError(422, "INVALID_RECORDS", f"several records match {merge_on}")
            if same:
                result = self._update(table, same[0]["id"], record["fields"], typecast)
                answer["updatedRecords"].append(result["id"])
            else:
                result = self._create(table, record["fields"], typecast)
                answer["createdRecords"].append(result["id"])
            answer["records"].append(result)
        return answer

    def _evaluated(self, table: str, record: dict[str, Any]) -> dict[str, Any]:
        """What a formula sees of a record: its fields and when each was last modified."""
        return {**record["fields"], MODIFIED: self._modified[table].get(record["id"], {})}

    def _delete(self, table: str, record_id: str | None, query: dict[str, list[str]]) -> Any:
        ids = [record_id] if record_id else query.get("records[]", [])
        if not 1 <= len(ids) <= MAX_RECORDS_PER_WRITE:
            raise ApiError(422, "INVALID_RECORDS", f"{len(ids)} records to delete")
        for each in ids:
            self._existing(table, each)
        for each in ids:
            del self._records[table][each]
            self._modified[table].pop(each, None)
        deleted = [{"id": each, "deleted": True} for each in ids]
        return deleted[0] if record_id else {"records": deleted}

    # records

    def _batch(self, payload: dict[str, Any]) -> list[dict[str, Any]]:
        records = payload["records"]
        if not 1 <= len(records) <= MAX_RECORDS_PER_WRITE:
            raise ApiError(422, "INVALID_RECORDS", f"{len(records)} records in one request")
        return records

    def _existing(self, table: str, record_id: str) -> dict[str, Any]:
        if record_id not in self._records[table]:
            raise ApiError(404, "NOT_FOUND", f"no record {record_id}")
        return self._records[table][record_id]

    def _create(self, table: str, fields: dict[str, Any], typecast: bool) -> dict[str, Any]:
        cleaned = self._clean(table, fields, typecast)  # nothing is stored if a value is bad
        self._next_id += 1
        record = {"id": f"rec{self._next_id:014d}", "createdTime": _now(), "fields": {}}
        self._records[table][record["id"]] = record
        return self._update(table, record["id"], cleaned, typecast)

    def _update(
        self, table: str, record_id: str, fields: dict[str, Any], typecast: bool
    ) -> dict[str, Any]:
        record = self._existing(table, record_id)
        merged = self._merge(record["fields"], self._clean(table, fields, typecast))
        changed = self._modified[table].setdefault(record_id, {})
        now = _now()
        for name in set(merged) | set(record["fields"]):
            if merged.get(name) != record["fields"].get(name):
                changed[name] = now
        record["fields"] = merged
        return record

    @staticmethod
    def _merge(current: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
        """Airtable leaves empty cells and unticked checkboxes out of a record."""
        merged = {**current, **changes}
        return {name: value for name, value in merged.items() if value not in (None, "", False)}

    def _clean(self, table: str, fields: dict[str, Any], typecast: bool) -> dict[str, Any]:
        """Check each value against its field's type, as Airtable does; None clears a cell."""
        cleaned: dict[str, Any] = {}
        for name, value in fields.items():
            kind = self.schema[table].get(name)
            if kind is None:
                raise ApiError(422, "UNKNOWN_FIELD_NAME", f'Unknown field name: "{name}"')
            cleaned[name] = (
                None if value is None else self._cell(table, name, kind, value, typecast)
            )
        return cleaned

    def _cell(self, table: str, name: str, kind: str, value: Any, typecast: bool) -> Any:
        def invalid() -> ApiError:
            message = f'Field "{name}" cannot accept the value {value!r}'
            return ApiError(422, "INVALID_VALUE_FOR_COLUMN", message)

        if kind == "checkbox":
            if not isinstance(value, bool):
                raise invalid()
            return value
        if not isinstance(value, str):
            raise invalid()
        if kind == "select":
            options = self._options.setdefault((table, name), set())
            if value not in options and not typecast:
                message = f'Insufficient permissions to create new select option ""{value}""'
                raise ApiError(422, "INVALID_MULTIPLE_CHOICE_OPTIONS", message)
            options.add(value)
        elif kind == "date":
            try:
                dt.date.fromisoformat(value)
            except ValueError:
                raise invalid() from None
        elif kind == "datetime":
            try:
                moment = dt.datetime.fromisoformat(value)
            except ValueError:
                raise invalid() from None
            if moment.tzinfo is None:
                raise invalid()
            moment = moment.astimezone(dt.UTC)
            return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        return value


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _Server(ThreadingHTTPServer):
    """Does not wait for handler threads on close: keep-alive connections may stay open."""

    block_on_close = False

    def __init__(self, fake: FakeAirtable) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real API
    disable_nagle_algorithm = True  # headers and body go out in separate writes

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def do_PATCH(self) -> None:
        self._answer()

    def do_DELETE(self) -> None:
        self._answer()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the fake records requests itself."""

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        assert isinstance(self.server, _Server)
        status, answer = self.server.fake.handle(
            self.command, self.path, self.headers["Authorization"], body
        )
        data = json.dumps(answer).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:  # the client gave up waiting (timeout tests)
            self.close_connection = True
