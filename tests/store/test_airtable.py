"""Airtable specifics: field mapping (pyairtable's MockAirtable), the formulas sent, failure
handling (the HTTP fake with injected faults), secrecy of the token, and the Airflow hook."""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
import traceback
from collections.abc import Iterator

import pytest
import requests
from pyairtable import Api
from pyairtable.formulas import AND, BLANK, EQ, NOT, OR, TRUE, Field, match, to_formula_str
from pyairtable.testing import MockAirtable

from engagements.store import (
    Engagement,
    EngagementStatus,
    MilestoneRecord,
    StoreError,
    StoreUnavailable,
)
from engagements.store.airtable import AirtableStore

from .conftest import BASE_ID, TOKEN
from .fake_airtable import TABLES, FakeAirtable, FormulaError, parse_formula

CONFIG = {"community": {"id": "openscience"}, "hubs": ["prod"]}


def store_for(fake: FakeAirtable, **options: object) -> AirtableStore:
    options = {"backoff": 0, "timeout": (2.0, 5.0), **options}
    return AirtableStore.from_credentials(TOKEN, BASE_ID, endpoint_url=fake.url, **options)


# field mapping (MockAirtable ignores formulas, so each table holds one record at most)


@pytest.fixture
def mock_airtable() -> Iterator[MockAirtable]:
    with MockAirtable() as mock:
        yield mock


@pytest.fixture
def mocked_store(mock_airtable: MockAirtable) -> AirtableStore:
    return AirtableStore.from_credentials(TOKEN, BASE_ID)


def fields_of(mock: MockAirtable, table: str) -> dict[str, object]:
    (record,) = mock.records[(BASE_ID, table)].values()
    return record["fields"]


def test_engagement_is_written_with_the_documented_field_names(
    mock_airtable: MockAirtable, mocked_store: AirtableStore
) -> None:
    mocked_store.upsert_engagement("openscience", "Open Science", CONFIG)
    assert fields_of(mock_airtable, "Engagements") == {
        "Community ID": "openscience",
        "Status": "Closed-Won",
        "Name": "Open Science",
        "Config": json.dumps(CONFIG, indent=2),
    }

    mocked_store.update_engagement(
        "openscience",
        status=EngagementStatus.ACTIVE,
        agreement_signed_community=True,
        agreement_signed_2i2c=True,
        agreement_signed_css=False,
        agreement_url="https://example.org/agreement.pdf",
        decisions={"auth": "github"},
        onboarding_run_id="manual__1",
    )
    fields = fields_of(mock_airtable, "Engagements")
    assert fields["Status"] == "Active"
    assert fields["Agreement signed by community"] is True
    assert fields["Agreement signed by 2i2c"] is True
    assert fields["Agreement signed by CS&S"] is False
    assert fields["Agreement URL"] == "https://example.org/agreement.pdf"
    assert json.loads(fields["Decisions"]) == {"auth": "github"}
    assert fields["Onboarding run"] == "manual__1"
    assert set(fields) <= set(TABLES["Engagements"])


def test_engagement_entered_by_hand_reads_with_defaults(
    mock_airtable: MockAirtable, mocked_store: AirtableStore
) -> None:
    """Airtable omits empty cells and unticked checkboxes from records."""
    mock_airtable.add_records(
        BASE_ID,
        "Engagements",
        [{"Community ID": "openscience", "Name": "Open Science", "Agreement signed by CS&S": True}],
    )
    assert mocked_store.get_engagement("openscience") == Engagement(
        community_id="openscience",
        name="Open Science",
        status=EngagementStatus.CLOSED_WON,
        config={},
        agreement_signed_css=True,
    )


def test_engagement_with_broken_json_names_the_record(
    mock_airtable: MockAirtable, mocked_store: AirtableStore
) -> None:
    (record,) = mock_airtable.add_records(
        BASE_ID, "Engagements", [{"Community ID": "openscience", "Config": "{not json"}]
    )
    with pytest.raises(StoreError, match=f"Airtable Engagements: record {record['id']}"):
        mocked_store.get_engagement("openscience")


