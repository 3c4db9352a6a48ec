"""The removal verified through EKS, GKE or the cluster's API server; the final record; a
removal checked by hand."""

from __future__ import annotations

import datetime as dt

import pytest
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from engagements.operators.decommission.backup import VerifyBackupOperator
from engagements.operators.decommission.cluster_gone import (
    RecordDecommissionedOperator,
    VerifyClusterGoneOperator,
)
from engagements.operators.decommission.notices import (
    DecommissionNoticeOperator,
)
from engagements.operators.decommission.teardown import (
    OpenTeardownPullRequestOperator,
)
from engagements.store.base import EngagementStatus
from tests.decommission.conftest import (
    BRANCH,
    CONTEXT,
    END,
    approve,
    approved,
    check_gone,
    closed_port,
    eks_cluster,
    git,
    make,
    ready_buckets,
    record,
    renew,
)

pytestmark = pytest.mark.usefixtures("hubs")


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
