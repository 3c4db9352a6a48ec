"""The teardown pull request, the merge it waits for, and the destroy job, run only as approved."""

from __future__ import annotations

import datetime as dt
import subprocess

import pytest
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from engagements.operators.decommission.cluster_gone import (
    VerifyClusterGoneOperator,
)
from engagements.operators.decommission.notices import (
    DecommissionNoticeOperator,
)
from engagements.operators.decommission.teardown import (
    DestroyClusterOperator,
    OpenTeardownPullRequestOperator,
)
from engagements.sensors.decommission import TeardownMergedSensor
from engagements.settings import Settings
from engagements.store.base import EngagementStatus
from tests.decommission.conftest import (
    BRANCH,
    CONTEXT,
    approve,
    approved,
    commit_by_hand,
    git,
    make,
    merge_wait,
    propose_and_merge,
    record,
    renew,
)

pytestmark = pytest.mark.usefixtures("hubs")


def test_teardown_pull_request_removes_the_cluster_and_its_iac(ending, infra_repo):
    approved(ending)
    detail = make(OpenTeardownPullRequestOperator, ending).execute(CONTEXT)
    assert detail["branch"] == BRANCH
    assert detail["committed"] is True
    left = git(infra_repo, "ls-tree", "-r", "--name-only", BRANCH).split()
    assert left == ["README.md", "config/clusters/othersci/cluster.yaml"]
    body = git(infra_repo, "log", "-1", "--format=%B", BRANCH)
    assert "GitHub OAuth app `openscience-prod` in 2i2c-org" in body
    assert "GitHub repositories created for the community stay with the community" in body
    # the base branch is untouched until a person merges the change
    assert "config/clusters/openscience/cluster.yaml" in git(
        infra_repo, "ls-tree", "-r", "--name-only", "main"
    )
    again = make(OpenTeardownPullRequestOperator, ending).execute(CONTEXT)
    assert again["committed"] is False
    assert again["commit"] == detail["commit"]


def test_a_teardown_that_removes_nothing_is_an_error_not_a_merge(ending, infra_repo):
    """The cluster's files were already removed by hand: no empty change, nothing destroyed."""
    approved(ending)
    commit_by_hand(infra_repo, "Remove openscience", "config/clusters/openscience", "terraform",
                   "eksctl")  # fmt: skip
    with pytest.raises(AirflowFailException, match="The teardown change removes nothing"):
        make(OpenTeardownPullRequestOperator, ending).execute(CONTEXT)
    assert "decommission-openscience" not in git(infra_repo, "branch", "--list")
    assert ending.get_action("openscience", "decommission:teardown-pr:2027-11-30") is None


def test_a_teardown_must_remove_the_cluster_configuration(ending, infra_repo):
    approved(ending)
    commit_by_hand(infra_repo, "Remove the config only", "config/clusters/openscience")
    with pytest.raises(AirflowFailException, match=r"does not remove the cluster's configurati"):
        make(OpenTeardownPullRequestOperator, ending).execute(CONTEXT)
    assert ending.get_action("openscience", "decommission:teardown-pr:2027-11-30") is None


def test_an_empty_teardown_branch_is_never_taken_for_merged(ending, infra_repo, kubernetes):
    """A branch pointing back at main's commit (reset by hand) holds no removal."""
    approved(ending)
    detail = make(OpenTeardownPullRequestOperator, ending).execute(CONTEXT)
    git(infra_repo, "branch", "-f", BRANCH, detail["base_commit"])
    with pytest.raises(AirflowFailException, match="holds no change of its own"):
        make(TeardownMergedSensor, ending).poke(CONTEXT)
    with pytest.raises(AirflowFailException, match="is empty, not merged"):
        make(DestroyClusterOperator, ending, image="x").execute(CONTEXT)
    assert kubernetes == []


