"""Decommission operators against moto, the embedded store and a local infrastructure repo.

The only stand-in is the Kubernetes pod: there is no cluster here, so ``pod.execute`` is
replaced by a recorder where a test needs a configured cluster connection; what is checked is
the pod the operator would start (image, command, environment, volumes).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import subprocess
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException, TaskAwaitingInput

from engagements.decommission.archive import archive_bucket, lifecycle_configuration
from engagements.operators.decommission.approval import TeardownApprovalOperator
from engagements.operators.decommission.archive import (
    ArchiveHomeDirectoriesOperator,
    CreateArchiveBucketsOperator,
)
from engagements.operators.decommission.backup import VerifyBackupOperator
from engagements.operators.decommission.buckets import ArchiveBuckets
from engagements.operators.decommission.cluster_gone import (
    RecordDecommissionedOperator,
    VerifyClusterGoneOperator,
)
from engagements.operators.decommission.notices import (
    DecommissionNoticeOperator,
    StartDecommissionOperator,
)
from engagements.operators.decommission.teardown import (
    DestroyClusterOperator,
    OpenTeardownPullRequestOperator,
)
from engagements.renewal import apply_renewal
from engagements.sensors.decommission import TeardownMergedSensor
from engagements.settings import Settings
from engagements.store.base import EngagementStatus
from tests.conftest import waiting
from tests.decommission.conftest import ARCHIVE_DATE, REGION, put_archive, put_inventory

END = dt.date(2027, 11, 30)
HUBS = ("staging", "prod", "workshop")
BUCKETS = {hub: archive_bucket("openscience", hub) for hub in HUBS}
CONTEXT = {"run_id": "decommission__openscience__2027-11-30"}
BRANCH = "decommission-openscience-2027-11-30"


def make(cls, store, sent: list | None = None, **kwargs):
    op = cls(
        task_id=cls.__name__, community_id="openscience", contract_end=END.isoformat(), **kwargs
    )
    op.store = store
    op.settings = Settings()
    op.deliver = (sent if sent is not None else []).append
    return op


def record(store, step: str, detail: dict[str, Any]) -> None:
    store.record_action("openscience", f"decommission:{step}:{END.isoformat()}", step, detail)


def renew(store) -> None:
    apply_renewal(
        store,
        "openscience",
        decided_end=END,
        new_end=dt.date(2028, 11, 30),
        new_start=None,
        decided_by="Bea (BD)",
    )


@pytest.fixture
def ending(store, config):
    """The example community, ending on END and handed over to decommissioning."""
    data = config.to_dict()
    data["contract"]["end"] = END.isoformat()
    store.upsert_engagement(
        "openscience", config.name, data, status=EngagementStatus.DECOMMISSIONING
    )
    return store


@pytest.fixture(autouse=True)
def hubs(monkeypatch):
    """Each hub's users API, listing the users ``ready_buckets`` archives homes of."""
    import json

    from tests.hooks.fake_jupyterhub import FakeJupyterHub

    with contextlib.ExitStack() as stack:
        fakes = {hub: stack.enter_context(FakeJupyterHub()) for hub in HUBS}
        for hub, fake in fakes.items():
            for user in ["ada", "grace"] if hub == "prod" else ["ada"]:
                fake.add_user(user)
            fake.add_user("bd-staff", used=False)  # an admin who never started a server
            conn = {"conn_type": "http", "host": fake.url, "password": fake.token}
            monkeypatch.setenv(
                f"AIRFLOW_CONN_JUPYTERHUB_OPENSCIENCE_{hub.upper()}", json.dumps(conn)
            )
        yield fakes


@pytest.fixture
def kubernetes(monkeypatch):
    """A configured cluster connection, and the pods the operators would start."""
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

    pods: list[KubernetesPodOperator] = []
    monkeypatch.setenv("AIRFLOW_CONN_KUBERNETES_OPENSCIENCE", '{"conn_type": "kubernetes"}')
    monkeypatch.setenv("AIRFLOW_CONN_KUBERNETES_DEFAULT", '{"conn_type": "kubernetes"}')
    monkeypatch.setattr(KubernetesPodOperator, "execute", lambda self, context: pods.append(self))
    return pods


def ready_buckets(store, complete: bool = True) -> None:
    """Buckets made and filled as the archive job leaves them; prod's grace is missing unless
    ``complete``."""
    from engagements.hooks.archive import HomeArchiveHook

    hook = HomeArchiveHook()
    for hub, bucket in BUCKETS.items():
        hook.ensure_bucket(bucket, REGION)
        ArchiveBuckets(hook).configure_bucket(bucket, lifecycle_configuration())
        users = ["ada", "grace"] if hub == "prod" else ["ada"]
        put_inventory(hook.get_conn(), bucket, users)
        for user in users:
            if complete or (hub, user) != ("prod", "grace"):
                put_archive(hook.get_conn(), bucket, user, f"{hub}/{user}".encode() * 50)
    record(
        store,
        "backup",
        {"archive_date": ARCHIVE_DATE.isoformat(), "region": REGION, "buckets": BUCKETS},
    )


