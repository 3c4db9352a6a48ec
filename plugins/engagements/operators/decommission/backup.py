"""The backup verified: each hub's archives against the hub's own users, and the manifests."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException

from engagements.hooks import connection_exists
from engagements.operators.decommission.base import AwsMixin, DecommissionOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

    from engagements.config import CommunityConfig

log = logging.getLogger(__name__)


class VerifyBackupOperator(AwsMixin, DecommissionOperator):
    """Check each hub's archives against the hub's own list of users; write the manifests.

    Who must have an archive comes from the hub's users API (connection
    ``jupyterhub_<community>_<hub>``: the hub's API token, scopes ``list:users``,
    ``read:users``, ``read:servers``), not from the archive job that made the archives; the
    job's inventory only adds homes the hub no longer lists. Fails, and so stops the run
    before anything is removed, unless every home directory of every hub has a complete
    archive; a hub whose users cannot be listed is not verified.
    """

    def __init__(
        self,
        *,
        aws_conn_id: str = "aws_default",
        jupyterhub_conn_id: str = "jupyterhub_{community_id}_{hub}",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.aws_conn_id = aws_conn_id
        self.jupyterhub_conn_id = jupyterhub_conn_id

    def hub_users(self, config: CommunityConfig, hub: str) -> tuple[dict[str, bool] | None, str]:
        """The hub's users (name -> ever started a server), or None and why not."""
        from engagements.hooks.jupyterhub import JupyterHubError, JupyterHubHook
        from engagements.infra.layout import Layout

        conn_id = self.jupyterhub_conn_id.format(community_id=self.community_id, hub=hub)
        if not connection_exists(conn_id):
            return None, (
                f"no Airflow connection {conn_id!r} with the hub's API token (scopes "
                "list:users, read:users, read:servers)"
            )
        domain = {h.name: h.domain for h in Layout(config).home_hubs}[hub]
        try:
            users = JupyterHubHook(conn_id, url=f"https://{domain}").users()
        except JupyterHubError as exc:
            return None, str(exc)
        return {u.name: u.server_used for u in users}, ""

    def execute(self, context: Context) -> dict[str, Any]:
        from engagements.decommission.verification import expected_homes, verify_archives

        _, config = self.checked()
        archive_date = self.archive_date()
        if archive_date is None:
            raise AirflowFailException("no archive date recorded: run create_archive_buckets")
        manifests = []
        for hub, bucket in self.archive_plan(config).items():
            hook = self.archive_buckets
            hub_users, why = self.hub_users(config, hub)
            users = hook.read_inventory(bucket, archive_date)
            objects = hook.list_objects(bucket)
            homes = list(expected_homes(hub_users, users))
            records = hook.read_records(bucket, homes, archive_date, set(objects))
            manifest = verify_archives(
                community_id=self.community_id,
                hub=hub,
                bucket=bucket,
                archive_date=archive_date,
                users_on_volume=users,
                hub_users=hub_users,
                hub_users_error=why,
                objects=objects,
                records=records,
            )
            hook.write_manifest(manifest)
            manifests.append(manifest)
        summary = {m.hub: m.summary() for m in manifests}
        self.record("manifest", "manifest", {"hubs": summary})
        problems = [p for m in manifests for p in m.problems]
        if problems:
            raise AirflowFailException(
                "The backup is NOT verified; nothing will be removed:\n"
                + "\n".join(f"  - {p}" for p in problems)
                + "\nRe-run the archive job (clear archive_home_directories: verified homes are "
                "not archived again), then clear this task."
            )
        self.record("backup-verified", "backup", {"hubs": summary})
        for m in manifests:
            log.info(
                "%s: %d home directories, %d archives verified, %s bytes, kept until %s",
                m.hub,
                m.users,
                len(m.verified_users),
                f"{m.total_bytes:,}",
                m.expires_on,
            )
        return summary
