"""Whether a cluster exists and in what state, as its provider says: plain data for any step.

EKS through the amazon provider (``DescribeCluster``), GKE through the google provider
(``get_cluster``), and kubeconfig clusters (Azure, Jetstream2), which have no cloud API here,
through their own Kubernetes API server (``list_node``) with the cncf-kubernetes provider.
Provisioning asks whether the new cluster runs; the decommission asks whether the old one is
gone. Provider libraries are imported only when asked.
"""

from __future__ import annotations

import socket
from typing import Any

API_TIMEOUT = (10, 30)
"""(connect, read) seconds for a request to a cluster's API server."""


class ClusterStatusUnknown(RuntimeError):
    """The API server could not be reached, and the failure proves nothing (a timeout, a
    temporary DNS failure, an unreachable network): neither running nor gone."""

    def __init__(self, server: str, reason: object) -> None:
        self.server = server
        self.reason = reason
        super().__init__(f"cluster {server}: {reason}")


def cluster_status(
    provider: str,
    cluster: str,
    *,
    conn_id: str,
    region: str,
    zone: str | None = None,
    account: str | None = None,
) -> dict[str, Any]:
    """The cluster as its provider answers now.

    Always ``exists`` (bool) and ``status`` (the provider's word, or what the API server
    answered); on EKS and GKE ``version`` and ``endpoint`` when it exists; kubeconfig
    clusters add ``server``, ``nodes`` and ``ready_nodes``, or ``evidence`` of their removal.
    """
    if provider == "aws":
        return eks_status(conn_id, cluster, region)
    if provider == "gcp":
        return gke_status(conn_id, cluster, account, zone or region)
    return api_server_status(conn_id)


def eks_status(conn_id: str, cluster: str, region: str) -> dict[str, Any]:
    from airflow.providers.amazon.aws.hooks.eks import EksHook

    client = EksHook(aws_conn_id=conn_id, region_name=region).conn
    try:
        found = client.describe_cluster(name=cluster)["cluster"]
    except client.exceptions.ResourceNotFoundException:
        return {"exists": False, "status": None}
    return {
        "exists": True,
        "status": found["status"],
        "version": found.get("version"),
        "endpoint": found.get("endpoint"),
    }


def gke_status(conn_id: str, cluster: str, project: str | None, location: str) -> dict[str, Any]:
    from airflow.providers.google.cloud.hooks.kubernetes_engine import GKEHook
    from google.api_core.exceptions import NotFound

    hook = GKEHook(gcp_conn_id=conn_id, location=location)
    try:
        found = hook.get_cluster(name=cluster, project_id=project)
    except NotFound:
        return {"exists": False, "status": None}
    status = getattr(found, "status", None)
    return {
        "exists": True,
        "status": getattr(status, "name", None) or status,
        "version": getattr(found, "current_master_version", None),
        "endpoint": getattr(found, "endpoint", None),
    }


def api_server_status(conn_id: str) -> dict[str, Any]:
    """What the API server of the kubeconfig connection answers.

    Any answer, even 401, means the cluster is there. Gone means its name does not exist or
    its address refuses connections; any other failure raises :class:`ClusterStatusUnknown`.
    """
    from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import MaxRetryError

    client = KubernetesHook(conn_id=conn_id).core_v1_client
    server = client.api_client.configuration.host
    try:
        nodes = client.list_node(_request_timeout=API_TIMEOUT).items
    except ApiException as exc:
        return {"exists": True, "status": f"answers: {exc.status} {exc.reason}", "server": server}
    except MaxRetryError as exc:
        evidence = removed_api_server(exc.reason)
        if evidence is None:
            raise ClusterStatusUnknown(server, exc.reason) from None
        return {"exists": False, "status": None, "server": server, "evidence": evidence}
    ready = [
        node.metadata.name
        for node in nodes
        if any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or [])
    ]
    return {
        "exists": True,
        "status": f"lists {len(nodes)} node(s)",
        "server": server,
        "nodes": len(nodes),
        "ready_nodes": len(ready),
    }


def removed_api_server(reason: Exception | None) -> str | None:
    """What shows the API server is gone (its name does not exist, or its address refuses
    connections), or None when the failure proves nothing."""
    from urllib3.exceptions import NameResolutionError, NewConnectionError

    cause = reason.__cause__ if reason is not None else None
    if isinstance(reason, NameResolutionError):
        if isinstance(cause, socket.gaierror) and cause.errno == socket.EAI_NONAME:
            return "its name does not resolve"
        return None
    if isinstance(reason, NewConnectionError) and isinstance(cause, ConnectionRefusedError):
        return "connection refused"
    return None
