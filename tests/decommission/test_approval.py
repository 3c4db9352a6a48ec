"""The teardown approval form: the verified manifests, the steps, the typed community id."""

from __future__ import annotations

import pytest
from airflow.sdk.exceptions import AirflowFailException, TaskAwaitingInput

from engagements.operators.decommission.backup import VerifyBackupOperator
from engagements.operators.decommission.teardown import (
    OpenTeardownPullRequestOperator,
)
from engagements.settings import Settings
from tests.conftest import waiting
from tests.decommission.conftest import (
    CONTEXT,
    answer,
    approval,
    form_shown,
    make,
    ready_buckets,
)

pytestmark = pytest.mark.usefixtures("hubs")


def test_approval_form_shows_the_manifest_and_the_plan(ending, aws, config):
    ready_buckets(ending)
    make(VerifyBackupOperator, ending).execute(CONTEXT)
    op = approval(ending)
    op.prepare_form(config)
    assert "#### Hub `prod`: verified" in op.body
    assert "| grace | `grace/archive-2027-12-01.tar.gz` |" in op.body
    assert "kept until 2028-02-29" in op.body
    assert "`config/clusters/openscience/`" in op.body
    assert "eksctl delete cluster" in op.body
    assert op.defaults is None


def test_approval_needs_the_community_id_typed(ending, aws, form_requests, caplog):
    ready_buckets(ending)
    make(VerifyBackupOperator, ending).execute(CONTEXT)
    with pytest.raises(TaskAwaitingInput):
        approval(ending).execute_complete(waiting(CONTEXT), answer("Approve", "openscienc"))
    assert "not 'openscience'" in caplog.text
    partial = answer("Approve", "openscience") | {"params_input": {}}  # a REST answer
    with pytest.raises(TaskAwaitingInput):
        approval(ending).execute_complete(waiting(CONTEXT), partial)
    assert ending.get_action("openscience", "decommission:approval:2027-11-30") is None
    form = form_requests[0]
    assert form["params"]["confirm_community_id"]["schema"]["pattern"] == "^(?:openscience)?$"
    assert len(form_requests) == 2
    approval(ending).execute_complete({}, answer("Approve", "openscience"))
    detail = ending.get_action("openscience", "decommission:approval:2027-11-30").detail
    assert detail["approved"] is True
    assert detail["by"] == "Eve (engineer)"
    steps = ending.get_action("openscience", "decommission:approval-form:2027-11-30").detail
    steps = steps["steps"]
    assert detail["steps"] == steps
    assert len(steps["digest"]) == 64


def test_approval_records_the_steps_the_form_showed(ending, aws, config, form_requests, caplog):
    """The form shows the commands that will run (the setting's, when set) and their digest."""
    ready_buckets(ending)
    make(VerifyBackupOperator, ending).execute(CONTEXT)
    op = approval(ending)
    op.settings = Settings(teardown_command="make destroy CLUSTER=openscience")
    op.prepare_form(config)
    form = ending.get_action("openscience", "decommission:approval-form:2027-11-30")
    assert form.detail["steps"]["commands"] == ["make destroy CLUSTER=openscience"]
    assert "```\nmake destroy CLUSTER=openscience\n```" in op.body
    assert form.detail["steps"]["digest"] in op.body
    assert "eksctl delete cluster" not in op.body

    # Answered after the setting was changed: what the form showed is no longer the plan, so
    # nothing is approved and the form asks again, showing the plan as it is now.
    later = approval(ending)
    later.settings = Settings(teardown_command="make destroy-everything")
    with pytest.raises(TaskAwaitingInput):
        later.execute_complete(waiting(CONTEXT), answer("Approve", "openscience"))
    assert "not approved: the teardown plan changed" in caplog.text
    assert ending.get_action("openscience", "decommission:approval:2027-11-30") is None
    shown_again = ending.get_action("openscience", "decommission:approval-form:2027-11-30")
    assert shown_again.detail["steps"]["commands"] == ["make destroy-everything"]
    assert "```\nmake destroy-everything\n```" in form_requests[-1]["body"]
    later.execute_complete({}, answer("Approve", "openscience"))
    detail = ending.get_action("openscience", "decommission:approval:2027-11-30").detail
    assert detail["steps"] == shown_again.detail["steps"]


def test_an_approval_without_the_steps_shown_approves_nothing(ending, aws, form_requests, caplog):
    ready_buckets(ending)
    make(VerifyBackupOperator, ending).execute(CONTEXT)
    with pytest.raises(TaskAwaitingInput):
        approval(ending).execute_complete(waiting(CONTEXT), answer("Approve", "openscience"))
    assert "steps this form showed are not recorded" in caplog.text
    assert ending.get_action("openscience", "decommission:approval:2027-11-30") is None
    assert ending.get_action("openscience", "decommission:approval-form:2027-11-30") is not None


def test_approval_rejected_is_recorded_and_removes_nothing(ending):
    form_shown(ending)
    approval(ending).execute_complete({}, answer("Reject", ""))
    detail = ending.get_action("openscience", "decommission:approval:2027-11-30").detail
    assert detail["approved"] is False
    with pytest.raises(AirflowFailException, match="not approved"):
        make(OpenTeardownPullRequestOperator, ending).execute(CONTEXT)
