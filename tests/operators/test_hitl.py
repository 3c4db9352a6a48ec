"""The human-in-the-loop forms, answered as the Required Actions page or REST would."""

from __future__ import annotations

import datetime as dt

import pytest
from airflow.sdk.exceptions import TaskAwaitingInput

from engagements.onboarding import effective_config
from engagements.operators.hitl import (
    DECISION_KEYS,
    RolloutOutcomeOperator,
    TechnicalDecisionsOperator,
    current_values,
)
from engagements.params import flatten_config
from tests.conftest import waiting


def answer(params_input: dict) -> dict:
    return {
        "chosen_options": ["OK"],
        "params_input": params_input,
        "responded_at": dt.datetime(2026, 11, 30, tzinfo=dt.UTC),
        "responded_by_user": {"id": "admin", "name": "admin"},
    }


def make(cls, store):
    op = cls(task_id=cls.__name__, community_id="openscience")
    op.store = store
    return op


def test_form_offers_every_runbook_decision_with_config_defaults(store, example_config):
    current = current_values(example_config.to_dict())
    assert set(current) == set(DECISION_KEYS)
    assert current["cloud.region"] == "us-west-2"
    assert current["hubs.community.allowed_teams"] == ["openscience-org:hub-users"]


def test_decisions_are_written_back_and_used_downstream(store, example_config):
    op = make(TechnicalDecisionsOperator, store)
    decisions = current_values(example_config.to_dict()) | {
        "cloud.gpu": True,
        "hubs.community.dask_gateway": True,
        "cloud.region": "us-east-1",
    }
    result = op.execute_complete({}, answer(decisions))
    assert result["cloud.gpu"] is True
    engagement = store.get_engagement("openscience")
    config = effective_config(engagement)
    assert config.cloud.gpu
    assert config.hubs.community.dask_gateway
    assert config.cloud.region == "us-east-1"
    assert store.get_action("openscience", "technical-decisions").detail["responded_by"] == "admin"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"cloud.region": "europe-west1"}, "region 'europe-west1' is not a aws region"),
        ({"cloud.region": "mars-north1"}, "Invalid input for param cloud.region"),
        ({"cloud.account": "not-an-account"}, "is not a 12-digit AWS account id"),
        ({"cloud.gpu": None}, "missing: answer every field"),
    ],
)
def test_a_broken_rule_asks_again_instead_of_failing(
    store, example_config, form_requests, caplog, change, reason
):
    """Nothing is stored, the form is written again (clearing the answer) and the task
    waits for a new one; the task's log says why."""
    op = make(TechnicalDecisionsOperator, store)
    decisions = current_values(example_config.to_dict()) | change
    if change == {"cloud.gpu": None}:
        del decisions["cloud.gpu"]  # a partial answer over REST
    with pytest.raises(TaskAwaitingInput):
        op.execute_complete(waiting({}), answer(decisions))
    assert store.get_engagement("openscience").decisions == {}
    assert store.get_action("openscience", "technical-decisions") is None
    (form,) = form_requests
    assert form["params"]["cloud.region"]["value"] == "us-west-2"
    if "missing" not in reason:
        assert reason in caplog.text
    assert "The form is open again" in caplog.text


def test_the_region_field_offers_only_regions(store):
    op = make(TechnicalDecisionsOperator, store)
    assert "us-west-2" in op.params.get_param("cloud.region").schema["enum"]
    assert "mars-north1" not in op.params.get_param("cloud.region").schema["enum"]


def test_rollout_outcome_is_stored(store):
    op = make(RolloutOutcomeOperator, store)
    detail = op.execute_complete(
        {},
        answer(
            {
                "notes": "They teach a summer school of 60.",
                "workflows": ["Survey notebook"],
                "requirements": ["Custom domain", " ", "S3 bucket for shared data"],
            }
        ),
    )
    assert detail["requirements"] == ["Custom domain", "S3 bucket for shared data"]
    assert store.get_action("openscience", "rollout-outcome").detail["notes"].startswith("They")


def test_flattened_config_feeds_the_form(example_config):
    flat = flatten_config(example_config.to_dict())
    assert all(key in flat for key in DECISION_KEYS)


def _forms():
    from engagements.operators.checkin import CheckinOutcomeOperator
    from engagements.operators.decommission.approval import TeardownApprovalOperator
    from engagements.operators.provision import ProvisionApprovalOperator
    from engagements.operators.renewal import RenewalDecisionOperator

    return [
        (TechnicalDecisionsOperator, {}),
        (RolloutOutcomeOperator, {}),
        (ProvisionApprovalOperator, {}),
        (CheckinOutcomeOperator, {"community_id": "openscience", "quarter": "2027Q1"}),
        (
            RenewalDecisionOperator,
            {
                "opened_task_id": "open_renewal",
                "renewed_task_id": "apply_renewal",
                "not_renewed_task_id": "hand_over",
            },
        ),
        (TeardownApprovalOperator, {}),
    ]


@pytest.mark.parametrize(("cls", "kwargs"), _forms(), ids=lambda v: getattr(v, "__name__", ""))
def test_forms_email_through_the_connection_the_email_operators_use(cls, kwargs):
    from engagements.tasks import EngagementOperator

    form = cls(task_id="form", **kwargs)
    assert form.smtp_conn_id == EngagementOperator(task_id="email").smtp_conn_id
    assert cls(task_id="form", smtp_conn_id="smtp_team", **kwargs).smtp_conn_id == "smtp_team"


@pytest.mark.parametrize(("cls", "kwargs"), _forms(), ids=lambda v: getattr(v, "__name__", ""))
def test_a_forms_email_is_delivered_through_the_given_connection(
    cls, kwargs, tmp_path, monkeypatch
):
    """A real SMTP server on loopback behind a connection that is not ``smtp_default``."""
    import json
    from email.message import EmailMessage

    from engagements.outbox import OutboxServer

    monkeypatch.delenv("AIRFLOW_CONN_SMTP_DEFAULT", raising=False)
    with OutboxServer(tmp_path) as server:
        conn = {
            "conn_type": "smtp",
            "host": "127.0.0.1",
            "port": server.port,
            "extra": {"disable_tls": True, "disable_ssl": True, "timeout": 5, "retry_limit": 0},
        }
        monkeypatch.setenv("AIRFLOW_CONN_SMTP_TEAM", json.dumps(conn))
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = "e@2i2c.org", "bd@2i2c.org", "Hi"
        message.set_content("Reminder")
        cls(task_id="form", smtp_conn_id="smtp_team", **kwargs).deliver(message)
        (received,) = server.messages()
    assert received["Subject"] == "Hi"
