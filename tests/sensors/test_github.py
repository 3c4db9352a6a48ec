"""Waiting for the merge (local git and GitHub) and for the community's GitHub org."""

from __future__ import annotations

import datetime as dt
import subprocess

import pytest
from airflow.sdk import PokeReturnValue
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from engagements.operators.github import OpenInfrastructurePullRequestOperator
from engagements.sensors.github import GitHubOrgReadySensor, PullRequestMergedSensor
from tests.hooks.test_github import FakeGitHub, github_connection

INFRA = "2i2c-org/infrastructure"


@pytest.fixture
def fake_github(monkeypatch):
    with FakeGitHub() as fake:
        monkeypatch.setenv("AIRFLOW_CONN_GITHUB_DEFAULT", github_connection(fake.url))
        monkeypatch.setenv("ENGAGEMENTS_INFRA_REPO", INFRA)
        fake.add_repo(INFRA)
        yield fake


def make(cls, store):
    op = cls(task_id=cls.__name__, community_id="openscience")
    op.store = store
    return op


def propose(store) -> dict:
    return make(OpenInfrastructurePullRequestOperator, store).execute({})


@pytest.mark.parametrize("cls", [PullRequestMergedSensor, GitHubOrgReadySensor])
def test_reschedule_mode_with_a_generous_timeout(cls):
    op = cls(task_id="wait")
    assert op.mode == "reschedule"
    assert op.timeout >= dt.timedelta(days=60).total_seconds()


def test_nothing_proposed_yet_is_a_clear_failure(store, local_infra):
    with pytest.raises(
        AirflowFailException, match="run \\(or clear\\) the open_cluster_pull_request"
    ):
        make(PullRequestMergedSensor, store).poke({})


def test_local_branch_waits_until_an_engineer_merges_it(store, local_infra):
    proposal = propose(store)
    sensor = make(PullRequestMergedSensor, store)
    assert sensor.poke({}) is False
    subprocess.run(
        ["git", "-C", str(local_infra), "-c", "user.name=Eng", "-c", "user.email=e@2i2c.org",
         "merge", "-q", "--no-ff", "-m", "Merge", "onboard-openscience"],
        check=True,
    )  # fmt: skip
    result = sensor.poke({})
    assert isinstance(result, PokeReturnValue)
    assert result.is_done
    assert result.xcom_value == {
        "branch": "onboard-openscience",
        "url_or_path": proposal["url_or_path"],
        "number": None,
    }


def test_a_named_branch_is_waited_on_instead_of_the_recorded_change(store, local_infra):
    from engagements.hooks.infra_repo.local import LocalGitInfraRepository

    LocalGitInfraRepository(local_infra).propose_change(
        "decommission-openscience", {"README.md": "teardown\n"}, "Tear down openscience", ""
    )
    sensor = PullRequestMergedSensor(
        task_id="teardown_pr_merged",
        community_id="openscience",
        branch="decommission-{{ params['community_id'] }}",
    )
    assert "branch" in sensor.template_fields
    sensor.branch = "decommission-openscience"  # as rendered from the run's params
    sensor.store = store  # nothing recorded for the onboarding: the branch alone is waited on
    assert sensor.poke({}) is False
    subprocess.run(
        ["git", "-C", str(local_infra), "-c", "user.name=Eng", "-c", "user.email=e@2i2c.org",
         "merge", "-q", "--no-ff", "-m", "Merge", "decommission-openscience"],
        check=True,
    )  # fmt: skip
    result = sensor.poke({})
    assert isinstance(result, PokeReturnValue)
    assert result.is_done
    assert result.xcom_value == {
        "branch": "decommission-openscience",
        "url_or_path": None,
        "number": None,
    }


def test_pull_request_waits_until_merged_on_github(store, fake_github):
    proposal = propose(store)
    sensor = make(PullRequestMergedSensor, store)
    assert sensor.poke({}) is False
    fake_github.merge(INFRA, proposal["number"])
    result = sensor.poke({})
    assert result.is_done
    assert result.xcom_value["number"] == proposal["number"]


def test_a_pull_request_closed_without_merging_fails_the_wait(store, fake_github):
    propose(store)
    fake_github.repos[INFRA].pulls[0]["state"] = "closed"
    with pytest.raises(
        AirflowFailException, match=r"without merging.*clear open_cluster_pull_request"
    ):
        make(PullRequestMergedSensor, store).poke({})


def test_a_deleted_branch_fails_the_wait(store, local_infra):
    propose(store)
    subprocess.run(
        ["git", "-C", str(local_infra), "branch", "-q", "-D", "onboard-openscience"], check=True
    )
    with pytest.raises(AirflowFailException, match=r"missing.*branch is gone"):
        make(PullRequestMergedSensor, store).poke({})


def test_org_sensor_without_github_skips_reporting_the_plan(store, local_infra):
    with pytest.raises(AirflowSkipException) as skipped:
        make(GitHubOrgReadySensor, store).poke({})
    message = str(skipped.value)
    assert "'github_default' is not defined" in message
    assert "repository openscience-org/hub-docs from template" in message


def test_org_sensor_waits_for_the_org_then_for_ownership(store, fake_github, caplog):
    caplog.set_level("INFO")
    sensor = make(GitHubOrgReadySensor, store)
    assert sensor.poke({}) is False
    assert "openscience-org does not exist yet" in caplog.text

    fake_github.add_org("openscience-org", bot_role=None)
    assert sensor.poke({}) is False
    assert "is not a member of openscience-org" in caplog.text

    fake_github.add_org("openscience-org", bot_role="member")
    assert sensor.poke({}) is False
    assert "not an owner" in caplog.text

    fake_github.add_org("openscience-org", bot_role="admin")
    result = sensor.poke({})
    assert result.is_done
    assert result.xcom_value == {"org": "openscience-org", "bot": "engagements-bot"}


def test_org_sensor_accepts_the_bots_invitation(store, fake_github):
    fake_github.add_org("openscience-org", bot_role="admin", bot_state="pending")
    assert make(GitHubOrgReadySensor, store).poke({}).is_done
    assert fake_github.orgs["openscience-org"]["bot"]["state"] == "active"
