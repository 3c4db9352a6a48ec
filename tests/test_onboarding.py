from __future__ import annotations

import copy

import pytest

from engagements.config import parse_config
from engagements.messages.emails import EmailKind
from engagements.onboarding import (
    OnboardingRefused,
    effective_config,
    plan_training,
    premium_reason,
    problems_key,
    record_follow_ups,
    register,
    send_once,
    signoff_problems,
)
from engagements.settings import Settings
from engagements.store.base import Engagement, EngagementStatus
from engagements.store.local import LocalStore


@pytest.fixture
def store(tmp_path):
    return LocalStore(tmp_path / "store.sqlite")


def never_running(run_id: str) -> str | None:
    return None


def signed(config) -> Engagement:
    return Engagement(
        config.community_id,
        config.name,
        EngagementStatus.CLOSED_WON,
        config.to_dict(),
        agreement_signed_community=True,
        agreement_signed_2i2c=True,
        agreement_signed_css=True,
        agreement_url="https://airtable.example/agreement.pdf",
    )


def test_register_records_engagement_contacts_and_plan(store, example_config):
    register(store, example_config, run_id="run-1", run_state=never_running)
    engagement = store.get_engagement("openscience")
    assert engagement.status == EngagementStatus.CLOSED_WON
    assert engagement.onboarding_run_id == "run-1"
    roles = {c.email: c.role for c in store.list_contacts("openscience")}
    assert roles == {
        "ada@openscience.example.org": "technical lead",
        "grace@openscience.example.org": "representative",
        "ap@openscience.example.org": "invoicing",
    }
    due = {m.milestone: m.due for m in store.list_milestones("openscience")}
    assert str(due["technical_meeting_held"]) == "2026-11-27"
    assert due["configuration_completed"] is None


def test_register_is_idempotent_for_the_same_run(store, example_config):
    for _ in range(2):
        register(store, example_config, run_id="run-1", run_state=never_running)
    assert len(store.list_engagements()) == 1
    assert len(store.list_contacts("openscience")) == 3


def test_second_run_refused_while_the_first_is_running(store, example_config):
    register(store, example_config, run_id="run-1", run_state=never_running)
    with pytest.raises(OnboardingRefused, match="already being onboarded by run 'run-1'"):
        register(store, example_config, run_id="run-2", run_state=lambda r: "running")
    assert store.get_engagement("openscience").onboarding_run_id == "run-1"


def test_second_run_refused_after_onboarding_finished(store, example_config):
    register(store, example_config, run_id="run-1", run_state=never_running)
    store.update_engagement("openscience", status=EngagementStatus.ACTIVE)
    with pytest.raises(OnboardingRefused, match="is Active"):
        register(store, example_config, run_id="run-2", run_state=lambda r: "success")


def test_a_failed_run_can_be_replaced(store, example_config):
    register(store, example_config, run_id="run-1", run_state=never_running)
    register(store, example_config, run_id="run-2", run_state=lambda r: "failed")
    assert store.get_engagement("openscience").onboarding_run_id == "run-2"


def test_signoff_complete(example_config):
    assert signoff_problems(example_config, signed(example_config)) == []


def test_signoff_lists_every_problem(example_dict):
    data = copy.deepcopy(example_dict)
    data["invoice_contact"] = None
    data["contract"]["hubspot_deal_id"] = None
    data["answers"] = {"future": "x", "community": None, "mission": "", "data": "y"}
    config = parse_config(data)
    unsigned = Engagement(config.community_id, config.name, EngagementStatus.CLOSED_WON, {})
    problems = signoff_problems(config, unsigned)
    text = "\n".join(problems)
    assert "not signed by the community, 2i2c, CS&S" in text
    assert "not uploaded" in text
    assert "hubspot_deal_id" in text
    assert "invoicing contact" in text
    assert "answers.community" in text
    assert "answers.mission" in text
    assert len(problems) == 6


def test_revenue_must_include_cloud_costs(example_dict):
    data = copy.deepcopy(example_dict)
    data["contract"]["revenue_usd"] = 1000
    config = parse_config(data)
    assert any("estimated cloud costs" in p for p in signoff_problems(config, signed(config)))


def test_problems_key_changes_with_the_problems():
    assert problems_key(["a"]) == problems_key(["a"])
    assert problems_key(["a"]) != problems_key(["a", "b"])


def test_premium_routing(example_dict, example_config):
    assert premium_reason(example_config) is None
    data = copy.deepcopy(example_dict)
    data["cloud"]["access_managed_by_2i2c"] = False
    assert "cannot manage its own access" in premium_reason(parse_config(data))
    assert "premium tier" in premium_reason(parse_config({**example_dict, "tier": "premium"}))


def test_send_once_sends_and_records_then_never_again(store, example_config):
    register(store, example_config, run_id="r", run_state=never_running)
    sent = []
    first = send_once(store, example_config, Settings(), EmailKind.WELCOME, sent.append)
    second = send_once(store, example_config, Settings(), EmailKind.WELCOME, sent.append)
    assert first is not None
    assert second is None
    assert len(sent) == 1
    action = store.get_action("openscience", "email:welcome")
    assert action.detail["message_id"] == first.message_id == sent[0]["Message-ID"]


def test_failed_delivery_leaves_the_intent_and_a_rerun_sends_it(store, example_config):
    register(store, example_config, run_id="r", run_state=never_running)

    def refuse(message):
        raise ConnectionRefusedError("no SMTP server")

    with pytest.raises(ConnectionRefusedError):
        send_once(store, example_config, Settings(), EmailKind.WELCOME, refuse)
    assert store.get_action("openscience", "email:welcome").detail["state"] == "sending"
    sent = []
    assert send_once(store, example_config, Settings(), EmailKind.WELCOME, sent.append)
    assert len(sent) == 1
    assert store.get_action("openscience", "email:welcome").detail["state"] == "sent"


def test_follow_ups_are_not_duplicated(store, example_config):
    register(store, example_config, run_id="r", run_state=never_running)
    requirements = [
        "Custom domain hub.openscience.org",
        "  custom domain   hub.openscience.org ",
        "",
    ]
    keys = record_follow_ups(store, "openscience", requirements)
    assert len(set(keys)) == 1
    record_follow_ups(store, "openscience", requirements)
    assert len(store.list_actions("openscience", kind="follow_up_issue")) == 1


def test_training_plan_is_stable(store, example_config):
    register(store, example_config, run_id="r", run_state=never_running)
    first = plan_training(store, example_config)
    assert len(first) == 8
    assert first == plan_training(store, example_config)


def test_effective_config_applies_decisions(store, example_config):
    register(store, example_config, run_id="r", run_state=never_running)
    store.update_engagement("openscience", decisions={"cloud.gpu": True})
    assert effective_config(store.get_engagement("openscience")).cloud.gpu is True