# start and notices


def test_start_marks_a_hand_triggered_active_engagement_decommissioning(ending):
    ending.update_engagement("openscience", status=EngagementStatus.ACTIVE)
    plan = make(StartDecommissionOperator, ending).execute(CONTEXT)
    assert plan["removal_by"] == "2027-12-14"
    assert plan["buckets"] == BUCKETS
    assert ending.get_engagement("openscience").status is EngagementStatus.DECOMMISSIONING


def test_start_refuses_an_engagement_that_was_never_running(ending):
    ending.update_engagement("openscience", status=EngagementStatus.ONBOARDING)
    with pytest.raises(AirflowFailException, match="status is Onboarding"):
        make(StartDecommissionOperator, ending).execute(CONTEXT)


def test_start_refuses_a_record_of_another_community(ending, config):
    other = config.to_dict() | {"community_id": "othersci"}
    other["contract"]["end"] = END.isoformat()
    ending.upsert_engagement("openscience", config.name, other)
    with pytest.raises(AirflowFailException, match="community ids disagree"):
        make(StartDecommissionOperator, ending).execute(CONTEXT)


def test_notice_goes_to_representatives_once_with_bd_in_cc(ending):
    sent: list = []
    op = make(DecommissionNoticeOperator, ending, sent, stage="before-end")
    op.execute(CONTEXT)
    op.execute(CONTEXT)
    (mail,) = sent
    assert mail["To"] == "ada@openscience.example.org, grace@openscience.example.org"
    assert mail["Cc"] == "bd@2i2c.org"
    body = " ".join(mail.get_body(("plain",)).get_content().split())
    assert "ends on Tuesday 30 November 2027" in body
    assert "by Tuesday 14 December 2027" in body
    assert "/hub/user-redirect/tree" in body
    assert "keeps that backup for 90 days" in body


def test_a_late_run_does_not_announce_an_end_already_past(ending, config):
    past = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=10)  # removal was due in 4 days
    data = config.to_dict()
    data["contract"]["start"] = (past - dt.timedelta(days=365)).isoformat()
    data["contract"]["end"] = past.isoformat()
    ending.upsert_engagement("openscience", config.name, data)
    sent: list = []
    for stage in ("before-end", "at-end"):
        op = make(DecommissionNoticeOperator, ending, sent, stage=stage)
        op.contract_end = past.isoformat()
        op.execute(CONTEXT)
    (mail,) = sent
    assert "has reached its end" in mail["Subject"]
    week = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=7)
    assert f"hubs removed by {week:%A} {week.day} {week:%B %Y}" in mail["Subject"]


def test_renewal_recorded_after_a_notice_cancels_with_a_notice(ending):
    sent: list = []
    make(DecommissionNoticeOperator, ending, sent, stage="before-end").execute(CONTEXT)
    renew(ending)
    with pytest.raises(AirflowSkipException, match="renewed meanwhile"):
        make(DecommissionNoticeOperator, ending, sent, stage="at-end").execute(CONTEXT)
    assert [m["Message-ID"].split(".")[0] for m in sent] == [
        "<decommission-notice",
        "<decommission-cancelled",
    ]
    assert "until Thursday 30 November 2028" in " ".join(
        sent[1].get_body(("plain",)).get_content().split()
    )
    # every later step skips without reading anything else
    with pytest.raises(AirflowSkipException, match="cancelled"):
        make(VerifyBackupOperator, ending).execute(CONTEXT)


def test_after_removal_notice_needs_the_verified_removal(ending):
    ending.update_engagement("openscience", status=EngagementStatus.DECOMMISSIONED)
    with pytest.raises(AirflowFailException, match="removal is not verified"):
        make(DecommissionNoticeOperator, ending, stage="after-removal").execute(CONTEXT)


# backup


def test_buckets_without_an_aws_connection_are_only_planned(ending):
    with pytest.raises(AirflowSkipException, match="skipped: no AWS connection 'aws_default'"):
        make(CreateArchiveBucketsOperator, ending).execute(CONTEXT)
    assert ending.list_actions("openscience") == []