def test_milestone_and_action_field_shapes(
    mock_airtable: MockAirtable, mocked_store: AirtableStore
) -> None:
    at = dt.datetime(2026, 1, 20, 7, 30, 15, 123456, tzinfo=dt.UTC)
    mocked_store.record_milestone("openscience", "agreement", by="ada", note="signed", at=at)
    mocked_store.record_action("openscience", "email:welcome", "email", {"to": ["a@example.org"]})

    assert fields_of(mock_airtable, "Milestones") == {
        "Key": "openscience/agreement",
        "Community ID": "openscience",
        "Milestone": "agreement",
        "Done at": "2026-01-20T07:30:15.123Z",
        "Done by": "ada",
        "Note": "signed",
    }
    action = fields_of(mock_airtable, "Actions")
    assert {k: v for k, v in action.items() if k != "Created at"} == {
        "Key": "openscience/email:welcome",
        "Community ID": "openscience",
        "Action": "email:welcome",
        "Kind": "email",
        "Detail": json.dumps({"to": ["a@example.org"]}),
    }
    assert str(action["Created at"]).endswith("Z")


def test_milestone_read_from_airtable_datetime(
    mock_airtable: MockAirtable, mocked_store: AirtableStore
) -> None:
    mock_airtable.add_records(
        BASE_ID,
        "Milestones",
        [
            {
                "Key": "openscience/agreement",
                "Community ID": "openscience",
                "Milestone": "agreement",
                "Due": "2026-01-31",
                "Done at": "2026-01-20T07:30:15.000Z",
                "Done by": "ada",
            }
        ],
    )
    assert mocked_store.get_milestone("openscience", "agreement") == MilestoneRecord(
        community_id="openscience",
        milestone="agreement",
        due=dt.date(2026, 1, 31),
        done_at=dt.datetime(2026, 1, 20, 7, 30, 15, tzinfo=dt.UTC),
        done_by="ada",
    )


# formulas


def last_formula(fake: FakeAirtable) -> str:
    (formula,) = fake.requests[-1].query["filterByFormula"]
    return formula


def test_milestone_lookup_sends_one_exact_formula(
    fake_airtable: FakeAirtable, airtable_store: AirtableStore
) -> None:
    airtable_store.get_milestone("openscience", "agreement_signed")

    (sent,) = fake_airtable.requests
    assert (sent.method, sent.path) == ("GET", f"/v0/{BASE_ID}/Milestones")
    assert sent.query == {
        "filterByFormula": ["{Key}='openscience/agreement_signed'"],
        "maxRecords": ["1"],
        "pageSize": ["1"],
    }


def test_other_formulas_sent(fake_airtable: FakeAirtable, airtable_store: AirtableStore) -> None:
    airtable_store.list_actions("openscience", kind="email")
    assert last_formula(fake_airtable) == "AND({Community ID}='openscience', {Kind}='email')"
    airtable_store.list_engagements(EngagementStatus.PREMIUM_REFERRAL)
    assert last_formula(fake_airtable) == "{Status}='Premium referral'"
    airtable_store.get_action("openscience", "issue:it's a \\ test")
    assert last_formula(fake_airtable) == r"{Key}='openscience/issue:it\'s a \\ test'"
    airtable_store.list_engagements()
    assert "filterByFormula" not in fake_airtable.requests[-1].query


RECORDS = [
    {"Key": "a", "Kind": "email", "Community ID": "x"},
    {"Key": "it's", "Kind": "issue", "Community ID": "x"},
    {"Key": "b", "Community ID": "y"},
]


@pytest.mark.parametrize(
    ("formula", "expected"),
    [
        (match({"Key": "a"}), ["a"]),
        (match({"Key": "it's"}), ["it's"]),
        (match({"Community ID": "x", "Kind": "issue"}), ["it's"]),
        (match({"Kind": "email", "Key": "b"}, match_any=True), ["a", "b"]),
        (NOT(EQ(Field("Kind"), "email")), ["it's", "b"]),
        (OR(EQ(Field("Kind"), ""), EQ(Field("Key"), "a")), ["a", "b"]),
        (AND(EQ(Field("Community ID"), "x"), TRUE()), ["a", "it's"]),
        (EQ(Field("Kind"), BLANK()), ["b"]),
        (EQ(Field("Kind"), False), ["b"]),
        (match({"Key": "A"}), []),
    ],
)
def test_fake_evaluates_pyairtable_formulas(formula: object, expected: list[str]) -> None:
    evaluate = parse_formula(to_formula_str(formula), TABLES["Actions"])
    assert [r["Key"] for r in RECORDS if evaluate(r)] == expected


def test_fake_evaluates_checkboxes() -> None:
    evaluate = parse_formula(
        to_formula_str(match({"Agreement signed by CS&S": True})), TABLES["Engagements"]
    )
    assert evaluate({"Agreement signed by CS&S": True})
    assert not evaluate({})
    assert parse_formula("{Agreement signed by 2i2c}=1", TABLES["Engagements"])(
        {"Agreement signed by 2i2c": True}
    )


