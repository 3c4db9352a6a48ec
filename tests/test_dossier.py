"""One engagement's page data: the action log, documents, support hours, milestones."""

from __future__ import annotations

import datetime as dt
import os
from decimal import Decimal
from pathlib import Path

from engagements.checkin import Quarter
from engagements.dossier import (
    describe,
    document_path,
    list_documents,
    milestone_lines,
    quarters_of_support,
)
from engagements.store.base import ActionRecord, MilestoneRecord

AT = dt.datetime(2027, 3, 1, 12, tzinfo=dt.UTC)


def action(key: str, kind: str, **detail) -> ActionRecord:
    return ActionRecord("c", key, kind, AT, detail)


def test_the_log_says_what_happened_with_links_to_the_web_only() -> None:
    email = describe(action("email:welcome", "email", subject="Welcome", to=["a@x.org", "b@x.org"]))
    assert email.summary == "Email “Welcome” to a@x.org, b@x.org"
    assert email.link is None
    pr = describe(
        action(
            "infra-pr",
            "pull_request",
            title="Deploy",
            url_or_path="https://github.com/2i2c-org/infrastructure/pull/9",
        )
    )
    assert (pr.summary, pr.link) == (
        "Infrastructure change: Deploy",
        "https://github.com/2i2c-org/infrastructure/pull/9",
    )
    local = describe(action("infra-pr", "pull_request", title="Deploy", url_or_path="/srv/infra"))
    assert local.link is None
    issue = describe(
        action("follow-up:1", "follow_up_issue", title="[c] GPU", url="https://github.com/i/1")
    )
    assert issue.link == "https://github.com/i/1"
    assert "GPU" in issue.summary
    decision = describe(action("technical-decisions", "decision", responded_by="Jo"))
    assert decision.summary == "Technical decisions recorded by Jo"
    hours = describe(
        action(
            "support-hours:x", "support_hours", hours="1.5", on="2027-03-01", by="jo", note="img"
        )
    )
    assert hours.summary == "Support: 1.5 h on 2027-03-01 by jo: img"
    other = describe(action("quay", "container_registry", url="javascript:alert(1)"))
    assert (other.summary, other.link) == ("Container registry: quay", None)


def test_documents_are_the_files_of_the_community_folder(tmp_path: Path) -> None:
    folder = tmp_path / "c"
    folder.mkdir()
    (folder / "rollout-deck-v1.pptx").write_bytes(b"pptx")
    (folder / "checkin-2027q1.html").write_text("<p>report</p>")
    (folder / ".hidden").write_text("x")
    (folder / "sub").mkdir()
    secret = tmp_path / "engagements.sqlite"
    secret.write_text("secret")
    os.symlink(secret, folder / "link.txt")
    actions = [action("deck:v1", "document", pptx=str(folder / "rollout-deck-v1.pptx"))]
    documents = list_documents(folder, actions)
    assert [(d.name, d.label) for d in documents] == [
        ("checkin-2027q1.html", ""),
        ("rollout-deck-v1.pptx", "deck:v1"),
    ]
    assert document_path(folder, "rollout-deck-v1.pptx") == folder / "rollout-deck-v1.pptx"
    for name in ("../engagements.sqlite", ".hidden", "sub", "missing", "link.txt"):
        assert document_path(folder, name) is None, name
    assert list_documents(tmp_path / "none", actions) == []


def test_support_hours_of_this_quarter_and_the_three_before() -> None:
    actions = [
        action(f"support-hours:{i}", "support_hours", on=on, hours=hours, note="n", by="b")
        for i, (on, hours) in enumerate(
            [("2027-03-01", "3"), ("2027-02-01", "2"), ("2026-11-01", "1"), ("2025-01-01", "9")]
        )
    ]
    quarters = quarters_of_support(actions, dt.date(2027, 3, 10))
    assert [(q.quarter, q.used, q.over) for q in quarters] == [
        (Quarter(2027, 1), Decimal(5), True),
        (Quarter(2026, 4), Decimal(1), False),
        (Quarter(2026, 3), Decimal(0), False),
        (Quarter(2026, 2), Decimal(0), False),
    ]


def test_milestone_lines_know_lateness_and_the_dag_that_waits() -> None:
    lines = milestone_lines(
        [
            MilestoneRecord("c", "technical_meeting_held", dt.date(2027, 2, 1), AT, "jo", "zoom"),
            MilestoneRecord("c", "rollout_deck_reviewed", dt.date(2027, 3, 5)),
            MilestoneRecord("c", "checkin_held_2027q1", dt.date(2027, 3, 30)),
        ],
        dt.date(2027, 3, 10),
    )
    held, deck, checkin = lines
    assert (held.done, held.late_days, held.overdue_days) == (True, 28, 0)
    assert (deck.done, deck.overdue_days, deck.dag_id) == (False, 5, "engagement_onboarding")
    assert checkin.dag_id == "engagement_quarterly_checkin"
    assert checkin.title == "Quarterly check-in meeting held (2027Q1)"