def test_buckets_are_created_configured_and_recorded(ending, aws):
    op = make(CreateArchiveBucketsOperator, ending)
    first = op.execute(CONTEXT)
    assert first["buckets"] == BUCKETS
    assert first["region"] == REGION
    for bucket in BUCKETS.values():
        action = ending.get_action("openscience", f"archive-bucket:{bucket}")
        assert action.detail["created_now"] is True
        (rule,) = action.detail["settings"]["lifecycle"]["Rules"]
        assert rule["Transitions"] == [{"Days": 3, "StorageClass": "GLACIER_IR"}]
    # a re-run keeps the archive date of the first run
    record_key = "decommission:backup:2027-11-30"
    ending.update_action("openscience", record_key, first | {"archive_date": "2027-12-02"})
    assert make(CreateArchiveBucketsOperator, ending).execute(CONTEXT)["archive_date"] == (
        "2027-12-02"
    )


def test_archive_without_a_cluster_connection_skips_with_the_plan(ending, aws):
    ready_buckets(ending, complete=False)
    with pytest.raises(AirflowFailException):
        make(VerifyBackupOperator, ending).execute(CONTEXT)
    with pytest.raises(AirflowSkipException) as skipped:
        make(ArchiveHomeDirectoriesOperator, ending).execute(CONTEXT)
    message = str(skipped.value)
    assert "skipped: no kubernetes connection/kubeconfig 'kubernetes_openscience'" in message
    assert "plan: in namespace prod of cluster openscience" in message
    # prod has ada verified already: the plan says so; staging and workshop were complete
    assert "s3://openscience-prod-homedirs-archive/<user>/archive-2027-12-01.tar.gz" in message
    assert "except the 1 already verified" in message


def test_archive_without_an_aws_identity_skips_before_starting_a_job(ending, aws, kubernetes):
    ready_buckets(ending, complete=False)
    with pytest.raises(AirflowSkipException) as skipped:
        make(ArchiveHomeDirectoriesOperator, ending).execute(CONTEXT)
    assert "no AWS identity to write the buckets with" in str(skipped.value)
    assert "engagements_archive_credentials_secret" in str(skipped.value)
    assert kubernetes == []


def test_archive_job_pods_skip_verified_homes(ending, aws, kubernetes):
    ready_buckets(ending, complete=False)
    with pytest.raises(AirflowFailException, match="NOT verified"):
        make(VerifyBackupOperator, ending).execute(CONTEXT)

    op = make(ArchiveHomeDirectoriesOperator, ending)
    op.settings = Settings(archive_service_account="homes-archiver")
    todo = op.execute(CONTEXT)

    assert todo == {"prod": ["ada"]}  # staging and workshop are verified: no job at all
    (pod,) = kubernetes
    assert pod.namespace == "prod"
    assert pod.kubernetes_conn_id == "kubernetes_openscience"
    assert pod.image == Settings().archive_image
    assert pod.cmds == ["/bin/sh", "-c"]
    assert "aws s3 cp" in pod.arguments[0]
    assert pod.env_vars == {
        "HOME_ROOT": "/home-volume",
        "WORK_DIR": "/scratch",
        "BUCKET": "openscience-prod-homedirs-archive",
        "ARCHIVE_DATE": "2027-12-01",
        "SKIP_USERS": "ada",
        "AWS_DEFAULT_REGION": REGION,
    }
    assert pod.service_account_name == "homes-archiver"
    assert pod.env_from == []
    (homes,) = [v for v in pod.volumes if v.name == "homes"]
    assert homes.persistent_volume_claim.claim_name == "home-nfs"
    assert homes.persistent_volume_claim.read_only is True
    job = ending.get_action("openscience", "decommission:archive-job-prod:2027-11-30")
    assert job.detail["skipped_users"] == ["ada"]


def test_verification_failure_records_the_manifest_and_stops(ending, aws):
    ready_buckets(ending, complete=False)
    with pytest.raises(AirflowFailException) as failed:
        make(VerifyBackupOperator, ending).execute(CONTEXT)
    assert "prod/grace: missing: no archive" in str(failed.value)
    assert "nothing will be removed" in str(failed.value)
    manifest = ending.get_action("openscience", "decommission:manifest:2027-11-30")
    assert manifest.detail["hubs"]["prod"]["ok"] is False
    assert manifest.detail["hubs"]["staging"]["ok"] is True
    assert ending.get_action("openscience", "decommission:backup-verified:2027-11-30") is None


def test_an_empty_archive_is_checked_against_the_hubs_users(ending, aws):
    """The job found no home (a wrong volume?) and wrote an empty inventory: that is no backup."""
    from engagements.hooks.archive import HomeArchiveHook

    ready_buckets(ending)
    client = HomeArchiveHook().get_conn()
    for bucket in BUCKETS.values():
        put_inventory(client, bucket, [])
        for key in [o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]]:
            if "/archive-" in key:
                client.delete_object(Bucket=bucket, Key=key)
    with pytest.raises(AirflowFailException) as failed:
        make(VerifyBackupOperator, ending).execute(CONTEXT)
    for missing in ("staging/ada", "prod/ada", "prod/grace", "workshop/ada"):
        assert f"{missing}: missing: no archive" in str(failed.value)
    assert "bd-staff" not in str(failed.value)  # never started a server: no home to archive
    assert ending.get_action("openscience", "decommission:backup-verified:2027-11-30") is None


