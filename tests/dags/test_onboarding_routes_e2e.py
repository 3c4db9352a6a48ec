"""End-to-end: the onboarding runs that stop early (sign-off incomplete, not Advanced Tier)."""

from __future__ import annotations

import copy
import datetime as dt

import pytest

from tests.dags.e2e import parse_dag, states

pytestmark = pytest.mark.e2e

DAG_ID = "engagement_onboarding"


def run(config: dict, hour: int):
    from engagements.params import flatten_config

    when = dt.datetime(2026, 11, 26, hour, tzinfo=dt.UTC)
    return parse_dag(DAG_ID).test(
        logical_date=when, run_after=when, run_conf=flatten_config(config)
    )


def test_incomplete_signoff_fails_the_run_and_emails_bd_once(airflow_db, outbox, example_dict):
    from engagements.hooks.store import get_store

    config = copy.deepcopy(example_dict)
    config["community_id"] = "unsigned"
    config["answers"]["data"] = None
    get_store().upsert_engagement("unsigned", config["name"], config)  # BD has signed nothing

    first = run(config, 1)
    assert first.state == "failed"
    found = states(first)
    assert found["bd_signoff_check"] == "failed"
    assert found["send_welcome_email"] in ("upstream_failed", None)
    (mail,) = [
        m for m in outbox.messages() if m["Message-ID"].startswith("<signoff-problems.unsigned.")
    ]
    assert mail["To"] == "bd@2i2c.org"
    body = mail.get_body(("plain",)).get_content()
    assert "CS&S" in body
    assert "answers.data" in body

    # The record names a run Airflow no longer has (deleted from its history): the execution
    # API answers 404 through the real task runner, and only that lets the next run register.
    get_store().update_engagement("unsigned", onboarding_run_id="manual__deleted-run")
    second = run(config, 2)
    assert second.state == "failed"
    assert states(second)["register"] == "success"
    assert get_store().get_engagement("unsigned").onboarding_run_id == second.run_id
    again = [
        m for m in outbox.messages() if m["Message-ID"].startswith("<signoff-problems.unsigned.")
    ]
    assert len(again) == 1, "the same problems are not emailed twice"


def test_access_not_managed_by_2i2c_routes_to_premium_and_deploys_nothing(
    airflow_db, outbox, example_dict
):
    from engagements.hooks.store import get_store

    config = copy.deepcopy(example_dict)
    config["community_id"] = "institutional"
    config["cloud"]["access_managed_by_2i2c"] = False
    get_store().upsert_engagement(
        "institutional",
        config["name"],
        config,
        agreement_signed_community=True,
        agreement_signed_2i2c=True,
        agreement_signed_css=True,
        agreement_url="https://airtable.example/agreement.pdf",
    )

    finished = run(config, 3)
    assert finished.state == "success"
    found = states(finished)
    assert found["premium_tier"] == "success"
    assert found["start_onboarding"] == "skipped"
    assert found["send_welcome_email"] == "skipped"
    assert found["deploy_infrastructure.infrastructure_deployed.wait"] == "skipped"
    assert get_store().get_engagement("institutional").status == "Premium referral"
    (mail,) = [
        m for m in outbox.messages() if m["Message-ID"].startswith("<premium-tier.institutional.")
    ]
    assert mail["To"] == "bd@2i2c.org"
    assert not [
        m for m in outbox.messages() if m["Message-ID"].startswith("<welcome.institutional.")
    ]
