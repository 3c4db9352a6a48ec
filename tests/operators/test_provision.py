"""Provisioning: plan-only skips, the approval form, the tooling pod, verification per provider."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from unittest import mock

import pytest
import yaml
from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException

from engagements.deployment import CLUSTER_OUTPUTS, INFRA_HUBS_PR, INFRA_PR
from engagements.hooks.infra_repo import DeploymentSettings
from engagements.infra.apply import provisioning_script
from engagements.infra.render import render_cluster_change
from engagements.operators.github import OpenHubsPullRequestOperator
from engagements.operators.provision import (
    NOT_VERIFIED,
    ClusterOutputsOperator,
    ConfirmDeploymentOperator,
    ProvisionApprovalOperator,
    ProvisionClusterOperator,
    VerifyClusterOperator,
    blockers,
    verification_connection,
)
from tests.kubernetes_api import KubernetesApi, connection

GCP = {
    "cloud.provider": "gcp",
    "cloud.region": "us-central1",
    "cloud.zone": "us-central1-b",
    "cloud.account": "openscience-project",
}
AZURE = {
    "cloud.provider": "azure",
    "cloud.region": "eastus",
    "cloud.account": "0b1f6471-1bf0-4dda-aec3-cb9272f09590",
    "cloud.tenant_id": "0b8e2d1c-7a3f-4e5d-9c1b-2f4a6e8d0c13",
}
SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEngagementTestsNodeAccessKey000000000 eng@2i2c.org"
READY = DeploymentSettings(tooling_image="quay.io/2i2c/tooling:1", infra_repo="2i2c-org/infra")


@pytest.fixture(autouse=True)
def no_cloud(monkeypatch):
    for name in list(os.environ):
        if name.startswith(("AIRFLOW_CONN_", "ENGAGEMENTS_TOOLING", "ENGAGEMENTS_INFRA_REPO")):
            monkeypatch.delenv(name)


def plan_of(config, decisions=None):
    config = config.with_decisions(decisions) if decisions else config
    return render_cluster_change(config, ssh_public_key=SSH_KEY).plan


def record_change(store, plan, kind="pull_request"):
    store.record_action(
        "openscience",
        INFRA_PR,
        "pull_request",
        {"kind": kind, "plan": plan, "url_or_path": "https://github.com/x/y/pull/7", "commit": "c"},
    )


def make(cls, store):
    op = cls(task_id=cls.__name__, community_id="openscience")
    op.store = store
    return op


def test_blockers_name_every_missing_piece(example_config):
    plan = plan_of(example_config)
    reasons = blockers(plan, DeploymentSettings(), "local_branch", lambda _: False)
    assert len(reasons) == 3
    assert "engagements_tooling_image" in reasons[0]
    assert "local git repository" in reasons[1]
    assert "'aws_default'" in reasons[2]
    assert blockers(plan, READY, "pull_request", lambda conn: conn == "aws_default") == []


def test_each_provider_is_verified_through_its_own_connection(example_config):
    assert verification_connection(plan_of(example_config)) == ("eks", "aws_default")
    assert verification_connection(plan_of(example_config, GCP)) == ("gke", "google_cloud_default")
    assert verification_connection(plan_of(example_config, AZURE)) == (
        "kubeconfig",
        "kubernetes_openscience",
    )


def test_approval_skips_with_the_plan_when_nothing_can_be_applied(store, example_config):
    record_change(store, plan_of(example_config), kind="local_branch")
    with pytest.raises(AirflowSkipException) as skipped:
        make(ProvisionApprovalOperator, store).execute({})
    message = str(skipped.value)
    assert message.startswith("Plan only, nothing applied and nothing recorded as deployed")
    assert "**Cluster** `openscience` on **aws** in `us-west-2`" in message
    assert "terraform/aws/projects/openscience.tfvars" in message
    assert store.get_action("openscience", "provisioning") is None
    assert not store.get_milestone("openscience", "infrastructure_deployed").done


def test_approval_form_shows_the_plan_inputs_and_the_command(store, example_config, monkeypatch):
    monkeypatch.setenv("ENGAGEMENTS_TOOLING_IMAGE", "quay.io/2i2c/tooling:1")
    monkeypatch.setenv("ENGAGEMENTS_INFRA_REPO", "2i2c-org/infrastructure")
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps({"conn_type": "aws"}))
    record_change(store, plan_of(example_config))
    op = make(ProvisionApprovalOperator, store)
    with mock.patch.object(ApprovalOperator, "execute", return_value="asked") as asked:
        assert op.execute({}) == "asked"
    asked.assert_called_once()
    assert "Approve to run `quay.io/2i2c/tooling:1`" in op.body
    assert "**Account** `123456789012`, billed to community" in op.body
    assert "nb-r5.xlarge (r5.xlarge, 0-500)" in op.body
    assert "eksctl create cluster" in op.body


def test_provisioning_skips_without_its_inputs(store, example_config):
    record_change(store, plan_of(example_config))
    with pytest.raises(AirflowSkipException, match="engagements_tooling_image"):
        make(ProvisionClusterOperator, store).execute({})


def test_the_pod_runs_the_tooling_image_with_the_plan(store, example_config, monkeypatch):
    monkeypatch.setenv("ENGAGEMENTS_KUBERNETES_NAMESPACE", "provisioning")
    plan = plan_of(example_config)
    op = make(ProvisionClusterOperator, store)
    pod = op.pod_operator({"plan": plan}, READY)
    assert pod.image == "quay.io/2i2c/tooling:1"
    assert pod.cmds == ["/bin/sh", "-c"]
    assert pod.arguments == [provisioning_script(plan)]
    assert pod.env_vars == {
        "INFRA_REPO": "2i2c-org/infra",
        "INFRA_REF": "main",
        "CLUSTER_NAME": "openscience",
        "PROVIDER": "aws",
        "REGION": "us-west-2",
    }
    assert pod.kubernetes_conn_id == "kubernetes_default"
    custom = DeploymentSettings(**{**READY.__dict__, "tooling_command": "deployer --help"})
    assert op.pod_operator({"plan": plan}, custom).arguments == ["deployer --help"]


def test_a_finished_pod_is_recorded(store, example_config, monkeypatch):
    monkeypatch.setenv("ENGAGEMENTS_TOOLING_IMAGE", "quay.io/2i2c/tooling:1")
    monkeypatch.setenv("ENGAGEMENTS_INFRA_REPO", "2i2c-org/infrastructure")
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps({"conn_type": "aws"}))
    record_change(store, plan_of(example_config))
    op = make(ProvisionClusterOperator, store)
    ran = []

    class Pod:
        def execute(self, context):
            ran.append(context)

    op.pod_operator = lambda change, settings: Pod()  # the pod itself needs a cluster
    op.execute({"run_id": "r"})
    assert ran == [{"run_id": "r"}]
    assert store.get_action("openscience", "provisioning").detail["state"] == "applied"


def test_building_the_operators_imports_no_kubernetes_and_reads_nothing():
    script = (
        "import sys\n"
        "from engagements.operators.provision import ProvisionClusterOperator\n"
        "ProvisionClusterOperator(task_id='p')\n"
        "assert 'airflow.providers.cncf.kubernetes.operators.pod' not in sys.modules\n"
        "assert 'kubernetes' not in sys.modules\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_verification_skips_without_the_cloud_connection(store, example_config):
    record_change(store, plan_of(example_config))
    with pytest.raises(AirflowSkipException, match="no 'aws_default' connection"):
        make(VerifyClusterOperator, store).execute({})
    assert store.get_action("openscience", "cluster-verified") is None


def test_eks_cluster_is_verified_through_the_amazon_provider(store, example_config, monkeypatch):
    import boto3
    from moto import mock_aws

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv(
        "AIRFLOW_CONN_AWS_DEFAULT",
        json.dumps({"conn_type": "aws", "extra": {"region_name": "us-west-2"}}),
    )
    record_change(store, plan_of(example_config))
    with mock_aws():
        op = make(VerifyClusterOperator, store)
        with pytest.raises(AirflowException, match=r"openscience does not exist \(yet\) on eks"):
            op.execute({})
        boto3.client("eks", region_name="us-west-2").create_cluster(
            name="openscience",
            roleArn="arn:aws:iam::123456789012:role/eks",
            resourcesVpcConfig={"subnetIds": ["subnet-1"]},
        )
        detail = op.execute({})
    assert detail["status"] == "ACTIVE"
    assert store.get_action("openscience", "cluster-verified").detail["via"] == "eks"


def test_gke_cluster_is_verified_through_the_google_provider(store, example_config, monkeypatch):
    from airflow.providers.google.cloud.hooks.kubernetes_engine import GKEHook
    from google.cloud.container_v1 import Cluster

    monkeypatch.setenv(
        "AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT", json.dumps({"conn_type": "google_cloud_platform"})
    )
    record_change(store, plan_of(example_config, GCP))
    asked = []
    status = [Cluster.Status.PROVISIONING]

    class ClusterManager:  # the gRPC client; GKEHook builds the request
        def get_cluster(self, name, retry, timeout):
            asked.append(name)
            return Cluster(name="openscience", status=status[0])

    monkeypatch.setattr(GKEHook, "get_cluster_manager_client", lambda self: ClusterManager())
    op = make(VerifyClusterOperator, store)
    with pytest.raises(AirflowException, match=r"not ready yet.*PROVISIONING"):
        op.execute({})
    status[0] = Cluster.Status.RUNNING
    assert op.execute({})["status"] == "RUNNING"
    assert asked[-1] == "projects/openscience-project/locations/us-central1-b/clusters/openscience"


def test_kubeconfig_cluster_is_verified_by_its_ready_nodes(store, example_config, monkeypatch):
    api = KubernetesApi()
    monkeypatch.setenv("AIRFLOW_CONN_KUBERNETES_OPENSCIENCE", connection(api.url))
    record_change(store, plan_of(example_config, AZURE))
    op = make(VerifyClusterOperator, store)
    try:
        with pytest.raises(AirflowException, match="'ready_nodes': 0"):
            op.execute({})
        api.ready = True
        detail = op.execute({})
    finally:
        api.close()
    assert (detail["via"], detail["nodes"], detail["ready_nodes"]) == ("kubeconfig", 1, 1)


def test_deployment_is_recorded_only_when_the_pipeline_proved_it(store):
    confirm = make(ConfirmDeploymentOperator, store)
    store.record_action("openscience", "quay-image", "container_registry", {"state": "planned"})
    with pytest.raises(AirflowSkipException, match="Nothing recorded as deployed") as skipped:
        confirm.execute({"run_id": "r"})
    assert "every hub healthy (hubs_healthy)" in str(skipped.value)
    assert store.get_action("openscience", NOT_VERIFIED).detail["missing"] == [
        "every hub healthy (hubs_healthy)",
        "the GitHub org work",
        "the Quay image repository",
    ]
    assert not store.get_milestone("openscience", "infrastructure_deployed").done

    store.record_action("openscience", "hubs-healthy", "health_check", {"prod": "https://x"})
    store.record_action("openscience", "github-org", "github", {"org": "openscience-org"})
    store.update_action("openscience", "quay-image", {"state": "created"})
    assert confirm.execute({"run_id": "r"})["recorded"] is True
    record = store.get_milestone("openscience", "infrastructure_deployed")
    assert record.done
    assert record.done_by == "engagement pipelines (every hub healthy)"


# The applied cluster's outputs, which the hubs' change is written with.

TERRAFORM = {
    "ebs_volume_id_map": {
        "sensitive": False,
        "type": ["map", "string"],
        "value": {
            "hub-nfs-home-dirs-staging": "vol-0a0000000000000a1",
            "hub-nfs-home-dirs-prod": "vol-0a0000000000000a2",
            "hub-nfs-home-dirs-workshop": "vol-0a0000000000000a3",
        },
    }
}
NFS = {"staging": "10.100.41.7", "prod": "10.100.203.19", "workshop": "10.100.7.250"}


@pytest.fixture
def outputs_dir(tmp_path, monkeypatch):
    path = tmp_path / "cluster-outputs"
    monkeypatch.setenv("ENGAGEMENTS_OUTPUTS_DIR", str(path))
    return path


def apply_with_pod(store, monkeypatch, report):
    """provision_cluster with the pod's XCom (what KubernetesPodOperator returns) = report."""
    monkeypatch.setenv("ENGAGEMENTS_TOOLING_IMAGE", "quay.io/2i2c/tooling:1")
    monkeypatch.setenv("ENGAGEMENTS_INFRA_REPO", "2i2c-org/infrastructure")
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps({"conn_type": "aws"}))
    op = make(ProvisionClusterOperator, store)

    class Pod:  # the pod itself needs a cluster; its script is run in tests/infra/test_apply.py
        def execute(self, context):
            return report

    op.pod_operator = lambda change, settings: Pod()
    return op.execute({"run_id": "r"})