@pytest.mark.parametrize(
    "formula",
    [
        "{Key}=openscience",  # unquoted text
        "{Key}='openscience",  # unterminated
        "{Nope}='x'",  # unknown field
        "LOWER({Key})='x'",  # a function the fake does not know
        "AND({Key}='a'",
        "{Key}='a' {Kind}='b'",
        "NOT({Key}='a', {Kind}='b')",
        "{Key}=='a'",
    ],
)
def test_fake_rejects_formulas_it_cannot_read(formula: str) -> None:
    with pytest.raises(FormulaError):
        parse_formula(formula, TABLES["Actions"])


def test_fake_answers_422_to_a_bad_formula_like_airtable(fake_airtable: FakeAirtable) -> None:
    table = Api(TOKEN, endpoint_url=fake_airtable.url).table(BASE_ID, "Actions")
    with pytest.raises(requests.HTTPError, match="INVALID_FILTER_BY_FORMULA") as caught:
        table.all(formula="{Key}=openscience")
    assert caught.value.response.status_code == 422


def test_fake_checks_tables_fields_and_select_options(fake_airtable: FakeAirtable) -> None:
    api = Api(TOKEN, endpoint_url=fake_airtable.url, retry_strategy=None)
    with pytest.raises(requests.HTTPError, match="422"):
        api.table(BASE_ID, "Engagement").all()
    engagements = api.table(BASE_ID, "Engagements")
    with pytest.raises(requests.HTTPError, match="UNKNOWN_FIELD_NAME"):
        engagements.create({"Community ID": "x", "Colour": "blue"}, typecast=True)
    with pytest.raises(requests.HTTPError, match="INVALID_MULTIPLE_CHOICE_OPTIONS"):
        engagements.create({"Community ID": "x", "Status": "Active"})
    with pytest.raises(requests.HTTPError, match="401"):
        Api("patWRONG", endpoint_url=fake_airtable.url).table(BASE_ID, "Engagements").all()
    assert fake_airtable.records("Engagements") == []


# failures


def test_rate_limit_then_success_is_retried_transparently(
    fake_airtable: FakeAirtable, airtable_store: AirtableStore
) -> None:
    fake_airtable.fail_next(1, 429)

    created = airtable_store.upsert_engagement("openscience", "Open Science", CONFIG)

    assert created.community_id == "openscience"
    assert [r.status for r in fake_airtable.requests] == [429, 200, 200]
    assert len(fake_airtable.records("Engagements")) == 1


def test_persistent_503_on_write_raises_unavailable_and_writes_nothing(
    fake_airtable: FakeAirtable, airtable_store: AirtableStore
) -> None:
    fake_airtable.fail_next(100, 503, methods={"POST", "PATCH"})

    with pytest.raises(StoreUnavailable) as caught:
        airtable_store.upsert_engagement("openscience", "Open Science", CONFIG)

    message = str(caught.value)
    assert message.startswith("Airtable Engagements: could not save engagement 'openscience'")
    assert "503" in message
    assert message.endswith("nothing was written")
    assert len(fake_airtable.requests_to("Engagements", "PATCH")) == 6, "1 try + 5 retries"
    assert fake_airtable.records("Engagements") == []


def test_gateway_timeouts_on_write_say_it_may_be_written(
    fake_airtable: FakeAirtable, airtable_store: AirtableStore
) -> None:
    """A 504 can come after Airtable applied the write; the message must not deny it."""
    fake_airtable.fail_next(100, 504, methods={"PATCH"})
    with pytest.raises(StoreUnavailable, match=r"504 error responses.*may be partly written"):
        airtable_store.plan_milestone("openscience", "agreement", dt.date(2026, 2, 1))


def test_persistent_503_on_read_raises_unavailable(
    fake_airtable: FakeAirtable, airtable_store: AirtableStore
) -> None:
    fake_airtable.fail_next(100, 503)
    with pytest.raises(StoreUnavailable, match=r"Airtable Actions: could not list actions.*503"):
        airtable_store.list_actions("openscience")


def test_timeout_raises_unavailable(fake_airtable: FakeAirtable) -> None:
    store = store_for(fake_airtable, timeout=(1.0, 0.2), retries=1)
    fake_airtable.stall_next(2, 1.0)
    started = time.monotonic()

    with pytest.raises(StoreUnavailable) as caught:
        store.get_engagement("openscience")

    assert time.monotonic() - started < 3
    assert str(caught.value) == (
        "Airtable Engagements: could not read engagement 'openscience':"
        " no answer before the timeout, after retries; nothing was written"
    )


