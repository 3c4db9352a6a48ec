"""End-to-end: the decommission DAG run by Airflow, with every guard exercised.

Backends: the embedded store (this module's own file), the loopback SMTP outbox, moto for S3
and EKS, and the local git infrastructure repository holding the community's rendered
deployment. There is no Kubernetes cluster here, so the pods stand in as follows: the archive
pod runs its real script with ``sh`` against a folder of home directories (only ``aws`` is a
stand-in writing to moto), and the destroy pod deletes the EKS cluster as ``eksctl`` would.
The approval form is answered through the function behind ``PATCH .../hitlDetails``, and
the teardown branch is merged with ``git merge`` while ``teardown_pr_merged`` waits, as an
engineer would after reviewing it.

Scenario: the first run of ``openscience`` archives, but one upload is cut short: the backup
is not verified, the run fails, nothing is removed. The re-run resumes: no notice twice, only
the unverified home archived again, then approval, teardown change, its merge, destroy, EKS
check, the
final record and the last notice. ``renewedsci`` is renewed while its approval form waits:
the run is cancelled before any removal and the community is told.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.dags.e2e import WaitWatcher, parse_dag, states
from tests.decommission.conftest import kept_logger_levels, run_archive_script, upload_written
from tests.renewal.responder import FormResponder, SeenForm

pytestmark = pytest.mark.e2e

DAG_ID = "engagement_decommission"
REGION = "us-west-2"
TODAY = dt.datetime.now(dt.UTC).date()
END = TODAY - dt.timedelta(days=20)
"""A past end: every date wait (end-14, end, end+14) is already over."""
EXPIRES = TODAY + dt.timedelta(days=90)
LOGICAL_DATE = dt.datetime.combine(TODAY, dt.time(3), tzinfo=dt.UTC)
MERGE_WAIT = "teardown_pr_merged"
BRANCH = f"decommission-openscience-{END}"
HOMES = {
    "staging": {"ada": "staging notes"},
    "prod": {"ada": "analysis " * 2000, "grace": "notes " * 3000, "_shared": "shared data"},
    "workshop": {"student1": "exercise"},
}


class PodRunner:
    """Runs the pods the operators start, standing in for the clusters."""

    def __init__(self, homes: Path, work: Path) -> None:
        self.homes = homes
        self.work = work
        self.started: list[tuple[str, dict[str, str]]] = []
        self.cut_short: set[str] = set()
        """Object keys whose upload is cut short (an archive job killed mid-upload)."""
        self.checkouts: list[list[str]] = []
        """The files of each destroy pod's checkout (``INFRA_URL`` at ``INFRA_REF``)."""

    def check_out(self, env: dict[str, str]) -> list[str]:
        """What the destroy pod's ``git clone`` and ``git checkout`` give it to work from."""
        checkout = self.work / f"checkout-{len(self.checkouts)}"
        subprocess.run(["git", "clone", "-q", env["INFRA_URL"], str(checkout)], check=True)
        subprocess.run(["git", "-C", str(checkout), "checkout", "-q", env["INFRA_REF"]], check=True)
        listed = ["git", "-C", str(checkout), "ls-files"]
        return subprocess.run(listed, capture_output=True, text=True, check=True).stdout.split()

    def execute(self, pod, context) -> None:
        import boto3

        self.started.append((pod.name, dict(pod.env_vars)))
        if pod.name.startswith("destroy-"):
            self.checkouts.append(self.check_out(pod.env_vars))
            boto3.client("eks", region_name=REGION).delete_cluster(name=pod.env_vars["CLUSTER"])
            return
        bucket = pod.env_vars["BUCKET"]
        work = self.work / f"{bucket}-{len(self.started)}"
        result = run_archive_script(
            pod.arguments[0], homes=self.homes / bucket, work=work, env=pod.env_vars
        )
        assert result.returncode == 0, result.stderr
        for key in self.cut_short:
            written = work / "s3" / bucket / key
            if written.exists():
                written.write_bytes(written.read_bytes()[:100])
        upload_written(work, boto3.client("s3", region_name=REGION))


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Store, AWS, clusters, repository and homes of two communities ending on END."""
    with kept_logger_levels():  # before the Kubernetes client's import lowers urllib3's
        yield from _world(tmp_path_factory)


def _world(tmp_path_factory):
    from tests.hooks.fake_jupyterhub import FakeJupyterHub

    tmp = tmp_path_factory.mktemp("decommission")
    runner = PodRunner(tmp / "homes", tmp / "pods")
    with contextlib.ExitStack() as stack:
        hubs = {hub: stack.enter_context(FakeJupyterHub()) for hub in HOMES}
        for hub, users in HOMES.items():
            for user in users:
                if not user.startswith("_"):  # _shared is a folder, not a user
                    hubs[hub].add_user(user)
            hubs[hub].add_user("2i2c-staff", used=False)
        yield from _world_with_hubs(tmp, runner, hubs)


def _world_with_hubs(tmp, runner, hubs):
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
    from moto import mock_aws

    from engagements.config import load_config
    from engagements.hooks.infra_repo.local import LocalGitInfraRepository
    from engagements.infra.render import (
        combined,
        example_cluster_outputs,
        render_cluster_change,
        render_hubs_change,
    )
    from engagements.store.base import EngagementStatus
    from engagements.store.local import LocalStore
    from tests.conftest import EXAMPLE

    with pytest.MonkeyPatch.context() as patch, mock_aws():
        for community_id in ("openscience", "renewedsci"):
            for hub, fake in hubs.items():
                conn = {"conn_type": "http", "host": fake.url, "password": fake.token}
                patch.setenv(
                    f"AIRFLOW_CONN_JUPYTERHUB_{community_id.upper()}_{hub.upper()}",
                    json.dumps(conn),
                )
        for name, value in {
            "ENGAGEMENTS_STORE_PATH": str(tmp / "engagements.sqlite"),
            "ENGAGEMENTS_INFRA_REPO_PATH": str(tmp / "infrastructure"),
            "ENGAGEMENTS_INFRA_CLONE_URL": (tmp / "infrastructure").as_uri(),
            "ENGAGEMENTS_TOOLING_IMAGE": "quay.io/2i2c/infrastructure-tooling:test",
            "ENGAGEMENTS_ARCHIVE_SERVICE_ACCOUNT": "homes-archiver",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AIRFLOW_CONN_AWS_DEFAULT": json.dumps({"conn_type": "aws"}),
            "AIRFLOW_CONN_KUBERNETES_DEFAULT": json.dumps({"conn_type": "kubernetes"}),
            "AIRFLOW_CONN_KUBERNETES_OPENSCIENCE": json.dumps({"conn_type": "kubernetes"}),
            "AIRFLOW_CONN_KUBERNETES_RENEWEDSCI": json.dumps({"conn_type": "kubernetes"}),
        }.items():
            patch.setenv(name, value)
        patch.delenv("ENGAGEMENTS_INFRA_REPO", raising=False)
        patch.setattr(KubernetesPodOperator, "execute", lambda pod, ctx: runner.execute(pod, ctx))

        import boto3

        store = LocalStore(tmp / "engagements.sqlite")
        repo = LocalGitInfraRepository(tmp / "infrastructure")
        deployed: dict[str, str] = {}
        example = load_config(EXAMPLE)
        for community_id, name in (("openscience", example.name), ("renewedsci", "Renewed Sci")):
            config = example.with_decisions(
                {
                    "community_id": community_id,
                    "name": name,
                    "contract.signed_on": (END - dt.timedelta(days=375)).isoformat(),
                    "contract.start": (END - dt.timedelta(days=365)).isoformat(),
                    "contract.end": END.isoformat(),
                }
            )
            store.upsert_engagement(
                community_id, name, config.to_dict(), status=EngagementStatus.DECOMMISSIONING
            )
            deployed |= combined(
                render_cluster_change(config),
                render_hubs_change(
                    config, example_cluster_outputs(config), outputs_source="examples"
                ),
            ).files
            boto3.client("eks", region_name=REGION).create_cluster(
                name=community_id,
                roleArn="arn:aws:iam::123456789012:role/eks",
                resourcesVpcConfig={"subnetIds": ["subnet-1"]},
            )
            for hub, users in HOMES.items():
                for user, text in users.items():
                    home = tmp / "homes" / f"{community_id}-{hub}-homedirs-archive" / user
                    home.mkdir(parents=True)
                    (home / "work.txt").write_text(text)
        repo.propose_change("deploy", deployed, "Deploy both communities", "")
        subprocess.run(["git", "-C", str(repo.path), "merge", "--quiet", "deploy"], check=True)
        yield {"store": store, "repo": repo.path, "runner": runner}


def approve(world):
    """The approver types the community id; for renewedsci, BD records the renewal first."""

    def answer(form: SeenForm):
        community_id = form.subject.split()[-1].rstrip("?")
        if community_id == "renewedsci":
            from engagements.renewal import apply_renewal

            apply_renewal(
                world["store"],
                "renewedsci",
                decided_end=END,
                new_end=END + dt.timedelta(days=365),
                new_start=None,
                decided_by="Bea (BD)",
            )
        return ["Approve"], {"confirm_community_id": community_id}

    return answer


class Merger(WaitWatcher):
    """Merges the teardown branch into main once ``teardown_pr_merged`` waits for it."""

    def __init__(self, repo: Path, community_id: str) -> None:
        super().__init__(DAG_ID)
        self.repo = repo
        self.branch = f"decommission-{community_id}-{END}"
        self.merged: list[str] = []
        self.errors: list[str] = []

    def on_waiting(self, task_ids: set[str]) -> None:
        if MERGE_WAIT in task_ids:
            merged = subprocess.run(
                ["git", "-C", str(self.repo), "-c", "user.name=Engineer",
                 "-c", "user.email=eng@2i2c.org", "merge", "--no-ff",
                 "-m", f"Merge {self.branch}", self.branch],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            if merged.returncode:
                self.errors.append(merged.stderr)
            self.merged.append(self.branch)
            self.stop.set()


def run_dag(world, community_id: str, hour: int):
    merger = Merger(world["repo"], community_id)
    merger.start()
    try:
        with FormResponder(DAG_ID, {"approve_teardown": approve(world)}) as responder:
            run = parse_dag(DAG_ID).test(
                logical_date=LOGICAL_DATE + dt.timedelta(hours=hour),
                run_after=LOGICAL_DATE + dt.timedelta(hours=hour),
                run_conf={"community_id": community_id, "end_date": END.isoformat()},
            )
    finally:
        merger.stop.set()
        merger.join(10)
    assert not responder.errors, responder.errors
    assert not merger.errors, merger.errors
    world.setdefault("merged", []).extend(merger.merged)
    return run, responder.seen


def rerun_whole_run(world, run):
    """What "Clear" on the failed run does: every task runs again, in the same run."""
    from airflow import settings
    from airflow.models.dagrun import DagRun

    with settings.Session() as session:
        stored = session.query(DagRun).filter_by(dag_id=DAG_ID, run_id=run.run_id).one()
        stored.state = "running"
        session.commit()
    return run_dag(world, "openscience", 0)


def mails(outbox, community_id: str, kind: str) -> list:
    return [
        m
        for m in outbox.messages()
        if m["Message-ID"].strip().startswith(f"<{kind}.{community_id}.")
    ]


def branches(world) -> str:
    return subprocess.run(
        ["git", "-C", str(world["repo"]), "branch", "--list"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


@pytest.fixture(scope="module")
def first_attempt(world, airflow_db, outbox):
    world["runner"].cut_short = {f"grace/archive-{TODAY}.tar.gz"}
    run, seen = run_dag(world, "openscience", 0)
    world["runner"].cut_short = set()
    return {"run": run, "seen": seen, "pods": list(world["runner"].started)}


@pytest.fixture(scope="module")
def second_attempt(first_attempt, world):
    before = len(world["runner"].started)
    run, seen = rerun_whole_run(world, first_attempt["run"])
    return {"run": run, "seen": seen, "pods": world["runner"].started[before:]}


def test_unverified_backup_stops_the_run_before_any_removal(first_attempt, world, outbox):
    import boto3

    run = first_attempt["run"]
    assert run.state == "failed"
    assert {
        "notice_before_end": "success",
        "notice_at_end": "success",
        "create_archive_buckets": "success",
        "archive_home_directories": "success",
        "verify_backup": "failed",
        "approve_teardown": "upstream_failed",
        "open_teardown_pr": "upstream_failed",
        "teardown_pr_merged": "upstream_failed",
        "destroy_cluster": "upstream_failed",
        "record_decommissioned": "upstream_failed",
    }.items() <= states(run).items()
    assert first_attempt["seen"] == []  # no approval was ever asked
    assert "decommission-openscience" not in branches(world)
    eks = boto3.client("eks", region_name=REGION)
    assert eks.describe_cluster(name="openscience")["cluster"]["status"] == "ACTIVE"
    store = world["store"]
    assert store.get_engagement("openscience").status == "Decommissioning"
    manifest = store.get_action("openscience", f"decommission:manifest:{END}").detail
    (problem,) = manifest["hubs"]["prod"]["problems"]
    assert re.fullmatch(r"prod/grace: truncated: 100 of \d+ bytes", problem)
    # The end is past: the "two weeks before" notice would announce it late, so only the
    # notice at the end went out.
    (notice,) = mails(outbox, "openscience", "decommission-notice")
    assert "has reached its end" in notice["Subject"]


def test_rerun_resumes_without_rearchiving_or_second_notices(second_attempt, first_attempt):
    run = second_attempt["run"]
    assert run.state == "success", states(run)
    first_archived = {name for name, _ in first_attempt["pods"]}
    assert first_archived == {
        "archive-homes-staging",
        "archive-homes-prod",
        "archive-homes-workshop",
    }
    again = [(name, env) for name, env in second_attempt["pods"] if name.startswith("archive")]
    assert again == [
        (
            "archive-homes-prod",
            {
                "HOME_ROOT": "/home-volume",
                "WORK_DIR": "/scratch",
                "BUCKET": "openscience-prod-homedirs-archive",
                "ARCHIVE_DATE": TODAY.isoformat(),
                "SKIP_USERS": "_shared ada",
                "AWS_DEFAULT_REGION": REGION,
            },
        )
    ]


def test_each_notice_reaches_the_community_once(second_attempt, outbox):
    notices = mails(outbox, "openscience", "decommission-notice")
    assert len(notices) == 2  # at the end, and after the removal: none twice
    assert len({m["Message-ID"] for m in notices}) == 2
    (last,) = [m for m in notices if "have been removed" in " ".join(m["Subject"].split())]
    body = " ".join(last.get_body(("plain",)).get_content().split())
    assert f"s3://openscience-prod-homedirs-archive/<username>/archive-{TODAY}.tar.gz" in body
    assert f"{EXPIRES.day} {EXPIRES:%B %Y}" in body
    assert last["Cc"] == "bd@2i2c.org"


def test_approval_showed_the_verified_manifest(second_attempt):
    (form,) = second_attempt["seen"]
    assert form.subject == "Tear down openscience?"
    assert "#### Hub `prod`: verified" in form.body
    assert f"| grace | `grace/archive-{TODAY}.tar.gz` |" in form.body
    assert "NOT verified" not in form.body
    # Checked against each hub's own users (2i2c-staff never started a server there).
    assert "Checked against the hub's users API: 3 users, 2 of them ever started" in form.body
    assert form.answer == (["Approve"], {"confirm_community_id": "openscience"})


def test_what_ran_is_what_was_approved(second_attempt, world):
    store = world["store"]
    approval = store.get_action("openscience", f"decommission:approval:{END}").detail
    destroy = store.get_action("openscience", f"decommission:destroy:{END}").detail
    (form,) = second_attempt["seen"]
    assert approval["steps"]["digest"] in form.body
    assert destroy["approved_digest"] == approval["steps"]["digest"]
    assert destroy["script"].endswith(" && ".join(approval["steps"]["commands"]))


def test_teardown_is_a_reviewed_change_then_the_cluster_is_gone(second_attempt, world):
    import boto3

    files = subprocess.run(
        [
            "git",
            "-C",
            str(world["repo"]),
            "ls-tree",
            "-r",
            "--name-only",
            BRANCH,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert not [f for f in files if "openscience" in f]
    assert "config/clusters/renewedsci/cluster.yaml" in files
    # Destroyed only after the reviewed change was merged into main.
    assert world["merged"] == [BRANCH]
    assert states(second_attempt["run"])["teardown_pr_merged"] == "success"
    ancestor = subprocess.run(
        ["git", "-C", str(world["repo"]), "merge-base", "--is-ancestor",
         BRANCH, "main"],
        check=False,
    )  # fmt: skip
    assert ancestor.returncode == 0
    main_files = subprocess.run(
        ["git", "-C", str(world["repo"]), "ls-tree", "-r", "--name-only", "main"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert not [f for f in main_files if "openscience" in f]
    (destroyed,) = [env for name, env in second_attempt["pods"] if name == "destroy-openscience"]
    assert (destroyed["CLUSTER"], destroyed["PROVIDER"]) == ("openscience", "aws")
    # The merged change deleted the inputs; the pod works from the commit before it.
    assert destroyed["INFRA_URL"] == Path(world["repo"]).as_uri()
    (checkout,) = world["runner"].checkouts
    assert {"terraform/aws/projects/openscience.tfvars", "eksctl/openscience.jsonnet"} <= set(
        checkout
    )
    eks = boto3.client("eks", region_name=REGION)
    assert eks.list_clusters()["clusters"] == ["renewedsci"]


def test_buckets_are_private_encrypted_and_expire_after_90_days(second_attempt):
    import boto3

    s3 = boto3.client("s3", region_name=REGION)
    for hub in ("staging", "prod", "workshop"):
        bucket = f"openscience-{hub}-homedirs-archive"
        (rule,) = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
        assert rule["Transitions"] == [{"Days": 3, "StorageClass": "GLACIER_IR"}]
        assert rule["Expiration"] == {"Days": 90}
        block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
        assert all(block.values())
        (sse,) = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"][
            "Rules"
        ]
        assert sse["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"


def test_the_store_records_the_end(second_attempt, world):
    store = world["store"]
    assert store.get_engagement("openscience").status == "Decommissioned"
    detail = store.get_action("openscience", f"decommission:decommissioned:{END}").detail
    assert detail == {
        "decommissioned_on": TODAY.isoformat(),
        "backup_locations": {
            hub: f"s3://openscience-{hub}-homedirs-archive/"
            for hub in ("staging", "prod", "workshop")
        },
        "backup_manifests": {
            hub: f"s3://openscience-{hub}-homedirs-archive/_manifests/manifest-{TODAY}.json"
            for hub in ("staging", "prod", "workshop")
        },
        "backup_expires_on": EXPIRES.isoformat(),
        "cluster": "openscience",
    }


def test_renewal_while_the_approval_waits_cancels_before_any_delete(second_attempt, world, outbox):
    import boto3

    run, seen = run_dag(world, "renewedsci", 5)
    assert run.state == "success"  # cancelled is not failed: the community stays
    assert [f.subject for f in seen] == ["Tear down renewedsci?"]
    assert {
        "verify_backup": "success",
        "approve_teardown": "skipped",
        "open_teardown_pr": "skipped",
        "teardown_pr_merged": "skipped",
        "destroy_cluster": "skipped",
        "verify_cluster_gone": "skipped",
        "record_decommissioned": "skipped",
        "notice_after_removal": "skipped",
    }.items() <= states(run).items()
    assert "decommission-renewedsci" not in branches(world)
    assert "decommission-renewedsci" not in world["merged"]
    eks = boto3.client("eks", region_name=REGION)
    assert eks.describe_cluster(name="renewedsci")["cluster"]["status"] == "ACTIVE"
    store = world["store"]
    assert store.get_engagement("renewedsci").status == "Active"
    assert store.get_action("renewedsci", f"decommission:approval:{END}") is None
    (cancelled,) = mails(outbox, "renewedsci", "decommission-cancelled")
    assert "Nothing has been removed" in " ".join(
        cancelled.get_body(("plain",)).get_content().split()
    )