def test_the_pods_outputs_are_recorded_for_the_hubs(store, example_config, monkeypatch):
    record_change(store, plan_of(example_config))
    applied = apply_with_pod(store, monkeypatch, {"terraform": TERRAFORM, "nfs_server_ip": NFS})
    assert (applied["terraform_outputs"], applied["nfs_server_ip"]) == (TERRAFORM, NFS)
    detail = make(ClusterOutputsOperator, store).execute({})
    assert detail["outputs"] == {
        "ebs_volume_id_map": {
            "staging": "vol-0a0000000000000a1",
            "prod": "vol-0a0000000000000a2",
            "workshop": "vol-0a0000000000000a3",
        },
        "nfs_server_ip": NFS,
    }
    assert detail["source"] == "terraform output -json of the provisioning pod (commit c)"
    assert detail["example"] is False
    assert store.get_action("openscience", CLUSTER_OUTPUTS).detail == detail


def test_a_missing_output_after_apply_stops_before_the_hubs_pull_request(
    store, example_config, monkeypatch, local_infra
):
    record_change(store, plan_of(example_config))
    volumes = {**TERRAFORM["ebs_volume_id_map"]["value"]}
    del volumes["hub-nfs-home-dirs-workshop"]
    report = {
        "terraform": {"ebs_volume_id_map": {"value": volumes}},
        "nfs_server_ip": {**NFS, "workshop": ""},
    }
    apply_with_pod(store, monkeypatch, report)
    with pytest.raises(AirflowFailException) as failed:
        make(ClusterOutputsOperator, store).execute({})
    assert str(failed.value).splitlines() == [
        "The applied cluster openscience lacks outputs the hubs need; the hubs' pull request "
        "is not opened:",
        "  outputs.ebs_volume_id_map.workshop: missing: terraform output ebs_volume_id_map, "
        "entry hub-nfs-home-dirs-workshop",
        "  outputs.nfs_server_ip.workshop: missing: the ClusterIP of service "
        "storage-quota-home-nfs in namespace workshop, which the provisioning pod reserves",
        "To go on: check the tfvars' disks and the reserved NFS services, clear "
        "provision_cluster to apply again, then clear this task.",
    ]
    assert store.get_action("openscience", CLUSTER_OUTPUTS) is None
    # The hubs' pull request has nothing to be written with, and proposes nothing (here to
    # the local repository, whatever the repository would be).
    monkeypatch.delenv("ENGAGEMENTS_INFRA_REPO")
    with pytest.raises(AirflowFailException, match=r"run \(or clear\) the cluster_outputs task"):
        make(OpenHubsPullRequestOperator, store).execute({})
    assert store.get_action("openscience", INFRA_HUBS_PR) is None
    assert not local_infra.exists()


