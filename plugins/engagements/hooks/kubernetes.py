"""A cluster's Kubernetes versions from its own API server (Azure, Jetstream2).

Through the cncf-kubernetes provider's ``KubernetesHook`` with the cluster's kubeconfig
connection ``kubernetes_<cluster>``: ``GET /version`` for the control plane and each node's
``status.nodeInfo.kubeletVersion`` for the node pools, grouped by the provider's pool label.
A pool is as old as its oldest node; its ``since`` is that node's creation (upgrades replace
nodes). Control-plane nodes (Jetstream2's Cluster API) date the control plane the same way.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook

from engagements.versions import minor_of, parse_minor

POOL_LABELS = (
    "kubernetes.azure.com/agentpool",
    "agentpool",
    "capi.stackhpc.com/node-group",
    "cloud.google.com/gke-nodepool",
    "eks.amazonaws.com/nodegroup",
    "alpha.eksctl.io/nodegroup-name",
)
"""Labels naming a node's pool (AKS, Cluster API on OpenStack, GKE, EKS, eksctl)."""
CONTROL_PLANE_LABEL = "node-role.kubernetes.io/control-plane"


class ClusterVersionsHook(KubernetesHook):
    hook_name = "Kubernetes API (cluster versions)"

    def cluster_versions(self) -> dict[str, Any]:
        from kubernetes.client import VersionApi

        version = VersionApi(self.api_client).get_code().git_version
        pools: dict[str, list[tuple[str, str]]] = {}
        control: list[str] = []
        for node in self.core_v1_client.list_node().items:
            labels = node.metadata.labels or {}
            created = node.metadata.creation_timestamp.date().isoformat()
            if CONTROL_PLANE_LABEL in labels:
                control.append(created)
                continue
            pool = next((labels[k] for k in POOL_LABELS if labels.get(k)), "nodes")
            pools.setdefault(pool, []).append(
                (minor_of(node.status.node_info.kubelet_version), created)
            )
        return {
            "control_plane": {"version": minor_of(version), "since": min(control, default=None)},
            "node_pools": [
                {
                    "name": name,
                    "version": min((m for m, _ in nodes), key=lambda m: parse_minor(m or "") or 0),
                    "since": min(day for _, day in nodes),
                }
                for name, nodes in sorted(pools.items())
            ],
        }