def test_a_home_the_job_did_not_see_is_missing(ending, aws, hubs):
    """A user the hub lists but the job's inventory left out is named, escaped as on disk."""
    ready_buckets(ending)
    hubs["prod"].add_user("Jo.Doe@uni.edu")
    with pytest.raises(AirflowFailException) as failed:
        make(VerifyBackupOperator, ending).execute(CONTEXT)
    assert "prod/-4ao-2e-44oe-40uni-2eedu (hub user Jo.Doe@uni.edu): missing" in str(failed.value)
    manifest = ending.get_action("openscience", "decommission:manifest:2027-11-30")
    assert manifest.detail["hubs"]["prod"]["hub_users"] == 4
    assert manifest.detail["hubs"]["prod"]["hub_users_with_home"] == 3


def test_a_hub_whose_users_cannot_be_listed_is_not_verified(ending, aws, hubs, monkeypatch):
    ready_buckets(ending)
    monkeypatch.delenv("AIRFLOW_CONN_JUPYTERHUB_OPENSCIENCE_WORKSHOP")
    hubs["staging"].fail_with = (503, "hub is restarting")
    with pytest.raises(AirflowFailException) as failed:
        make(VerifyBackupOperator, ending).execute(CONTEXT)
    message = str(failed.value)
    assert "staging: the hub's users could not be listed (" in message
    assert "HTTP 503: hub is restarting" in message
    assert "no Airflow connection 'jupyterhub_openscience_workshop'" in message
    assert ending.get_action("openscience", "decommission:backup-verified:2027-11-30") is None


def test_verified_backup_is_recorded(ending, aws):
    ready_buckets(ending)
    summary = make(VerifyBackupOperator, ending).execute(CONTEXT)
    assert summary["prod"]["users"] == 2
    assert (summary["prod"]["hub_users"], summary["prod"]["hub_users_with_home"]) == (3, 2)
    assert summary["prod"]["expires_on"] == "2028-02-29"
    assert summary["prod"]["manifest"] == (
        "s3://openscience-prod-homedirs-archive/_manifests/manifest-2027-12-01.json"
    )
    verified = ending.get_action("openscience", "decommission:backup-verified:2027-11-30")
    assert set(verified.detail["hubs"]) == set(HUBS)


# approval


def approval(store):
    return make(TeardownApprovalOperator, store)


def answer(option: str, typed: str) -> dict[str, Any]:
    return {
        "chosen_options": [option],
        "params_input": {"confirm_community_id": typed},
        "responded_at": dt.datetime(2027, 12, 3, tzinfo=dt.UTC),
        "responded_by_user": {"id": "eng", "name": "Eve (engineer)"},
    }


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


def form_shown(store, command: str = "") -> dict[str, Any]:
    """What preparing the form records: the steps it shows."""
    from engagements.decommission.teardown import teardown_steps
    from engagements.onboarding import effective_config

    config = effective_config(store.get_engagement("openscience"))
    steps = teardown_steps(config, command).to_dict()
    record(store, "approval-form", {"steps": steps})
    return steps


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


# teardown


@pytest.fixture
def infra_repo(tmp_path, monkeypatch, config):
    """The embedded infrastructure repository with openscience deployed and another cluster."""
    from engagements.hooks.infra_repo import LocalGitInfraRepository
    from engagements.infra.render import (
        combined,
        example_cluster_outputs,
        render_cluster_change,
        render_hubs_change,
    )

    path = tmp_path / "infrastructure"
    monkeypatch.setenv("ENGAGEMENTS_INFRA_REPO_PATH", str(path))
    monkeypatch.delenv("ENGAGEMENTS_INFRA_REPO", raising=False)
    repo = LocalGitInfraRepository(path)
    hubs = render_hubs_change(config, example_cluster_outputs(config), outputs_source="examples")
    deployed = dict(combined(render_cluster_change(config), hubs).files)
    deployed["config/clusters/openscience/enc-prod.secret.values.yaml"] = "sops: encrypted\n"
    deployed["config/clusters/othersci/cluster.yaml"] = "name: othersci\n"
    repo.propose_change("deploy", deployed, "Deploy", "")
    subprocess.run(["git", "-C", str(path), "merge", "--quiet", "deploy"], check=True)
    return path


def git(path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(path), *args], capture_output=True, text=True, check=True
    ).stdout


