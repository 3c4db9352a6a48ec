"""The cluster-version hooks at their boundaries: EKS in moto (DescribeClusterVersions at the
boto boundary), GKE's REST API faked over HTTP, a Kubernetes API server faked over HTTP."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from tests.cluster_apis import FakeGke, eks_cluster_versions
from tests.decommission.conftest import kept_logger_levels
from tests.kubernetes_api import KubernetesApi, connection, node

REGION = "us-west-2"


@pytest.fixture(autouse=True)
def kubernetes_client_logging():
    with kept_logger_levels():
        yield


@pytest.fixture
def aws(monkeypatch):
    from moto import mock_aws

    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AIRFLOW_CONN_AWS_DEFAULT": json.dumps({"conn_type": "aws"}),
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        import boto3

        eks = boto3.client("eks", region_name=REGION)
        vpc = {"subnetIds": ["subnet-1"]}
        role = "arn:aws:iam::123456789012:role/eks"
        eks.create_cluster(name="awssci", version="1.31", roleArn=role, resourcesVpcConfig=vpc)
        for pool, version in (("user", "1.31"), ("core", "1.30")):
            eks.create_nodegroup(
                clusterName="awssci",
                nodegroupName=pool,
                version=version,
                subnets=["subnet-1"],
                nodeRole=role,
            )
        yield eks


def test_eks_versions_of_the_cluster_and_its_managed_node_groups(aws):
    from engagements.hooks.eks import EksVersionsHook

    versions = EksVersionsHook(aws_conn_id="aws_default", region_name=REGION).cluster_versions(
        "awssci"
    )
    today = dt.datetime.now(dt.UTC).date().isoformat()
    assert versions == {
        "control_plane": {"version": "1.31", "since": today},
        "node_pools": [
            {"name": "core", "version": "1.30", "since": today},
            {"name": "user", "version": "1.31", "since": today},
        ],
    }


def test_eks_offered_versions_with_their_end_of_standard_support_every_page(aws):
    from engagements.hooks.eks import EksVersionsHook

    offered = {
        "1.31": dt.date(2026, 11, 26),
        "1.32": dt.date(2027, 3, 23),
        "1.33": dt.date(2027, 7, 29),
    }
    with eks_cluster_versions(offered) as queries:
        answer = EksVersionsHook(aws_conn_id="aws_default", region_name=REGION).offered_versions()
    assert answer == {"1.31": "2026-11-26", "1.32": "2027-03-23", "1.33": "2027-07-29"}
    assert [q.get("nextToken") for q in queries] == [None, "2"]
    assert all(q["includeAll"] == "true" for q in queries)


@pytest.fixture
def gke(monkeypatch):
    fake = FakeGke()
    fake.add_cluster(
        "sci-project",
        "us-central1-b",
        "gcpsci",
        "1.31.6-gke.1020000",
        {"core-pool": "1.31.6-gke.1020000", "user-pool": "1.30.9-gke.1009000"},
    )
    fake.valid_versions["projects/sci-project/locations/us-central1-b"] = [
        "1.32.4-gke.1106006",
        "1.33.1-gke.1584000",
        "1.34.0-gke.1709000",
    ]
    fake.end_of_support["1.31"] = "2026-12-20"
    monkeypatch.setenv("AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT", fake.connection("sci-project"))
    yield fake
    fake.close()


def test_gke_versions_through_the_rest_api(gke):
    from engagements.hooks.gke import GkeVersionsHook

    hook = GkeVersionsHook(gcp_conn_id="google_cloud_default", location="us-central1-b")
    assert hook.cluster_versions("gcpsci", project_id="sci-project") == {
        "control_plane": {"version": "1.31", "since": "2025-03-01", "end_of_support": "2026-12-20"},
        "node_pools": [
            {"name": "core-pool", "version": "1.31", "since": None},
            {"name": "user-pool", "version": "1.30", "since": None},
        ],
    }
    assert hook.offered_minors(project_id="sci-project") == ["1.32", "1.33", "1.34"]
    assert gke.requests == [
        ("GET", "/v1/projects/sci-project/locations/us-central1-b/clusters/gcpsci"),
        (
            "GET",
            "/v1/projects/sci-project/locations/us-central1-b/clusters/gcpsci:fetchClusterUpgradeInfo",
        ),
        ("GET", "/v1/projects/sci-project/locations/us-central1-b/serverConfig"),
    ]


def test_gke_unknown_cluster_is_googles_not_found(gke):
    from google.api_core.exceptions import NotFound

    from engagements.hooks.gke import GkeVersionsHook

    hook = GkeVersionsHook(gcp_conn_id="google_cloud_default", location="us-central1-b")
    with pytest.raises(NotFound):
        hook.cluster_versions("other", project_id="sci-project")


def test_kubernetes_versions_by_pool_from_the_api_server(monkeypatch):
    from engagements.hooks.kubernetes import ClusterVersionsHook

    api = KubernetesApi()
    api.git_version = "v1.30.5"
    api.nodes = [
        node("cp-1", "v1.30.5", {"node-role.kubernetes.io/control-plane": ""}, "2026-03-02T08:00:00Z"),
        node("w-1", "v1.29.9", {"capi.stackhpc.com/node-group": "default-worker"}, "2025-06-01T00:00:00Z"),
        node("w-2", "v1.30.5", {"capi.stackhpc.com/node-group": "default-worker"}, "2026-03-03T00:00:00Z"),
        node("u-1", "v1.30.5", {"capi.stackhpc.com/node-group": "user-m3"}, "2026-03-04T00:00:00Z"),
        node("x-1", "v1.30.5", {}, "2026-03-05T00:00:00Z"),
    ]  # fmt: skip
    monkeypatch.setenv("AIRFLOW_CONN_KUBERNETES_JETSCI", connection(api.url))
    try:
        versions = ClusterVersionsHook(conn_id="kubernetes_jetsci").cluster_versions()
    finally:
        api.close()
    assert versions == {
        "control_plane": {"version": "1.30", "since": "2026-03-02"},
        "node_pools": [
            {"name": "default-worker", "version": "1.29", "since": "2025-06-01"},
            {"name": "nodes", "version": "1.30", "since": "2026-03-05"},
            {"name": "user-m3", "version": "1.30", "since": "2026-03-04"},
        ],
    }
    assert sorted(r["path"] for r in api.requests) == ["/api/v1/nodes", "/version/"]
    assert all(r["authorization"] == "Bearer k8s-token" for r in api.requests)
