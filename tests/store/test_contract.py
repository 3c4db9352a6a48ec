"""The EngagementStore contract, run against both backends (SQLite file and Airtable via the
HTTP fake): whatever the pipelines and the CLI rely on must hold for each."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import pytest

from engagements.store import (
    ActionRecord,
    Contact,
    EngagementStatus,
    EngagementStore,
    NotFound,
)
from engagements.store.airtable import AirtableStore
from engagements.store.local import LocalStore

from .conftest import TOKEN
from .fake_airtable import FakeAirtable

CONFIG = {"community": {"id": "openscience", "name": "Open Science"}, "hubs": ["staging", "prod"]}
UTC = dt.UTC


def fake_of(store: EngagementStore, request: pytest.FixtureRequest) -> FakeAirtable | None:
    """The fake server behind an Airtable store (None for the local one)."""
    if isinstance(store, AirtableStore):
        return request.getfixturevalue("fake_airtable")
    return None


# engagements


def test_upsert_creates_closed_won_then_updates_without_duplicating(
    store: EngagementStore,
) -> None:
    created = store.upsert_engagement("openscience", "Open Science", CONFIG)
    assert created.status is EngagementStatus.CLOSED_WON
    assert created.config == CONFIG
    assert not created.agreement_signed_2i2c

    store.update_engagement("openscience", agreement_signed_2i2c=True)
    new_config = {**CONFIG, "hubs": ["prod"]}
    updated = store.upsert_engagement(
        "openscience", "Open Science Org", new_config, status=EngagementStatus.ONBOARDING
    )

    assert updated.name == "Open Science Org"
    assert updated.config == new_config
    assert updated.status is EngagementStatus.ONBOARDING
    assert updated.agreement_signed_2i2c, "fields not given are kept"
    assert store.get_engagement("openscience") == updated
    assert store.list_engagements() == [updated]


def test_upsert_keeps_status_when_not_given(store: EngagementStore) -> None:
    store.upsert_engagement("openscience", "Open Science", CONFIG, status="Active")
    again = store.upsert_engagement("openscience", "Open Science", CONFIG)
    assert again.status is EngagementStatus.ACTIVE


def test_get_unknown_engagement_is_none(store: EngagementStore) -> None:
    assert store.get_engagement("nobody") is None


def test_update_unknown_engagement_raises_not_found(store: EngagementStore) -> None:
    with pytest.raises(NotFound, match="nobody"):
        store.update_engagement("nobody", status=EngagementStatus.ACTIVE)
    assert store.get_engagement("nobody") is None


def test_update_round_trips_every_field(store: EngagementStore) -> None:
    store.upsert_engagement("openscience", "Open Science", CONFIG)
    decisions = {"auth": "github", "storage": {"size_gb": 100}, "images": ["pangeo"]}

    updated = store.update_engagement(
        "openscience",
        status=EngagementStatus.ACTIVE,
        agreement_signed_community=True,
        agreement_signed_2i2c=True,
        agreement_signed_css=True,
        agreement_url="https://docs.example.org/agreement.pdf",
        decisions=decisions,
        onboarding_run_id="manual__2026-01-05T10:00:00+00:00",
    )

    assert updated == store.get_engagement("openscience")
    assert updated.status is EngagementStatus.ACTIVE
    assert updated.agreement_signed_community
    assert updated.agreement_signed_css
    assert updated.agreement_url == "https://docs.example.org/agreement.pdf"
    assert updated.decisions == decisions
    assert updated.onboarding_run_id == "manual__2026-01-05T10:00:00+00:00"
    cleared = store.update_engagement("openscience", agreement_signed_css=False, agreement_url=None)
    assert not cleared.agreement_signed_css
    assert cleared.agreement_url is None


def test_list_engagements_filters_by_status(store: EngagementStore) -> None:
    store.upsert_engagement("beta", "Beta", CONFIG, status=EngagementStatus.ACTIVE)
    store.upsert_engagement("alpha", "Alpha", CONFIG, status=EngagementStatus.ACTIVE)
    store.upsert_engagement("gamma", "Gamma", CONFIG)

    active = store.list_engagements(EngagementStatus.ACTIVE)

    assert [e.community_id for e in active] == ["alpha", "beta"]
    assert [e.community_id for e in store.list_engagements(EngagementStatus.CLOSED_WON)] == [
        "gamma"
    ]
    assert store.list_engagements(EngagementStatus.DECOMMISSIONED) == []
    assert len(store.list_engagements()) == 3


def test_list_of_250_engagements_is_one_paginated_pass(
    store: EngagementStore, request: pytest.FixtureRequest
) -> None:
    ids = [f"community-{n:03d}" for n in range(250)]
    for community_id in ids:
        store.upsert_engagement(community_id, community_id.title(), {"n": community_id})
    fake = fake_of(store, request)
    before = len(fake.requests) if fake else 0

    listed = store.list_engagements()

    assert [e.community_id for e in listed] == ids
    if fake:
        pages = fake.requests[before:]
        assert [r.method for r in pages] == ["GET"] * 3, "100 + 100 + 50 records, one pass"
        assert all(r.query["pageSize"] == ["100"] for r in pages)
        assert "offset" not in pages[0].query
        assert all("offset" in r.query for r in pages[1:])


def test_unknown_engagement_field_is_rejected_before_writing(
    store: EngagementStore, request: pytest.FixtureRequest
) -> None:
    fake = fake_of(store, request)
    with pytest.raises(ValueError, match=r"unknown engagement field.*colour"):
        store.upsert_engagement("openscience", "Open Science", CONFIG, colour="blue")
    with pytest.raises(ValueError, match="Closed-Lost"):
        store.upsert_engagement("openscience", "Open Science", CONFIG, status="Closed-Lost")
    with pytest.raises(ValueError, match="true or false"):
        store.upsert_engagement("openscience", "Open Science", CONFIG, agreement_signed_2i2c="no")
    if fake:
        assert fake.requests == []
    assert store.get_engagement("openscience") is None

    store.upsert_engagement("openscience", "Open Science", CONFIG)
    with pytest.raises(ValueError, match=r"unknown engagement field.*onboarding_run"):
        store.update_engagement("openscience", onboarding_run="manual__1")


# contacts


def contact(email: str, name: str, role: str = "representative", github: str | None = None):
    return Contact("openscience", email, name, role, github)


def test_replace_contacts_is_idempotent_and_removes_stale(
    store: EngagementStore, request: pytest.FixtureRequest
) -> None:
    ada = contact("ada@example.org", "Ada", github="ada-l")
    bob = contact("bob@example.org", "Bob", "technical lead")
    other = Contact("othersci", "ada@example.org", "Ada", "invoicing")
    store.replace_contacts("othersci", [other])

    first = store.replace_contacts("openscience", [bob, ada])
    fake = fake_of(store, request)
    before = len(fake.requests) if fake else 0
    second = store.replace_contacts("openscience", [ada, bob])
    if fake:
        assert [r.method for r in fake.requests[before:]] == ["GET"], "nothing to write"

    assert first == second == [ada, bob] == store.list_contacts("openscience")

    bob_now_invoicing = contact("bob@example.org", "Bob B.", "invoicing")
    cy = contact("cy@example.org", "Cy")
    third = store.replace_contacts("openscience", [cy, bob_now_invoicing])

    assert third == [bob_now_invoicing, cy] == store.list_contacts("openscience")
    assert store.list_contacts("othersci") == [other]
    assert store.replace_contacts("openscience", []) == []
    assert store.list_contacts("openscience") == []


def test_replace_contacts_rejects_contacts_of_another_community(store: EngagementStore) -> None:
    with pytest.raises(ValueError, match="othersci"):
        store.replace_contacts("openscience", [Contact("othersci", "a@example.org", "A", "x")])
    with pytest.raises(ValueError, match="twice"):
        store.replace_contacts("openscience", [contact("a@example.org", "A")] * 2)


# milestones


def test_plan_milestone_sets_due_and_never_clears_done_at(store: EngagementStore) -> None:
    planned = store.plan_milestone("openscience", "agreement_signed", dt.date(2026, 2, 1))
    assert planned.due == dt.date(2026, 2, 1)
    assert not planned.done

    done = store.record_milestone("openscience", "agreement_signed", by="ada")
    replanned = store.plan_milestone("openscience", "agreement_signed", dt.date(2026, 3, 1))

    assert replanned.due == dt.date(2026, 3, 1)
    assert (replanned.done_at, replanned.done_by) == (done.done_at, "ada")
    unplanned = store.plan_milestone("openscience", "agreement_signed", None)
    assert unplanned.due is None
    assert unplanned.done


def test_record_milestone_is_idempotent_and_keeps_first_who_and_when(
    store: EngagementStore,
) -> None:
    store.plan_milestone("openscience", "technical_meeting", dt.date(2026, 2, 1))
    when = dt.datetime(2026, 1, 20, 9, 30, 15, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2)))

    first = store.record_milestone(
        "openscience", "technical_meeting", by="ada", note="went well", at=when
    )
    second = store.record_milestone(
        "openscience", "technical_meeting", by="bob", note="again", at=when + dt.timedelta(days=1)
    )

    assert first.done_at == dt.datetime(2026, 1, 20, 7, 30, 15, 123000, tzinfo=UTC)
    assert first.done_at.utcoffset() == dt.timedelta(0)
    assert (first.done_by, first.note, first.due) == ("ada", "went well", dt.date(2026, 2, 1))
    assert second == first == store.get_milestone("openscience", "technical_meeting")


def test_record_milestone_that_was_never_planned(store: EngagementStore) -> None:
    before = dt.datetime.now(UTC) - dt.timedelta(seconds=1)
    recorded = store.record_milestone("openscience", "rollout_meeting", by="ada")
    assert (recorded.due, recorded.done_by) == (None, "ada")
    assert recorded.done_at is not None
    assert recorded.done_at >= before
    assert store.list_milestones("openscience") == [recorded]


def test_get_and_list_milestones(store: EngagementStore) -> None:
    store.plan_milestone("openscience", "rollout", dt.date(2026, 3, 1))
    store.plan_milestone("openscience", "agreement", dt.date(2026, 1, 15))
    store.plan_milestone("openscience", "training", None)
    store.plan_milestone("othersci", "agreement", dt.date(2026, 1, 1))

    listed = store.list_milestones("openscience")

    assert [m.milestone for m in listed] == ["agreement", "rollout", "training"]
    assert store.get_milestone("openscience", "rollout") == listed[1]
    assert store.get_milestone("openscience", "unknown") is None
    assert store.get_milestone("nobody", "agreement") is None


def test_overdue_milestones(store: EngagementStore) -> None:
    store.plan_milestone("openscience", "late", dt.date(2026, 1, 10))
    store.plan_milestone("openscience", "due_today", dt.date(2026, 1, 15))
    store.plan_milestone("openscience", "late_but_done", dt.date(2026, 1, 1))
    store.record_milestone("openscience", "late_but_done", by="ada")
    store.plan_milestone("openscience", "undated", None)

    today = dt.date(2026, 1, 15)
    overdue = [m.milestone for m in store.list_milestones("openscience") if m.overdue(today)]

    assert overdue == ["late"]


# actions


def test_record_action_is_idempotent(store: EngagementStore) -> None:
    first = store.record_action("openscience", "email:welcome", "email", {"message_id": "<1@x>"})
    second = store.record_action("openscience", "email:welcome", "email", {"message_id": "<2@x>"})

    assert second == first
    assert first.detail == {"message_id": "<1@x>"}
    assert first.created_at.utcoffset() == dt.timedelta(0)
    assert store.list_actions("openscience") == [first]
    assert store.get_action("openscience", "email:welcome") == first


def test_update_action_replaces_detail(store: EngagementStore) -> None:
    created = store.record_action("openscience", "deck", "document", {"path": "v1.pptx"})

    updated = store.update_action("openscience", "deck", {"path": "v2.pptx", "pages": 12})

    assert updated.detail == {"path": "v2.pptx", "pages": 12}
    assert (updated.created_at, updated.kind) == (created.created_at, "document")
    assert store.get_action("openscience", "deck") == updated
    with pytest.raises(NotFound, match="nope"):
        store.update_action("openscience", "nope", {})


def test_list_actions_by_kind(store: EngagementStore) -> None:
    store.record_action("openscience", "email:welcome", "email")
    store.record_action("openscience", "issue:Set up images", "issue", {"number": 7})
    store.record_action("openscience", "email:rollout", "email")
    store.record_action("othersci", "email:welcome", "email")

    emails = store.list_actions("openscience", kind="email")

    assert sorted(a.key for a in emails) == ["email:rollout", "email:welcome"]
    assert all(a.community_id == "openscience" for a in emails)
    assert [a.key for a in store.list_actions("openscience", kind="issue")] == [
        "issue:Set up images"
    ]
    assert len(store.list_actions("openscience")) == 3
    assert store.list_actions("openscience", kind="deck") == []
    assert store.get_action("openscience", "nope") is None


@pytest.mark.parametrize(
    "key",
    [
        "issue:Don't break the hub",
        'issue:say "hi"',
        "path:C:\\hubs\\new",
        "braces:{Key}='x'",
        "or:' OR TRUE() OR '",
    ],
)
def test_awkward_keys_match_exactly(store: EngagementStore, key: str) -> None:
    """Quotes, backslashes and formula syntax in a key neither break nor widen a lookup."""
    store.record_action("openscience", "issue:Don", "issue")
    created = store.record_action("openscience", key, "issue", {"k": key})

    assert store.get_action("openscience", key) == created
    assert store.record_action("openscience", key, "issue") == created
    assert store.get_action("openscience", key + "x") is None
    assert len(store.list_actions("openscience")) == 2


# secrets


def test_store_never_holds_the_token(
    store: EngagementStore, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    store.upsert_engagement("openscience", "Open Science", CONFIG, status="Active")
    store.record_action("openscience", "email:welcome", "email", {"to": ["ada@example.org"]})
    store.record_milestone("openscience", "agreement", by="ada")

    assert TOKEN not in repr(store)
    fake = fake_of(store, request)
    if fake:
        assert TOKEN not in fake.dump()
    else:
        assert isinstance(store, LocalStore)
        for file in store.path.parent.iterdir():
            assert TOKEN.encode() not in file.read_bytes()


# every community at once (fan-outs and overviews read each table in one pass)


def test_listings_of_every_community_read_each_table_once(
    store: EngagementStore, request: pytest.FixtureRequest
) -> None:
    for community in ("othersci", "openscience"):
        store.replace_contacts(
            community, [Contact(community, "ada@example.org", "Ada", "invoicing")]
        )
        store.plan_milestone(community, "rollout", dt.date(2026, 3, 1))
        store.plan_milestone(community, "agreement", dt.date(2026, 1, 15))
        store.record_action(community, "email:welcome", "email")
        store.record_action(community, "issue:Images", "issue")
    fake = fake_of(store, request)
    before = len(fake.requests) if fake else 0

    contacts = store.list_contacts()
    milestones = store.list_milestones()
    actions = store.list_actions()
    issues = store.list_actions(kind="issue")

    if fake:
        assert [r.method for r in fake.requests[before:]] == ["GET"] * 4, "one page per table"
    assert [c.community_id for c in contacts] == ["openscience", "othersci"]
    assert [(m.community_id, m.milestone) for m in milestones] == [
        ("openscience", "agreement"),
        ("openscience", "rollout"),
        ("othersci", "agreement"),
        ("othersci", "rollout"),
    ]
    assert [a.community_id for a in actions] == ["openscience"] * 2 + ["othersci"] * 2
    assert [(a.community_id, a.key) for a in issues] == [
        ("openscience", "issue:Images"),
        ("othersci", "issue:Images"),
    ]
    assert milestones[:2] == store.list_milestones("openscience")


# what the triggerer's poll and the fan-outs use


def test_milestones_recorded_since_are_those_recorded_after_it(
    store: EngagementStore, request: pytest.FixtureRequest
) -> None:
    store.plan_milestone("openscience", "before", dt.date(2026, 1, 1))
    store.record_milestone("openscience", "before", by="ada")
    store.plan_milestone("openscience", "open", dt.date(2026, 1, 1))
    since = dt.datetime.now(UTC)
    time.sleep(0.01)
    store.plan_milestone("othersci", "agreement", dt.date(2026, 2, 1))
    store.record_milestone("othersci", "agreement", by="bob")
    # Recorded now, though it states a date two days back: found by when it was recorded.
    store.record_milestone("openscience", "backdated", by="ada", at=since - dt.timedelta(days=2))
    store.plan_milestone("openscience", "open", dt.date(2026, 3, 1))  # replanned, still open
    fake = fake_of(store, request)
    before = len(fake.requests) if fake else 0

    recorded = store.list_milestones_recorded_since(since)

    assert [(m.community_id, m.milestone) for m in recorded] == [
        ("openscience", "backdated"),
        ("othersci", "agreement"),
    ]
    assert store.list_milestones_recorded_since(dt.datetime.now(UTC)) == []
    if fake:
        assert len(fake.requests) - before == 2, "one request each"
    assert recorded[1] == store.get_milestone("othersci", "agreement")


def test_plan_milestones_plans_many_and_never_clears_a_recording(
    store: EngagementStore, request: pytest.FixtureRequest
) -> None:
    done = store.record_milestone("c00", "checkin_held_2027q2", by="ada")
    plans = [(f"c{i:02d}", "checkin_held_2027q2", dt.date(2027, 4, 30)) for i in range(12)]
    fake = fake_of(store, request)
    before = len(fake.requests) if fake else 0

    planned = store.plan_milestones(plans)

    if fake:
        assert len(fake.requests) - before == 2, "10 records a request"
    assert [(m.community_id, m.due) for m in planned] == [(c, d) for c, _, d in plans]
    assert (planned[0].done_at, planned[0].done_by) == (done.done_at, "ada")
    assert store.get_milestone("c11", "checkin_held_2027q2") == planned[11]
    again = store.plan_milestones(plans[:1])
    assert again == planned[:1]
    assert len(store.list_milestones()) == 12


def test_save_actions_stores_them_as_given_and_replaces_by_key(
    store: EngagementStore, request: pytest.FixtureRequest
) -> None:
    first = store.record_action("openscience", "checkin-report:2027q2", "document", {"v": 1})
    when = dt.datetime(2027, 4, 1, 6, 0, 1, tzinfo=UTC)
    actions = [
        ActionRecord(
            "openscience", "checkin-report:2027q2", "document", first.created_at, {"v": 2}
        ),
        ActionRecord("openscience", "email:checkin-invitation:2027q2", "email", when, {"to": []}),
        *(ActionRecord(f"c{i}", "renewal-opened:2027-09-30", "renewal", when) for i in range(9)),
    ]
    fake = fake_of(store, request)
    before = len(fake.requests) if fake else 0

    saved = store.save_actions(actions)

    if fake:
        assert len(fake.requests) - before == 2, "10 records a request"
    assert saved == actions
    assert store.get_action("openscience", "checkin-report:2027q2") == actions[0]
    assert store.list_actions("openscience") == actions[:2]


def test_update_engagement_of_an_unknown_community_leaves_no_record(
    store: EngagementStore,
) -> None:
    store.upsert_engagement("openscience", "Open Science", CONFIG)
    with pytest.raises(NotFound, match="nobody"):
        store.update_engagement("nobody", status=EngagementStatus.RENEWAL)
    assert [e.community_id for e in store.list_engagements()] == ["openscience"]


def test_records_round_trip_through_json(store: EngagementStore) -> None:
    engagement = store.upsert_engagement("openscience", "Open Science", CONFIG, status="Active")
    milestone = store.record_milestone("openscience", "rollout", by="ada", note="done")
    planned = store.plan_milestone("openscience", "later", None)
    action = store.record_action("openscience", "email:welcome", "email", {"to": ["a@b.org"]})
    for record in (engagement, milestone, planned, action):
        text = json.dumps(record.to_json())
        assert type(record).from_json(json.loads(text)) == record


def test_reference_names_the_store_and_no_secret(store: EngagementStore) -> None:
    reference = store.reference
    if isinstance(store, LocalStore):
        assert reference == {"backend": "local", "path": str(store.path)}
    else:
        assert reference == {"backend": "airtable", "base_id": store.base_id}
        assert TOKEN not in json.dumps(reference)