def approve(store, command: str = "") -> None:
    """The approval as the form makes it: the steps it showed recorded, then the answer."""
    from engagements.decommission.teardown import teardown_steps
    from engagements.onboarding import effective_config

    config = effective_config(store.get_engagement("openscience"))
    record(store, "approval-form", {"steps": teardown_steps(config, command).to_dict()})
    op = approval(store)
    op.settings = Settings(teardown_command=command)
    op.execute_complete({}, answer("Approve", "openscience"))


def approved(store) -> None:
    record(store, "backup-verified", {"hubs": {}})
    approve(store)


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


def commit_by_hand(path, message: str, *rm: str) -> None:
    git(path, "rm", "-q", "-r", *rm)
    git(path, "-c", "user.name=Eng", "-c", "user.email=e@2i2c.org", "commit", "-q", "-m", message)


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


def propose_and_merge(store, infra_repo) -> dict[str, Any]:
    """The teardown change proposed by the pipeline, then merged by an engineer."""
    detail = make(OpenTeardownPullRequestOperator, store).execute(CONTEXT)
    git(infra_repo, "merge", "--quiet", BRANCH)
    return detail


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


# verification of the removal, and the record


def eks_cluster(name: str) -> None:
    import boto3

    boto3.client("eks", region_name=REGION).create_cluster(
        name=name,
        roleArn="arn:aws:iam::123456789012:role/eks",
        resourcesVpcConfig={"subnetIds": ["subnet-1"]},
    )


def test_cluster_still_there_fails_and_nothing_is_recorded(ending, aws):
    approved(ending)
    record(ending, "teardown-pr", {"branch": "decommission-openscience"})
    eks_cluster("openscience")
    with pytest.raises(AirflowFailException, match=r"still exists .*was skipped: run its plan"):
        make(VerifyClusterGoneOperator, ending).execute(CONTEXT)
    assert ending.get_action("openscience", "decommission:cluster-gone:2027-11-30") is None
    with pytest.raises(AirflowFailException, match="not verified"):
        make(RecordDecommissionedOperator, ending).execute(CONTEXT)
    assert ending.get_engagement("openscience").status is EngagementStatus.DECOMMISSIONING


def test_cluster_gone_is_verified_and_the_end_recorded(ending, aws):
    ready_buckets(ending)
    make(VerifyBackupOperator, ending).execute(CONTEXT)
    record(ending, "approval", {"approved": True, "by": "Eve"})
    record(ending, "teardown-pr", {"branch": "decommission-openscience"})
    eks_cluster("othersci")

    gone = make(VerifyClusterGoneOperator, ending).execute(CONTEXT)
    assert gone["provider"] == "aws eks"
    detail = make(RecordDecommissionedOperator, ending).execute(CONTEXT)

    assert detail["decommissioned_on"] == dt.datetime.now(dt.UTC).date().isoformat()
    assert detail["backup_locations"]["prod"] == "s3://openscience-prod-homedirs-archive/"
    assert detail["backup_expires_on"] == "2028-02-29"
    assert ending.get_engagement("openscience").status is EngagementStatus.DECOMMISSIONED

    sent: list = []
    make(DecommissionNoticeOperator, ending, sent, stage="after-removal").execute(CONTEXT)
    body = " ".join(sent[0].get_body(("plain",)).get_content().split())
    assert "have now been removed" in body
    assert (
        "prod hub: s3://openscience-prod-homedirs-archive/<username>/archive-2027-12-01.tar.gz "
        "kept until Tuesday 29 February 2028" in body
    )


def test_cluster_check_without_aws_connection_skips_with_the_command(ending):
    approved(ending)
    record(ending, "teardown-pr", {"branch": "decommission-openscience"})
    with pytest.raises(AirflowSkipException, match="aws eks describe-cluster --name openscience"):
        make(VerifyClusterGoneOperator, ending).execute(CONTEXT)


GCP = {
    "cloud.provider": "gcp",
    "cloud.region": "us-central1",
    "cloud.zone": "us-central1-b",
    "cloud.account": "openscience-project",
}


@pytest.fixture
def gke(ending, config, monkeypatch):
    """The community on GKE, torn down as far as the change; GKEHook.get_cluster stubbed."""
    from airflow.providers.google.cloud.hooks.kubernetes_engine import GKEHook

    data = config.with_decisions(GCP).to_dict()
    data["contract"]["end"] = END.isoformat()
    ending.upsert_engagement(
        "openscience", config.name, data, status=EngagementStatus.DECOMMISSIONING
    )
    approved(ending)
    record(ending, "teardown-pr", {"branch": "decommission-openscience"})
    asked: list[dict[str, Any]] = []
    found: list[Any] = []

    def get_cluster(self, name, project_id, **kwargs):
        from google.api_core.exceptions import NotFound

        asked.append({"name": name, "project_id": project_id, "location": self.location})
        if not found:
            raise NotFound(f"cluster {name} not found")
        return found[0]

    monkeypatch.setattr(GKEHook, "get_cluster", get_cluster)
    return {"asked": asked, "found": found}