def test_write_with_lost_answers_says_it_may_be_written(fake_airtable: FakeAirtable) -> None:
    store = store_for(fake_airtable, timeout=(1.0, 0.2), retries=1)
    fake_airtable.stall_next(2, 0.5, methods={"PATCH"})

    with pytest.raises(StoreUnavailable, match="may be partly written; re-running it is safe"):
        store.record_action("openscience", "email:welcome", "email")


def test_retried_write_whose_answer_was_lost_creates_no_duplicate(
    fake_airtable: FakeAirtable,
) -> None:
    """The server applies the stalled upsert after the client gave up and retried."""
    store = store_for(fake_airtable, timeout=(1.0, 0.2), retries=2)
    fake_airtable.stall_next(1, 0.5, methods={"PATCH"})

    store.record_action("openscience", "email:welcome", "email", {"n": 1})
    deadline = time.monotonic() + 5
    while len(fake_airtable.requests_to("Actions", "PATCH")) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)

    assert len(fake_airtable.requests_to("Actions", "PATCH")) == 2
    assert len(fake_airtable.records("Actions")) == 1


def test_wrong_token_is_a_store_error_not_retried(fake_airtable: FakeAirtable) -> None:
    store = AirtableStore.from_credentials(
        "patWRONGtoken0123456789", BASE_ID, endpoint_url=fake_airtable.url, backoff=0
    )
    with pytest.raises(StoreError) as caught:
        store.record_milestone("openscience", "agreement", by="ada")

    assert not isinstance(caught.value, StoreUnavailable)
    assert "HTTP 401 AUTHENTICATION_REQUIRED" in str(caught.value)
    assert len(fake_airtable.requests) == 1


