"""The removal verified through the provider, and the final record of the decommission."""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from engagements.hooks import connection_exists
from engagements.operators.decommission.base import DecommissionOperator
from engagements.store.base import EngagementStatus

if TYPE_CHECKING:
    from airflow.sdk import Context


log = logging.getLogger(__name__)


class VerifyClusterGoneOperator(DecommissionOperator):
    """Ask whether the cluster still exists: EKS through the amazon provider, GKE through the
    google provider, and the kubeconfig clusters (Azure, Jetstream2) through the cncf-kubernetes
    provider, by calling their Kubernetes API.

    Those last have no cloud API here, so the evidence is the API server itself: gone means
    its name does not exist or its address refuses connections, on every one of
    ``unreachable_checks`` attempts ``check_interval`` seconds apart. Any answer, even 401 or
    a TLS handshake, means it is still there; a timeout or an unreachable network proves
    nothing and fails the check, so an engineer looks.
    The cluster still there fails the run: the engagement is not recorded as decommissioned.
    Without the connection it skips with the command to check by hand.
    """

    def __init__(
        self,
        *,
        aws_conn_id: str = "aws_default",
        gcp_conn_id: str = "google_cloud_default",
        kubernetes_conn_id: str | None = None,
        unreachable_checks: int = 3,
        check_interval: float = 30.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.aws_conn_id = aws_conn_id
        self.gcp_conn_id = gcp_conn_id
        self.kubernetes_conn_id = kubernetes_conn_id
        self.unreachable_checks = unreachable_checks
        self.check_interval = check_interval

    def execute(self, context: Context) -> dict[str, Any]:
        from engagements.config import CloudProvider
        from engagements.hooks.cluster_status import eks_status, gke_status

        _, config = self.checked()
        if self.action("approval") is None or self.action("teardown-pr") is None:
            raise AirflowSkipException("the teardown did not happen in this decommission")
        cluster, region = config.cluster_name, config.cloud.region
        provider = config.cloud.provider
        if provider is CloudProvider.AWS:
            if not connection_exists(self.aws_conn_id):
                raise self.hand_check(
                    f"no AWS connection {self.aws_conn_id!r}",
                    f"aws eks describe-cluster --name {cluster} --region {region} (must say "
                    "ResourceNotFoundException)",
                )
            kind, where = "EKS", region
            status = self._cloud_status(eks_status(self.aws_conn_id, cluster, region))
            detail = {"provider": "aws eks", "cluster": cluster, "region": region}
        elif provider is CloudProvider.GCP:
            location = config.cloud.zone or region
            project = config.cloud.account
            if not connection_exists(self.gcp_conn_id):
                raise self.hand_check(
                    f"no Google Cloud connection {self.gcp_conn_id!r}",
                    f"gcloud container clusters describe {cluster} --location {location} "
                    f"--project {project} (must say NOT_FOUND)",
                )
            kind, where = "GKE", f"{project}/{location}"
            status = self._cloud_status(gke_status(self.gcp_conn_id, cluster, project, location))
            detail = {
                "provider": "gcp gke",
                "cluster": cluster,
                "project": project,
                "location": location,
            }
        else:
            conn_id = self.kubernetes_conn_id or f"kubernetes_{self.community_id}"
            if not connection_exists(conn_id):
                raise self.hand_check(
                    f"no kubernetes connection/kubeconfig {conn_id!r}",
                    f"kubectl get nodes with the cluster's kubeconfig (must fail to reach the "
                    f"API server of {cluster})",
                )
            kind, where = "Kubernetes", region
            status, detail = self._kubernetes_status(conn_id)
            detail = {"provider": f"{provider.value} kubernetes", "cluster": cluster, **detail}
        if status is not None:
            destroyed = self.action("destroy") is not None
            raise AirflowFailException(
                f"{kind} cluster {cluster} in {where} still exists ({status}); the "
                f"destroy step {'ran' if destroyed else 'was skipped: run its plan by hand'}. "
                "Nothing is recorded as decommissioned; clear this task once the cluster is gone."
            )
        detail["checked_at"] = dt.datetime.now(dt.UTC).isoformat()
        self.record("cluster-gone", "verification", detail)
        log.info("%s reports no cluster %s in %s", kind, cluster, where)
        return detail

    @staticmethod
    def _cloud_status(found: dict[str, Any]) -> str | None:
        """What the cloud said of a cluster that still exists; None when it is gone."""
        return f"status {found['status']}" if found["exists"] else None

    def hand_check(self, missing: str, command: str) -> AirflowSkipException:
        """The skip when the check cannot be made from here: how a person makes and records it."""
        return AirflowSkipException(
            f"skipped: {missing} configured — verify by hand: {command}; then record it with "
            f"`engagements decommission cluster-gone {self.community_id} {self.end} --how "
            "'<what you ran and saw>'` and clear record_decommissioned (or add the connection "
            "and clear this task)"
        )

    def _kubernetes_status(self, conn_id: str) -> tuple[str | None, dict[str, Any]]:
        """(what the API server answered, or None when it is gone; the evidence).

        Fails when it cannot tell: a timeout, a temporary DNS failure or an unreachable
        network can be a firewall or the worker's own network, not a removed cluster.
        """
        from engagements.hooks.cluster_status import ClusterStatusUnknown, api_server_status

        gone: list[str] = []
        server = ""
        for attempt in range(self.unreachable_checks):
            if attempt:
                time.sleep(self.check_interval)
            try:
                found = api_server_status(conn_id)
            except ClusterStatusUnknown as exc:
                raise AirflowFailException(
                    f"cannot tell whether cluster {exc.server} is gone: {exc.reason}. A timeout "
                    "or an unreachable network is not proof of removal; check from a "
                    "machine that could reach it before (kubectl get nodes), then clear "
                    "this task. Nothing is recorded as decommissioned."
                ) from None
            server = found["server"]
            if found["exists"]:
                return f"API server {server} {found['status']}", {}
            gone.append(f"{dt.datetime.now(dt.UTC):%H:%M:%S}: {found['evidence']}")
            log.info("Attempt %d: %s: %s", attempt + 1, server, found["evidence"])
        return None, {"connection": conn_id, "server": server, "unreachable": gone}


class RecordDecommissionedOperator(DecommissionOperator):
    """The store's final record: decommission date, backup location and expiry; Decommissioned."""

    def execute(self, context: Context) -> dict[str, Any]:
        _, config = self.checked(
            frozenset({EngagementStatus.DECOMMISSIONING, EngagementStatus.DECOMMISSIONED})
        )
        approval = self.action("approval")
        if approval is None or not approval.detail.get("approved"):
            raise AirflowSkipException("the teardown was not approved; nothing is recorded")
        gone = self.action("cluster-gone")
        verified = self.action("backup-verified")
        if verified is None:
            raise AirflowFailException("the backup is not verified; not recorded")
        if gone is None:
            raise AirflowFailException(
                "the removal of the cluster is not verified; not recorded. verify_cluster_gone "
                "says how to check it by hand; record the check with `engagements decommission "
                f"cluster-gone {self.community_id} {self.end} --how '...'`, then clear this task."
            )
        done = self.action("decommissioned")
        if done is None:
            hubs = verified.detail["hubs"]
            detail = {
                "decommissioned_on": gone.detail["checked_at"][:10],
                "backup_locations": {hub: f"s3://{s['bucket']}/" for hub, s in hubs.items()},
                "backup_manifests": {hub: s["manifest"] for hub, s in hubs.items()},
                "backup_expires_on": min(s["expires_on"] for s in hubs.values()),
                "cluster": config.cluster_name,
            }
            self.record("decommissioned", "decommission", detail)
        else:
            detail = done.detail
        self.store.update_engagement(self.community_id, status=EngagementStatus.DECOMMISSIONED)
        log.info("%s decommissioned: %s", self.community_id, detail)
        return detail