def test_gke_cluster_gone_is_verified_through_the_google_provider(ending, gke, monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT", '{"conn_type": "google_cloud_platform"}'
    )
    gone = make(VerifyClusterGoneOperator, ending).execute(CONTEXT)
    assert gone["provider"] == "gcp gke"
    assert (gone["project"], gone["location"]) == ("openscience-project", "us-central1-b")
    assert gke["asked"] == [
        {"name": "openscience", "project_id": "openscience-project", "location": "us-central1-b"}
    ]
    assert ending.get_action("openscience", "decommission:cluster-gone:2027-11-30") is not None


def test_gke_cluster_still_there_fails_and_nothing_is_recorded(ending, gke, monkeypatch):
    from google.cloud.container_v1 import Cluster

    monkeypatch.setenv(
        "AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT", '{"conn_type": "google_cloud_platform"}'
    )
    gke["found"].append(Cluster(name="openscience", status=Cluster.Status.STOPPING))
    with pytest.raises(
        AirflowFailException, match=r"GKE cluster openscience in .* still exists \(status STOPPING"
    ):
        make(VerifyClusterGoneOperator, ending).execute(CONTEXT)
    assert ending.get_action("openscience", "decommission:cluster-gone:2027-11-30") is None


def test_gke_check_without_google_connection_skips_with_the_command(ending, gke, monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT", raising=False)
    with pytest.raises(
        AirflowSkipException, match="gcloud container clusters describe openscience"
    ):
        make(VerifyClusterGoneOperator, ending).execute(CONTEXT)
    assert gke["asked"] == []


KUBECONFIG_CLOUDS = {
    "azure": {
        "cloud.provider": "azure",
        "cloud.region": "eastus",
        "cloud.account": "0b1f6471-1bf0-4dda-aec3-cb9272f09590",
    },
    "jetstream2": {
        "cloud.provider": "jetstream2",
        "cloud.region": "IU",
        "cloud.account": "CIS230095",
    },
}


@pytest.fixture(params=sorted(KUBECONFIG_CLOUDS))
def kubeconfig_cluster(request, ending, config):
    """The community on a cluster reached by kubeconfig, torn down as far as the change."""
    data = config.with_decisions(KUBECONFIG_CLOUDS[request.param]).to_dict()
    data["contract"]["end"] = END.isoformat()
    ending.upsert_engagement(
        "openscience", config.name, data, status=EngagementStatus.DECOMMISSIONING
    )
    approved(ending)
    record(ending, "teardown-pr", {"branch": "decommission-openscience"})
    return request.param


def check_gone(store, **kwargs):
    return make(
        VerifyClusterGoneOperator, store, unreachable_checks=3, check_interval=0, **kwargs
    ).execute(CONTEXT)


def closed_port() -> int:
    """A loopback port nothing listens on: connections to it are refused."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def api(monkeypatch):
    from tests.kubernetes_api import KubernetesApi, connection

    server = KubernetesApi()
    monkeypatch.setenv("AIRFLOW_CONN_KUBERNETES_OPENSCIENCE", connection(server.url))
    yield server
    server.close()


@pytest.mark.parametrize(("status", "answer"), [(200, "lists 1 node"), (401, "401 Unauthorized")])
def test_kubeconfig_cluster_answering_is_still_there(
    ending, kubeconfig_cluster, api, status, answer
):
    api.status = status
    with pytest.raises(
        AirflowFailException, match=rf"Kubernetes cluster openscience in .* still exists .*{answer}"
    ):
        check_gone(ending)
    assert len(api.requests) == 1
    assert api.requests[0]["authorization"] == "Bearer k8s-token"
    assert ending.get_action("openscience", "decommission:cluster-gone:2027-11-30") is None


def test_kubeconfig_cluster_refusing_connections_every_time_is_gone(
    ending, kubeconfig_cluster, monkeypatch
):
    from tests.kubernetes_api import connection

    server = f"http://127.0.0.1:{closed_port()}"
    monkeypatch.setenv("AIRFLOW_CONN_KUBERNETES_OPENSCIENCE", connection(server))
    gone = check_gone(ending)
    assert gone["provider"] == f"{kubeconfig_cluster} kubernetes"
    assert (gone["connection"], gone["server"]) == ("kubernetes_openscience", server)
    assert len(gone["unreachable"]) == 3
    assert all("refused" in line for line in gone["unreachable"])
    recorded = ending.get_action("openscience", "decommission:cluster-gone:2027-11-30")
    assert recorded.detail["unreachable"] == gone["unreachable"]
    assert "k8s-token" not in str(recorded.detail)


def test_kubeconfig_cluster_whose_name_no_longer_resolves_is_gone(
    ending, kubeconfig_cluster, monkeypatch
):
    from tests.kubernetes_api import connection

    server = "https://openscience-dns-a1b2c3.hcp.eastus.azmk8s.invalid:443"
    monkeypatch.setenv("AIRFLOW_CONN_KUBERNETES_OPENSCIENCE", connection(server))
    gone = check_gone(ending)
    assert gone["server"] == server
    assert all("resolve" in line for line in gone["unreachable"]), gone["unreachable"]


def test_kubeconfig_cluster_unreachable_only_for_a_moment_is_still_there(
    ending, kubeconfig_cluster, monkeypatch
):
    """A network blip is not a removal: the API answering on a later attempt fails the check."""
    import engagements.operators.decommission.cluster_gone as module
    from tests.kubernetes_api import KubernetesApi, connection

    port = closed_port()
    monkeypatch.setenv(
        "AIRFLOW_CONN_KUBERNETES_OPENSCIENCE", connection(f"http://127.0.0.1:{port}")
    )
    started: list[KubernetesApi] = []
    monkeypatch.setattr(
        module.time, "sleep", lambda seconds: started or started.append(KubernetesApi(port))
    )
    try:
        with pytest.raises(AirflowFailException, match=r"still exists .*lists 1 node"):
            check_gone(ending)
    finally:
        for server in started:
            server.close()
    assert len(started[0].requests) == 1
    assert ending.get_action("openscience", "decommission:cluster-gone:2027-11-30") is None


def test_kubeconfig_check_without_connection_skips_with_the_command(
    ending, kubeconfig_cluster, monkeypatch
):
    monkeypatch.delenv("AIRFLOW_CONN_KUBERNETES_OPENSCIENCE", raising=False)
    with pytest.raises(AirflowSkipException, match=r"'kubernetes_openscience'.*kubectl get nodes"):
        check_gone(ending)


def test_kubeconfig_cluster_timing_out_is_not_taken_for_gone(
    ending, kubeconfig_cluster, monkeypatch
):
    """A temporary DNS failure (or a firewall's timeout) is not proof of removal."""
    import socket

    from tests.kubernetes_api import connection

    host = "openscience-dns-a1b2c3.hcp.eastus.azmk8s.example"
    monkeypatch.setenv("AIRFLOW_CONN_KUBERNETES_OPENSCIENCE", connection(f"https://{host}:443"))
    real = socket.getaddrinfo

    def getaddrinfo(name, *args, **kwargs):
        if name == host:
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    with pytest.raises(AirflowFailException, match=r"cannot tell whether .* is gone"):
        check_gone(ending)
    assert ending.get_action("openscience", "decommission:cluster-gone:2027-11-30") is None


def test_only_a_missing_name_or_a_refusal_counts_as_removed():
    import socket

    from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError

    from engagements.hooks.cluster_status import removed_api_server

    def caused(exc: Exception, cause: Exception) -> Exception:
        exc.__cause__ = cause
        return exc

    nxdomain = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    again = socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
    assert removed_api_server(caused(NameResolutionError("h", None, nxdomain), nxdomain))
    assert removed_api_server(caused(NameResolutionError("h", None, again), again)) is None
    refused = ConnectionRefusedError(111, "Connection refused")
    assert removed_api_server(caused(NewConnectionError(None, "refused"), refused))
    unreachable = OSError(101, "Network is unreachable")
    assert removed_api_server(caused(NewConnectionError(None, "net"), unreachable)) is None
    assert removed_api_server(ConnectTimeoutError(None, "timed out")) is None
    assert removed_api_server(None) is None


def test_archive_job_on_a_cluster_outside_aws_gets_its_keys_from_a_secret(ending, aws, kubernetes):
    ready_buckets(ending, complete=False)
    op = make(ArchiveHomeDirectoriesOperator, ending)
    op.settings = Settings(archive_credentials_secret="homes-archive-aws")
    op.execute(CONTEXT)
    assert sorted(pod.namespace for pod in kubernetes) == sorted(HUBS)
    for pod in kubernetes:
        assert [s.secret_ref.name for s in pod.env_from] == ["homes-archive-aws"]
        assert pod.service_account_name is None
        assert not any("KEY" in name for name in pod.env_vars)  # the keys stay in the Secret


def merge_wait(store, sent: list | None = None) -> TeardownMergedSensor:
    sensor = TeardownMergedSensor(
        task_id="teardown_pr_merged",
        community_id="openscience",
        contract_end=END.isoformat(),
    )
    sensor.store = store
    sensor.settings = Settings()
    sensor.deliver = (sent if sent is not None else []).append
    return sensor


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


def test_an_archive_too_old_to_outlast_the_removal_is_made_again(ending, aws):
    today = dt.datetime.now(dt.UTC).date()
    old = (today - dt.timedelta(days=75)).isoformat()
    record(ending, "backup", {"archive_date": old, "region": REGION, "buckets": BUCKETS})
    detail = make(CreateArchiveBucketsOperator, ending).execute(CONTEXT)
    assert detail["archive_date"] == today.isoformat()
    backup = ending.get_action("openscience", "decommission:backup:2027-11-30")
    assert backup.detail["archive_date"] == today.isoformat()


# a removal checked by hand, where the pipeline has no connection to check it


def test_removal_checked_by_hand_is_recorded_with_the_cli_and_ends_the_engagement(
    ending, aws, infra_repo, capsys
):
    from engagements.cli import main

    ready_buckets(ending)
    make(VerifyBackupOperator, ending).execute(CONTEXT)
    approve(ending)
    make(OpenTeardownPullRequestOperator, ending).execute(CONTEXT)
    with pytest.raises(AirflowFailException, match="engagements decommission cluster-gone"):
        make(RecordDecommissionedOperator, ending).execute(CONTEXT)

    how = "aws eks describe-cluster --name openscience: ResourceNotFoundException"
    argv = ["decommission", "cluster-gone", "openscience", END.isoformat(), "--how", how]
    assert main([*argv, "--by", "Eve"]) == 2  # the change is still under review
    assert f"the teardown change {BRANCH} is not merged" in capsys.readouterr().err
    git(infra_repo, "merge", "--quiet", BRANCH)
    assert main([*argv, "--by", "Eve"]) == 0
    assert "recorded gone, checked by Eve" in capsys.readouterr().out
    assert main([*argv, "--by", "Someone else"]) == 0  # a second call changes nothing
    assert "already verified" in capsys.readouterr().out
    gone = ending.get_action("openscience", "decommission:cluster-gone:2027-11-30")
    assert (gone.detail["checked_by"], gone.detail["how"]) == ("Eve", how)

    detail = make(RecordDecommissionedOperator, ending).execute(CONTEXT)
    assert detail["decommissioned_on"] == gone.detail["checked_at"][:10]
    assert ending.get_engagement("openscience").status is EngagementStatus.DECOMMISSIONED


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["openscience", "2027-11-30", "--how", " "], "say how the removal was checked"),
        (["openscience", "30/11/2027", "--how", "x"], "expected YYYY-MM-DD"),
        (["openscience", "2027-12-31", "--how", "x"], "not 2027-12-31 as this run was told"),
        (["openscience", "2027-11-30", "--how", "x"], "was not approved and proposed"),
        (["nosuchsci", "2027-11-30", "--how", "x"], "no engagement for community 'nosuchsci'"),
    ],
)
def test_removal_by_hand_is_refused_when_it_cannot_be_right(ending, capsys, argv, error):
    from engagements.cli import main

    assert main(["decommission", "cluster-gone", *argv]) != 0
    assert error in capsys.readouterr().err
    assert ending.get_action("openscience", "decommission:cluster-gone:2027-11-30") is None