def test_token_never_appears_in_errors_or_logs(
    fake_airtable: FakeAirtable, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Airflow's logging configuration, applied by earlier tests in the same process, may have
    # disabled or detached the client's loggers; reattach them so that this test sees them.
    # (The Kubernetes client also lowers urllib3's level on import.)
    for name in ("urllib3", "urllib3.connectionpool", "pyairtable"):
        monkeypatch.setattr(logging.getLogger(name), "disabled", False)
        monkeypatch.setattr(logging.getLogger(name), "propagate", True)
        caplog.set_level(logging.DEBUG, logger=name)
    caplog.set_level(logging.DEBUG)
    store = store_for(fake_airtable, timeout=(1.0, 0.2), retries=1)
    wrong = AirtableStore.from_credentials(
        "patWRONGtoken0123456789", BASE_ID, endpoint_url=fake_airtable.url, backoff=0
    )
    errors: list[BaseException] = []
    for fault, call in [
        (lambda: fake_airtable.fail_next(10, 503), lambda: store.list_engagements()),
        (lambda: fake_airtable.stall_next(2, 0.5), lambda: store.get_action("x", "y")),
        (lambda: None, lambda: wrong.record_action("x", "y", "email")),
    ]:
        fault()
        with pytest.raises(StoreError) as caught:
            call()
        errors.append(caught.value)

    for error in errors:
        text = "".join(traceback.format_exception(error))
        assert TOKEN not in text
        assert "patWRONGtoken0123456789" not in text
    assert TOKEN not in caplog.text
    assert "patWRONG" not in caplog.text
    assert "urllib3" in caplog.text, "the client's debug logging was captured"


# the Airflow hook


@pytest.fixture
def airtable_connection(fake_airtable: FakeAirtable, monkeypatch: pytest.MonkeyPatch) -> None:
    extra = {"base_id": BASE_ID, "endpoint_url": fake_airtable.url}
    connection = {"conn_type": "airtable", "password": TOKEN, "extra": extra}
    monkeypatch.setenv("AIRFLOW_CONN_AIRTABLE_DEFAULT", json.dumps(connection))


@pytest.mark.usefixtures("airtable_connection")
def test_hook_builds_the_store_from_the_connection(
    fake_airtable: FakeAirtable, caplog: pytest.LogCaptureFixture
) -> None:
    from engagements.hooks.airtable import AirtableHook

    caplog.set_level(logging.DEBUG)
    hook = AirtableHook(backoff=0)
    assert (hook.conn_name_attr, hook.default_conn_name, hook.conn_type, hook.hook_name) == (
        "airtable_conn_id",
        "airtable_default",
        "airtable",
        "Airtable",
    )

    store = hook.get_store()
    store.upsert_engagement("openscience", "Open Science", CONFIG)

    assert hook.get_conn() is hook.api, "one client per hook"
    assert store.base_id == BASE_ID
    assert len(fake_airtable.records("Engagements")) == 1
    assert hook.test_connection() == (
        True,
        f"Airtable base {BASE_ID}: Engagements table is readable",
    )
    assert TOKEN not in caplog.text


def test_hook_looks_the_connection_up_only_when_used() -> None:
    from airflow.sdk.exceptions import AirflowNotFoundException

    from engagements.hooks.airtable import AirtableHook

    hook = AirtableHook("no_such_connection")
    with pytest.raises(AirflowNotFoundException):
        hook.get_store()


def test_hook_needs_token_and_base_id(monkeypatch: pytest.MonkeyPatch) -> None:
    from engagements.hooks.airtable import AirtableHook

    connection = {"conn_type": "airtable", "password": TOKEN, "extra": {}}
    monkeypatch.setenv("AIRFLOW_CONN_AIRTABLE_DEFAULT", json.dumps(connection))
    with pytest.raises(StoreError, match="'airtable_default' is malformed: it needs") as caught:
        AirtableHook().get_store()
    assert TOKEN not in str(caught.value)


def test_hook_connection_test_reports_a_wrong_token(
    fake_airtable: FakeAirtable, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engagements.hooks.airtable import AirtableHook

    extra = {"base_id": BASE_ID, "endpoint_url": fake_airtable.url}
    connection = {"conn_type": "airtable", "password": "patWRONGtoken0123456789", "extra": extra}
    monkeypatch.setenv("AIRFLOW_CONN_AIRTABLE_DEFAULT", json.dumps(connection))

    ok, message = AirtableHook(backoff=0).test_connection()

    assert not ok
    assert "HTTP 401" in message
    assert "patWRONG" not in message


# what the triggerer's poll and the fan-outs send


def test_a_milestone_recorded_by_hand_with_an_earlier_date_is_found_by_the_poll(
    fake_airtable: FakeAirtable,
) -> None:
    """People record a milestone by typing a date (often the day of the meeting, at 00:00):
    the poll finds it by when the cell was changed, not by the date typed."""
    store = store_for(fake_airtable)
    store.plan_milestone("openscience", "technical_meeting_held", dt.date(2026, 1, 8))
    since = dt.datetime.now(dt.UTC)
    time.sleep(0.01)

    fake_airtable.edit(
        "Milestones",
        {"Key": "openscience/technical_meeting_held"},
        {"Done at": "2026-01-05T00:00:00.000Z", "Done by": "Ada"},
    )

    (found,) = store.list_milestones_recorded_since(since)
    assert (found.milestone, found.done_by) == ("technical_meeting_held", "Ada")
    assert found.done_at == dt.datetime(2026, 1, 5, tzinfo=dt.UTC)
    (poll,) = fake_airtable.requests_to("Milestones")[-1:]
    formula = poll.query["filterByFormula"][0]
    assert "LAST_MODIFIED_TIME({Done at})" in formula
    assert "NOT({Done at}=BLANK())" in formula
    # A later change to another field does not count as a recording.
    later = dt.datetime.now(dt.UTC)
    time.sleep(0.01)
    fake_airtable.edit("Milestones", {"Key": "openscience/technical_meeting_held"}, {"Note": "x"})
    assert store.list_milestones_recorded_since(later) == []


def test_update_engagement_is_one_request(fake_airtable: FakeAirtable) -> None:
    store = store_for(fake_airtable)
    store.upsert_engagement("openscience", "Open Science", CONFIG, status="Active")
    before = len(fake_airtable.requests)

    updated = store.update_engagement("openscience", status=EngagementStatus.RENEWAL)

    assert [r.method for r in fake_airtable.requests[before:]] == ["PATCH"]
    assert updated.status is EngagementStatus.RENEWAL
    assert updated.config == CONFIG, "the answer is the whole record"
    assert len(fake_airtable.records("Engagements")) == 1


def test_the_fake_rejects_date_functions_on_what_is_not_a_date() -> None:
    evaluate = parse_formula("IS_AFTER({Done at}, DATETIME_PARSE('2026-01-01'))", {"Done at"})
    assert evaluate({"Done at": "2026-01-02T00:00:00.000Z"}) is True
    assert evaluate({}) is None
    with pytest.raises(FormulaError):
        evaluate({"Done at": "soon"})
    with pytest.raises(FormulaError, match="Unknown field"):
        parse_formula("LAST_MODIFIED_TIME({Nope})", {"Done at"})
