"""Amazon EKS: a cluster's Kubernetes versions and the versions EKS offers.

Through the amazon provider's ``EksHook`` (``aws_default``): ``DescribeCluster`` for the
control plane, ``ListNodegroups``/``DescribeNodegroup`` for the managed node groups, and
``DescribeClusterVersions`` for each version EKS offers with the end of its standard support.
Answers are plain data; ``since`` is the creation time AWS reports (a node group is rolled out
anew at each upgrade, so its creation is its last upgrade; a control plane's is a lower bound).
"""

from __future__ import annotations

from typing import Any

from airflow.providers.amazon.aws.hooks.eks import EksHook

from engagements.versions import minor_of


class EksVersionsHook(EksHook):
    hook_name = "Amazon EKS (cluster versions)"

    def cluster_versions(self, name: str) -> dict[str, Any]:
        """``{"control_plane": {version, since}, "node_pools": [{name, version, since}]}``."""
        cluster = self.describe_cluster(name=name)["cluster"]
        pools = []
        for nodegroup in sorted(self.list_nodegroups(clusterName=name)):
            info = self.describe_nodegroup(clusterName=name, nodegroupName=nodegroup)["nodegroup"]
            pools.append(
                {
                    "name": nodegroup,
                    "version": minor_of(info["version"]),
                    "since": info["createdAt"].date().isoformat(),
                }
            )
        return {
            "control_plane": {
                "version": minor_of(cluster["version"]),
                "since": cluster["createdAt"].date().isoformat(),
            },
            "node_pools": pools,
        }

    def offered_versions(self) -> dict[str, str]:
        """Each minor EKS supports (standard or extended) -> the end of its standard support."""
        offered: dict[str, str] = {}
        request: dict[str, Any] = {"includeAll": True}
        while True:
            page = self.conn.describe_cluster_versions(**request)
            for entry in page.get("clusterVersions", []):
                minor = minor_of(entry.get("clusterVersion", ""))
                end = entry.get("endOfStandardSupportDate")
                if minor and end and entry.get("versionStatus") != "UNSUPPORTED":
                    offered[minor] = end.date().isoformat()
            if not page.get("nextToken"):
                return offered
            request["nextToken"] = page["nextToken"]