def test_renewal_after_approval_cancels_before_any_delete(ending, infra_repo):
    sent: list = []
    approved(ending)
    make(DecommissionNoticeOperator, ending, sent, stage="before-end").execute(CONTEXT)
    renew(ending)
    with pytest.raises(AirflowSkipException, match="renewed meanwhile"):
        make(OpenTeardownPullRequestOperator, ending, sent).execute(CONTEXT)
    assert "decommission-openscience" not in git(infra_repo, "branch", "--list")
    with pytest.raises(AirflowSkipException, match="cancelled"):
        make(DestroyClusterOperator, ending).execute(CONTEXT)
    assert sent[-1]["Message-ID"].startswith("<decommission-cancelled.")
    assert ending.get_engagement("openscience").status is EngagementStatus.ACTIVE


def test_destroy_without_tooling_skips_with_the_commands(ending, infra_repo):
    approved(ending)
    before = git(infra_repo, "rev-parse", "main").strip()
    propose_and_merge(ending, infra_repo)
    with pytest.raises(AirflowSkipException) as skipped:
        make(DestroyClusterOperator, ending).execute(CONTEXT)
    message = str(skipped.value)
    assert message.startswith("skipped: no tooling image (engagements_tooling_image) configured")
    assert f"INFRA_REF={before} (the last commit holding the cluster's inputs)" in message
    assert "terraform -chdir=terraform/aws destroy -auto-approve" in message
    assert "eksctl delete cluster --config-file=eksctl/openscience.eksctl.yaml" in message
    assert ending.get_action("openscience", "decommission:destroy:2027-11-30") is None


def test_destroy_refuses_a_change_that_is_not_merged(ending, infra_repo, kubernetes):
    """Marking the merge wait success in the UI does not let the destroy run unreviewed."""
    approved(ending)
    make(OpenTeardownPullRequestOperator, ending).execute(CONTEXT)
    with pytest.raises(AirflowFailException, match=r"is open, not merged: nothing is destroyed"):
        make(DestroyClusterOperator, ending, image="quay.io/2i2c/tooling:1").execute(CONTEXT)
    assert kubernetes == []
    assert ending.get_action("openscience", "decommission:destroy:2027-11-30") is None


def test_destroy_from_a_local_repository_needs_a_url_the_pod_can_clone(
    ending, infra_repo, kubernetes
):
    approved(ending)
    propose_and_merge(ending, infra_repo)
    with pytest.raises(AirflowSkipException, match="tooling pod cannot clone"):
        make(DestroyClusterOperator, ending, image="quay.io/2i2c/tooling:1").execute(CONTEXT)
    assert kubernetes == []


