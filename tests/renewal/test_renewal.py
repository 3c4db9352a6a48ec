"""Who is due for renewal, opening it, and the renewed and not-renewed outcomes."""

from __future__ import annotations

import datetime as dt

import pytest

from engagements.config import ConfigError
from engagements.renewal import (
    Decision,
    RenewalRefused,
    apply_renewal,
    decision_deadline,
    decision_key,
    decision_milestone,
    due_for_renewal,
    hand_over,
    open_renewal,
    opened_key,
)
from engagements.store.base import EngagementStatus
from tests.renewal.conftest import END, add_engagement, renew

TODAY = END - dt.timedelta(days=45)


def test_due_are_active_engagements_ending_within_60_days_not_yet_opened(store, config):
    add_engagement(store, config, "inside", end=TODAY + dt.timedelta(days=60))
    add_engagement(store, config, "outside", end=TODAY + dt.timedelta(days=61))
    add_engagement(store, config, "overdue", end=TODAY - dt.timedelta(days=3))
    add_engagement(
        store, config, "onboarding", end=TODAY + dt.timedelta(days=5),
        status=EngagementStatus.ONBOARDING,
    )  # fmt: skip
    add_engagement(store, config, "opened", end=TODAY + dt.timedelta(days=10))
    open_renewal(store, "opened", TODAY)

    due = {d.community_id: d.contract_end for d in due_for_renewal(store, TODAY)}

    # "opened" left Active when its renewal opened; "overdue" is late but must reach BD.
    assert due == {
        "inside": TODAY + dt.timedelta(days=60),
        "overdue": TODAY - dt.timedelta(days=3),
    }


def test_a_renewed_engagement_is_due_again_for_its_next_end(active, config):
    open_renewal(active, "openscience", TODAY)
    renew(active)
    assert due_for_renewal(active, TODAY) == []
    next_year = dt.date(2028, 10, 15)
    (due,) = due_for_renewal(active, next_year)
    assert due.contract_end == dt.date(2028, 11, 30)


def test_open_renewal_is_idempotent_and_plans_the_decision(active):
    _, end = open_renewal(active, "openscience", TODAY)
    again = open_renewal(active, "openscience", TODAY + dt.timedelta(days=1))

    assert end == END == again[1]
    engagement = active.get_engagement("openscience")
    assert engagement.status is EngagementStatus.RENEWAL
    milestone = active.get_milestone("openscience", "renewal_decided_2027_11_30")
    assert milestone.due == END
    assert not milestone.done
    (opened,) = active.list_actions("openscience", "renewal")
    assert opened.key == opened_key(END) == "renewal-opened:2027-11-30"
    assert opened.detail["opened_on"] == TODAY.isoformat()


def test_open_renewal_keeps_decommissioning_for_a_late_renewal(store, config):
    add_engagement(store, config, "late", status=EngagementStatus.DECOMMISSIONING)
    open_renewal(store, "late", TODAY)
    assert store.get_engagement("late").status is EngagementStatus.DECOMMISSIONING


@pytest.mark.parametrize("status", [EngagementStatus.DECOMMISSIONED, EngagementStatus.ONBOARDING])
def test_open_renewal_refuses_engagements_not_running(store, config, status):
    add_engagement(store, config, "gone", status=status)
    with pytest.raises(RenewalRefused, match=status.value):
        open_renewal(store, "gone", TODAY)
    assert store.list_actions("gone") == []


def test_decision_deadline_is_the_end_of_the_last_day_or_a_week():
    now = dt.datetime(2027, 10, 1, 9, tzinfo=dt.UTC)
    assert decision_deadline(END, now) == dt.datetime(2027, 12, 1, tzinfo=dt.UTC)
    late = dt.datetime(2027, 11, 29, 9, tzinfo=dt.UTC)
    assert decision_deadline(END, late) == late + dt.timedelta(days=7)


def test_renewed_gets_new_dates_and_stays_active(active):
    open_renewal(active, "openscience", TODAY)
    renewed = apply_renewal(
        active,
        "openscience",
        decided_end=END,
        new_end=dt.date(2028, 11, 30),
        new_start=None,
        decided_by="Bea (BD)",
        note="two more years signed",
    )
    assert renewed.status is EngagementStatus.ACTIVE
    assert renewed.config["contract"]["start"] == "2027-12-01"
    assert renewed.config["contract"]["end"] == "2028-11-30"
    # the rest of the config is unchanged
    assert (
        renewed.config["representatives"]
        == active.get_engagement("openscience").config["representatives"]
    )
    action = active.get_action("openscience", decision_key(END, Decision.RENEWED))
    assert action.detail["new_end"] == "2028-11-30"
    assert action.detail["decided_by"] == "Bea (BD)"
    milestone = active.get_milestone("openscience", decision_milestone(END))
    assert milestone.done_by == "Bea (BD)"
    assert "Renewed until 2028-11-30" in milestone.note


def test_renewal_rerun_completes_without_changing_anything(active):
    kwargs = {
        "decided_end": END,
        "new_end": dt.date(2028, 11, 30),
        "new_start": dt.date(2027, 12, 15),
        "decided_by": "bd",
    }
    first = apply_renewal(active, "openscience", **kwargs)
    second = apply_renewal(active, "openscience", **kwargs)
    assert first == second
    assert len(active.list_actions("openscience", "renewal")) == 1


def test_renewal_refuses_dates_that_do_not_move_forward(active):
    with pytest.raises(RenewalRefused, match="must be after"):
        apply_renewal(
            active, "openscience", decided_end=END, new_end=END, new_start=None, decided_by="bd"
        )
    with pytest.raises(ConfigError, match=r"contract: end \(2028-01-31\) must be after start"):
        apply_renewal(
            active,
            "openscience",
            decided_end=END,
            new_end=dt.date(2028, 1, 31),
            new_start=dt.date(2028, 2, 1),
            decided_by="bd",
        )
    engagement = active.get_engagement("openscience")
    assert engagement.config["contract"]["end"] == END.isoformat()
    assert active.list_actions("openscience") == []


def test_renewal_refuses_a_record_changed_since_the_decision(active):
    with pytest.raises(RenewalRefused, match="not 2027-06-30 as when the decision was taken"):
        apply_renewal(
            active,
            "openscience",
            decided_end=dt.date(2027, 6, 30),
            new_end=dt.date(2028, 6, 30),
            new_start=None,
            decided_by="bd",
        )


def test_not_renewed_hands_over_to_decommissioning(active):
    open_renewal(active, "openscience", TODAY)
    conf = hand_over(
        active, "openscience", decided_end=END, decided_by="bd", reason="funding ended"
    )
    assert conf == {"community_id": "openscience", "end_date": "2027-11-30"}
    assert active.get_engagement("openscience").status is EngagementStatus.DECOMMISSIONING
    action = active.get_action("openscience", decision_key(END, Decision.NOT_RENEWED))
    assert action.detail["reason"] == "funding ended"
    assert active.get_milestone("openscience", decision_milestone(END)).note == "funding ended"


def test_hand_over_refuses_when_renewed_meanwhile(active):
    renew(active)
    with pytest.raises(RenewalRefused, match="renewed meanwhile"):
        hand_over(active, "openscience", decided_end=END, decided_by="timeout", reason="none")
    assert active.get_engagement("openscience").status is EngagementStatus.ACTIVE