def test_without_a_connection_the_check_says_how_to_do_it_by_hand(ending):
    approved(ending)
    record(ending, "teardown-pr", {"branch": "decommission-openscience"})
    with pytest.raises(AirflowSkipException) as skipped:
        make(VerifyClusterGoneOperator, ending).execute(CONTEXT)
    assert "`engagements decommission cluster-gone openscience 2027-11-30 --how" in str(
        skipped.value
    )


def test_a_rejected_teardown_records_nothing(ending):
    record(ending, "backup-verified", {"hubs": {}})
    record(ending, "approval", {"approved": False, "by": "Eve"})
    with pytest.raises(AirflowSkipException, match="not approved"):
        make(RecordDecommissionedOperator, ending).execute(CONTEXT)
    assert ending.get_engagement("openscience").status is EngagementStatus.DECOMMISSIONING


def test_a_renewal_after_the_destroy_cancels_nothing_and_says_so(ending, aws):
    sent: list = []
    approved(ending)
    record(ending, "teardown-pr", {"branch": BRANCH})
    record(ending, "destroy", {"cluster": "openscience"})
    make(DecommissionNoticeOperator, ending, sent, stage="at-end").execute(CONTEXT)
    renew(ending)
    with pytest.raises(AirflowFailException, match="the cluster was already destroyed"):
        make(VerifyClusterGoneOperator, ending).execute(CONTEXT)
    assert not [m for m in sent if m["Message-ID"].startswith("<decommission-cancelled.")]
    assert ending.get_action("openscience", "decommission:cancelled:2027-11-30") is None


def test_a_change_that_cannot_be_withdrawn_still_cancels_and_says_what_to_do(
    ending, infra_repo, monkeypatch
):
    from engagements.hooks.infra_repo import InfraRepositoryError, LocalGitInfraRepository

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
