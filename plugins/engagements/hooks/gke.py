"""Google Kubernetes Engine: a cluster's versions and the versions GKE offers.

Through the google provider's ``GKEHook`` (``google_cloud_default``): ``get_cluster`` for the
control plane and node pools, ``get_server_config`` for the versions offered in the cluster's
location, and ``fetchClusterUpgradeInfo`` for the end of standard support of the cluster's own
minor (the server config gives no dates). The client speaks the container API's REST form;
the connection's ``container_api_endpoint`` extra, when set, is where it sends it (a private
endpoint; the tests' fake).
"""

from __future__ import annotations

from typing import Any

from airflow.providers.google.cloud.hooks.kubernetes_engine import GKEHook
from google.cloud.container_v1 import ClusterManagerClient

from engagements.versions import minor_of


class GkeVersionsHook(GKEHook):
    hook_name = "Google Kubernetes Engine (cluster versions)"

    def get_cluster_manager_client(self) -> ClusterManagerClient:
        if self._client is None:
            from airflow.providers.google.common.consts import CLIENT_INFO

            endpoint = self._get_field("container_api_endpoint", None)
            self._client = ClusterManagerClient(
                credentials=self.get_credentials(),
                client_info=CLIENT_INFO,
                client_options=self.get_client_options(endpoint),
                transport="rest",
            )
        return self._client

    def cluster_versions(self, name: str, project_id: str) -> dict[str, Any]:
        """``control_plane`` {version, since, end_of_support} and ``node_pools`` [{name, version}].

        GKE reports no time of a node pool's last upgrade: ``since`` is left out for pools.
        """
        cluster = self.get_cluster(name=name, project_id=project_id)
        path = f"projects/{project_id}/locations/{self.location}/clusters/{name}"
        info = self.get_cluster_manager_client().fetch_cluster_upgrade_info(name=path)
        end = info.end_of_standard_support_timestamp
        return {
            "control_plane": {
                "version": minor_of(cluster.current_master_version),
                "since": cluster.create_time[:10] if cluster.create_time else None,
                "end_of_support": end[:10] if end else None,
            },
            "node_pools": [
                {"name": pool.name, "version": minor_of(pool.version), "since": None}
                for pool in cluster.node_pools
            ],
        }

    def offered_minors(self, project_id: str) -> list[str]:
        """Every minor GKE offers for control planes in the location, in any release channel."""
        config = self.get_cluster_manager_client().get_server_config(
            name=f"projects/{project_id}/locations/{self.location}"
        )
        versions = list(config.valid_master_versions)
        for channel in config.channels:
            versions += list(channel.valid_versions)
        minors = {minor_of(v) for v in versions} - {None}
        return sorted(minors, key=lambda m: int(m.split(".")[1]))  # type: ignore[union-attr]