def test_an_applied_cluster_whose_pod_reported_nothing_names_the_file_to_write(
    store, example_config, monkeypatch, outputs_dir
):
    record_change(store, plan_of(example_config))
    apply_with_pod(store, monkeypatch, None)  # a tooling_command that writes no XCom
    with pytest.raises(AirflowFailException) as failed:
        make(ClusterOutputsOperator, store).execute({})
    message = str(failed.value)
    assert "No outputs of cluster openscience: the provisioning pod reported none" in message
    assert f"{outputs_dir / 'openscience.yaml'} does not exist" in message
    assert "ebs_volume_id_map.staging, nfs_server_ip.staging" in message


def test_an_outputs_file_with_a_placeholder_is_refused(store, example_config, outputs_dir):
    record_change(store, plan_of(example_config))  # applied by hand: the engineer's file
    outputs_dir.mkdir()
    volumes = {"staging": "vol-0a0000000000000a1", "prod": "PENDING", "workshop": "vol-0a3"}
    (outputs_dir / "openscience.yaml").write_text(
        yaml.safe_dump({"ebs_volume_id_map": volumes, "nfs_server_ip": NFS})
    )
    with pytest.raises(AirflowFailException) as failed:
        make(ClusterOutputsOperator, store).execute({})
    message = str(failed.value)
    assert "outputs.ebs_volume_id_map.prod: 'PENDING' is a placeholder" in message
    assert "outputs.ebs_volume_id_map.workshop: 'vol-0a3' does not look like" in message
    assert f"To go on: correct them in {outputs_dir / 'openscience.yaml'}" in message


def test_the_embedded_default_writes_example_outputs_an_engineer_replaces(
    store, example_config, outputs_dir
):
    record_change(store, plan_of(example_config), kind="local_branch")
    first = make(ClusterOutputsOperator, store).execute({})
    path = outputs_dir / "openscience.yaml"
    written = yaml.safe_load(path.read_text())
    assert written["_note"].startswith("EXAMPLE outputs")
    assert "delete the file's _note line" in written["_note"]
    assert first["example"] is True
    assert first["source"].startswith(f"EXAMPLE values from {path}")
    assert "_note" not in first["outputs"]

    # The engineer writes the real outputs and deletes the note; a re-run reads them as is.
    real = {
        "ebs_volume_id_map": {
            "staging": "vol-0a0000000000000a1",
            "prod": "vol-0a0000000000000a2",
            "workshop": "vol-0a0000000000000a3",
        },
        "nfs_server_ip": NFS,
    }
    path.write_text(yaml.safe_dump(real))
    again = make(ClusterOutputsOperator, store).execute({})
    assert (again["outputs"], again["example"]) == (real, False)
    assert again["source"] == f"{path}, written by an engineer"
    assert yaml.safe_load(path.read_text()) == real  # never overwritten