def test_destroy_runs_from_the_last_commit_holding_the_inputs(
    ending, infra_repo, kubernetes, tmp_path, monkeypatch
):
    """The merged change deleted the tfvars and jsonnet; the pod checks out the commit before.

    The pod's script runs here with stand-ins for the cloud tools, which fail unless the files
    they are given exist in the checkout.
    """
    monkeypatch.setenv("ENGAGEMENTS_INFRA_CLONE_URL", infra_repo.as_uri())  # a git server
    approved(ending)
    before = git(infra_repo, "rev-parse", "main").strip()
    propose_and_merge(ending, infra_repo)
    make(OpenTeardownPullRequestOperator, ending).execute(CONTEXT)  # a re-run after the merge
    op = make(DestroyClusterOperator, ending, image="quay.io/2i2c/tooling:1")
    op.execute(CONTEXT)
    (pod,) = kubernetes
    assert pod.kubernetes_conn_id == "kubernetes_default"
    assert pod.image == "quay.io/2i2c/tooling:1"
    assert pod.env_vars == {
        "CLUSTER": "openscience",
        "PROVIDER": "aws",
        "INFRA_URL": infra_repo.as_uri(),
        "INFRA_REF": before,
    }

    tools = tmp_path / "bin"
    tools.mkdir()
    calls = tmp_path / "calls.log"
    stand_in = f"""#!/bin/sh
echo "$(basename "$0") $*" >> {calls}
for arg in "$@"; do
  case "$arg" in
    -chdir=*) cd "${{arg#-chdir=}}" ;;
    -var-file=*) test -f "${{arg#-var-file=}}" || {{ echo "missing ${{arg#-var-file=}}"; exit 1; }} ;;
    *.jsonnet) test -f "$arg" || {{ echo "missing $arg"; exit 1; }} ;;
  esac
done
"""
    for tool in ("deployer", "terraform", "jsonnet", "eksctl"):
        (tools / tool).write_text(stand_in)
        (tools / tool).chmod(0o755)
    script = pod.arguments[0].replace("/tmp/infrastructure", str(tmp_path / "checkout"))
    result = subprocess.run(
        ["/bin/sh", "-c", script],
        env={**pod.env_vars, "PATH": f"{tools}:/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    ran = calls.read_text().splitlines()
    assert ran[0] == "deployer grafana central-ds remove openscience"
    assert ran[-1].startswith("eksctl delete cluster --config-file=eksctl/openscience.eksctl.yaml")
    assert len(ran) == 7


def test_destroy_runs_exactly_the_approved_commands(ending, infra_repo, kubernetes, monkeypatch):
    """A setting changed after the approval is neither run nor silently dropped: refused."""
    monkeypatch.setenv("ENGAGEMENTS_INFRA_CLONE_URL", infra_repo.as_uri())
    record(ending, "backup-verified", {"hubs": {}})
    approve(ending, command="make destroy CLUSTER=openscience")
    as_approved = Settings(teardown_command="make destroy CLUSTER=openscience")
    proposing = make(OpenTeardownPullRequestOperator, ending)
    proposing.settings = as_approved
    detail = proposing.execute(CONTEXT)
    git(infra_repo, "merge", "--quiet", BRANCH)
    body = git(infra_repo, "log", "-1", "--format=%B", detail["commit"])
    assert "```\nmake destroy CLUSTER=openscience\n```" in body
    approval = ending.get_action("openscience", "decommission:approval:2027-11-30")
    assert approval.detail["steps"]["digest"] in body

    changed = make(DestroyClusterOperator, ending, image="quay.io/2i2c/tooling:1")
    changed.settings = Settings(teardown_command="make destroy-everything")
    with pytest.raises(AirflowFailException) as refused:
        changed.execute(CONTEXT)
    assert "the teardown plan changed since it was approved" in str(refused.value)
    assert "'make destroy-everything'" in str(refused.value)
    assert kubernetes == []

    # The settings as approved: the pod runs the approved command and nothing else.
    op = make(DestroyClusterOperator, ending, image="quay.io/2i2c/tooling:1")
    op.settings = as_approved
    result = op.execute(CONTEXT)
    (pod,) = kubernetes
    assert pod.arguments[0].endswith(
        'git checkout --quiet "$INFRA_REF" && make destroy CLUSTER=openscience'
    )
    assert result["approved_digest"] == approval.detail["steps"]["digest"]


def test_a_changed_config_or_a_tampered_approval_destroys_nothing(ending, infra_repo, kubernetes):
    approved(ending)
    propose_and_merge(ending, infra_repo)
    key = "decommission:approval:2027-11-30"
    detail = ending.get_action("openscience", key).detail
    forged = {**detail, "steps": {**detail["steps"], "commands": ["rm -rf /"]}}
    ending.update_action("openscience", key, forged)
    with pytest.raises(AirflowFailException, match="do not match their digest"):
        make(DestroyClusterOperator, ending, image="x").execute(CONTEXT)

    ending.update_action("openscience", key, detail)
    engagement = ending.get_engagement("openscience")
    gcp = {"provider": "gcp", "region": "us-central1", "account": "openscience-project"}
    config = {**engagement.config, "cloud": {**engagement.config["cloud"], **gcp}}
    ending.update_engagement("openscience", config=config)
    with pytest.raises(AirflowFailException, match="provider: approved 'aws', now 'gcp'"):
        make(DestroyClusterOperator, ending, image="x").execute(CONTEXT)
    assert kubernetes == []


def test_destroy_needs_the_proposed_change(ending):
    approved(ending)
    with pytest.raises(AirflowFailException, match="teardown change is not proposed"):
        make(DestroyClusterOperator, ending, image="x").execute(CONTEXT)


def test_renewal_while_the_change_waits_for_review_withdraws_it(ending, infra_repo):
    sent: list = []
    approved(ending)
    make(DecommissionNoticeOperator, ending, sent, stage="before-end").execute(CONTEXT)
    make(OpenTeardownPullRequestOperator, ending).execute(CONTEXT)
    assert merge_wait(ending).poke(CONTEXT) is False  # waiting for a reviewer

    renew(ending)
    with pytest.raises(AirflowSkipException, match="cancelled"):
        merge_wait(ending, sent).poke(CONTEXT)
    assert "decommission-openscience" not in git(infra_repo, "branch", "--list")
    cancelled = ending.get_action("openscience", "decommission:cancelled:2027-11-30")
    assert cancelled.detail["teardown_change"]["state"] == "withdrawn"
    assert sent[-1]["Message-ID"].startswith("<decommission-cancelled.")
    with pytest.raises(AirflowSkipException, match="cancelled"):
        make(DestroyClusterOperator, ending, image="x").execute(CONTEXT)


def test_renewal_after_the_change_was_merged_fails_naming_the_revert(
    ending, infra_repo, kubernetes
):
    approved(ending)
    propose_and_merge(ending, infra_repo)
    renew(ending)
    with pytest.raises(AirflowFailException, match=r"already merged .*revert it"):
        make(DestroyClusterOperator, ending, image="quay.io/2i2c/tooling:1").execute(CONTEXT)
    assert kubernetes == []
    cancelled = ending.get_action("openscience", "decommission:cancelled:2027-11-30")
    assert cancelled.detail["teardown_change"]["state"] == "merged"
    with pytest.raises(AirflowSkipException, match="cancelled"):  # later steps just stop
        make(VerifyClusterGoneOperator, ending).execute(CONTEXT)


def test_a_backup_expiring_soon_blocks_the_teardown(ending, infra_repo):
    """A teardown delayed past the backup's useful life removes nothing and says what to do."""
    soon = (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=10)).isoformat()
    record(ending, "backup-verified", {"hubs": {"prod": {"expires_on": soon}}})
    approve(ending)
    with pytest.raises(AirflowFailException, match=rf"expires on {soon}, 10 days from now"):
        make(OpenTeardownPullRequestOperator, ending).execute(CONTEXT)
    assert "decommission-openscience" not in git(infra_repo, "branch", "--list")


def test_a_change_that_cannot_be_withdrawn_still_cancels_and_says_what_to_do(
    ending, infra_repo, monkeypatch
):
    from engagements.hooks.infra_repo import InfraRepositoryError
    from engagements.hooks.infra_repo.local import LocalGitInfraRepository

    approved(ending)
    make(OpenTeardownPullRequestOperator, ending).execute(CONTEXT)
    renew(ending)

    def broken(self, branch, reason):
        raise InfraRepositoryError(f"cannot delete {branch}: the repository is locked")

    monkeypatch.setattr(LocalGitInfraRepository, "withdraw_change", broken)
    with pytest.raises(AirflowFailException, match=rf"{BRANCH} could not be withdrawn .*by hand"):
        make(DestroyClusterOperator, ending, image="x").execute(CONTEXT)
    cancelled = ending.get_action("openscience", "decommission:cancelled:2027-11-30")
    assert cancelled.detail["teardown_change"]["state"] == "not withdrawn"
    with pytest.raises(AirflowSkipException, match="cancelled"):  # later steps just stop
        make(VerifyClusterGoneOperator, ending).execute(CONTEXT)
