"""Fixtures for decommission tests: an isolated store, moto's S3/EKS, the example community."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from engagements.config import CommunityConfig, load_config
from engagements.decommission.archive import (
    archive_bucket,
    archive_key,
    inventory_key,
    lifecycle_configuration,
    sidecar_key,
)
from engagements.operators.decommission.approval import TeardownApprovalOperator
from engagements.operators.decommission.buckets import ArchiveBuckets
from engagements.operators.decommission.cluster_gone import (
    VerifyClusterGoneOperator,
)
from engagements.operators.decommission.teardown import (
    OpenTeardownPullRequestOperator,
)
from engagements.renewal import apply_renewal
from engagements.sensors.decommission import TeardownMergedSensor
from engagements.settings import PROJECT_ROOT, Settings
from engagements.store.base import EngagementStatus
from engagements.store.local import LocalStore

EXAMPLE = PROJECT_ROOT / "include" / "communities" / "openscience.yaml"
ARCHIVE_DATE = dt.date(2027, 12, 1)
FAKE_AWS_CLI = Path(__file__).with_name("fake_aws_cli.py")
REGION = "us-west-2"


@pytest.fixture(autouse=True)
def kubernetes_client_logging():
    """Building Kubernetes models makes the kubernetes client set the ``urllib3`` and
    ``client`` loggers to WARNING for the whole process; put them back for the next tests."""
    with kept_logger_levels():
        yield


@contextlib.contextmanager
def kept_logger_levels(names: tuple[str, ...] = ("urllib3", "client")):
    levels = {name: logging.getLogger(name).level for name in names}
    try:
        yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


@pytest.fixture
def config() -> CommunityConfig:
    return load_config(EXAMPLE)


@pytest.fixture
def store(tmp_path, monkeypatch) -> LocalStore:
    path = tmp_path / "engagements.sqlite"
    monkeypatch.setenv("ENGAGEMENTS_STORE", "local")
    monkeypatch.setenv("ENGAGEMENTS_STORE_PATH", str(path))
    return LocalStore(path)


@pytest.fixture
def decommissioning(store, config) -> LocalStore:
    """The example community as the renewal pipeline leaves it: not renewed."""
    store.upsert_engagement(
        config.community_id,
        config.name,
        config.to_dict(),
        status=EngagementStatus.DECOMMISSIONING,
    )
    return store


@pytest.fixture
def aws(monkeypatch):
    """moto's AWS, reached through an ``aws_default`` connection as in production."""
    from moto import mock_aws

    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv(
        "AIRFLOW_CONN_AWS_DEFAULT",
        json.dumps({"conn_type": "aws", "extra": {"region_name": REGION}}),
    )
    with mock_aws():
        yield


def put_archive(client, bucket: str, user: str, content: bytes, *, recorded: bytes | None = None):
    """Upload what the archive job uploads for one user: the tarball, then its sidecar.

    ``recorded`` is what the job archived when it differs from what reached S3 (truncation).
    """
    recorded = content if recorded is None else recorded
    client.put_object(Bucket=bucket, Key=archive_key(user, ARCHIVE_DATE), Body=content)
    sidecar = {
        "user": user,
        "size": len(recorded),
        "md5": hashlib.md5(recorded, usedforsecurity=False).hexdigest(),
        "home_bytes": 10 * len(recorded),
    }
    client.put_object(
        Bucket=bucket, Key=sidecar_key(user, ARCHIVE_DATE), Body=json.dumps(sidecar).encode()
    )


def put_inventory(client, bucket: str, users: list[str]) -> None:
    client.put_object(
        Bucket=bucket, Key=inventory_key(ARCHIVE_DATE), Body=json.dumps({"users": users}).encode()
    )


def run_archive_script(
    script: str, *, homes: Path, work: Path, env: dict[str, str]
) -> subprocess.CompletedProcess:
    """Run the archive job's script here, as its pod would: ``sh -c`` with the job's
    environment, the home volume at ``homes``, and an ``aws`` that writes what it uploads to
    ``work/s3/<bucket>/<key>`` (see :func:`upload_written`)."""
    bin_dir = work / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    aws = bin_dir / "aws"
    aws.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE_AWS_CLI}" "$@"\n')
    aws.chmod(0o755)
    return subprocess.run(
        ["/bin/sh", "-c", script],
        env={
            "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            **env,
            "HOME_ROOT": str(homes),
            "WORK_DIR": str(work),
            "FAKE_S3": str(work / "s3"),
        },
        capture_output=True,
        text=True,
        check=False,
    )


def upload_written(work: Path, client) -> list[str]:
    """Put what the script's ``aws`` wrote into (moto's) S3, as the real CLI would have."""
    uploads = work / "s3"
    keys = []
    for path in sorted(p for p in uploads.rglob("*") if p.is_file()):
        bucket, *key = path.relative_to(uploads).parts
        client.put_object(Bucket=bucket, Key="/".join(key), Body=path.read_bytes())
        keys.append("/".join(key))
        path.unlink()
    return keys


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


@pytest.fixture
def hubs(monkeypatch):
    """Each hub's users API, listing the users ``ready_buckets`` archives homes of (used by
    every operator test)."""
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


def approval(store):
    return make(TeardownApprovalOperator, store)


def answer(option: str, typed: str) -> dict[str, Any]:
    return {
        "chosen_options": [option],
        "params_input": {"confirm_community_id": typed},
        "responded_at": dt.datetime(2027, 12, 3, tzinfo=dt.UTC),
        "responded_by_user": {"id": "eng", "name": "Eve (engineer)"},
    }


def form_shown(store, command: str = "") -> dict[str, Any]:
    """What preparing the form records: the steps it shows."""
    from engagements.decommission.teardown import teardown_steps
    from engagements.onboarding import effective_config

    config = effective_config(store.get_engagement("openscience"))
    steps = teardown_steps(config, command).to_dict()
    record(store, "approval-form", {"steps": steps})
    return steps


@pytest.fixture
def infra_repo(tmp_path, monkeypatch, config):
    """The embedded infrastructure repository with openscience deployed and another cluster."""
    from engagements.hooks.infra_repo.local import LocalGitInfraRepository
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


def commit_by_hand(path, message: str, *rm: str) -> None:
    git(path, "rm", "-q", "-r", *rm)
    git(path, "-c", "user.name=Eng", "-c", "user.email=e@2i2c.org", "commit", "-q", "-m", message)


def propose_and_merge(store, infra_repo) -> dict[str, Any]:
    """The teardown change proposed by the pipeline, then merged by an engineer."""
    detail = make(OpenTeardownPullRequestOperator, store).execute(CONTEXT)
    git(infra_repo, "merge", "--quiet", BRANCH)
    return detail


def eks_cluster(name: str) -> None:
    import boto3

    boto3.client("eks", region_name=REGION).create_cluster(
        name=name,
        roleArn="arn:aws:iam::123456789012:role/eks",
        resourcesVpcConfig={"subnetIds": ["subnet-1"]},
    )


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
