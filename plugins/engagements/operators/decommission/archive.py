"""The data phase: one archive bucket per hub, and the archive job in each hub's namespace."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from engagements.hooks import connection_exists
from engagements.operators.decommission.base import AwsMixin, DecommissionOperator
from engagements.tasks.decommission import today

if TYPE_CHECKING:
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
    from airflow.sdk import Context

    from engagements.config import CommunityConfig

log = logging.getLogger(__name__)


class CreateArchiveBucketsOperator(AwsMixin, DecommissionOperator):
    """One archive bucket per hub: private, encrypted, to GLACIER_IR after 3 days, gone at 90."""

    def __init__(self, *, aws_conn_id: str = "aws_default", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.aws_conn_id = aws_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        from engagements.decommission.archive import (
            DEFAULT_ENCRYPTION,
            PUBLIC_ACCESS_BLOCK,
            lifecycle_configuration,
        )
        from engagements.hooks.archive import ArchiveError

        _, config = self.checked()
        buckets = self.archive_plan(config)
        region = self._region(config)
        lifecycle = lifecycle_configuration()
        self.require_aws(
            f"create {', '.join(buckets.values())} in {region}: public access blocked, "
            f"default encryption, lifecycle {lifecycle['Rules'][0]}"
        )
        from engagements.decommission.dates import backup_too_old, expiry_date

        archive_date = self.archive_date()
        removed = self.action("destroy") or self.action("cluster-gone")
        stale = archive_date is not None and backup_too_old(expiry_date(archive_date), today())
        if stale and removed is None:  # after the removal, the archive is the only copy
            log.warning(
                "The archive of %s expires on %s, too soon: archiving again as of today",
                archive_date,
                expiry_date(archive_date),
            )
            archive_date = None
        archive_date = archive_date or today()
        for bucket in buckets.values():
            try:
                created = self.archive_hook.ensure_bucket(bucket, region)
                settings = self.archive_buckets.configure_bucket(bucket, lifecycle)
            except ArchiveError as exc:
                raise AirflowFailException(f"{exc}; nothing was archived or removed") from None
            expected = {
                "public_access_block": PUBLIC_ACCESS_BLOCK,
                "encryption": DEFAULT_ENCRYPTION["Rules"][0]["ApplyServerSideEncryptionByDefault"],
                "lifecycle": lifecycle["Rules"][0]["Expiration"],
            }
            found = {
                "public_access_block": settings["public_access_block"],
                "encryption": settings["encryption"]["Rules"][0].get(
                    "ApplyServerSideEncryptionByDefault"
                ),
                "lifecycle": settings["lifecycle"]["Rules"][0].get("Expiration"),
            }
            if found != expected:
                raise AirflowFailException(
                    f"bucket {bucket} reads back {found}, not {expected}; nothing was archived"
                )
            self.store.record_action(
                self.community_id,
                f"archive-bucket:{bucket}",
                "bucket",
                {"region": region, "created_now": created, "settings": settings},
            )
            log.info("Bucket %s ready (%s)", bucket, "created" if created else "already there")
        detail = {"archive_date": archive_date.isoformat(), "region": region, "buckets": buckets}
        if archive_date != self.archive_date():
            self.record("backup", "backup", detail)
        return detail

    def _region(self, config: CommunityConfig) -> str:
        from engagements.config import CloudProvider

        if config.cloud.provider is CloudProvider.AWS:
            return config.cloud.region
        return self.settings.archive_region


class ArchiveHomeDirectoriesOperator(AwsMixin, DecommissionOperator):
    """Run the archive job in each hub's namespace of the community's cluster.

    Users verified by an earlier run are passed to the job as ``SKIP_USERS``, and a hub whose
    archives are all verified gets no job at all. Success here means the job exited 0; only
    ``verify_backup`` says whether the archives are complete. The cluster is the community's
    own: ``kubernetes_conn_id`` defaults to ``kubernetes_<community_id>`` (a kubeconfig). The
    job writes to S3 as the service account ``archive_service_account`` (a cloud identity) or
    with the keys of the Secret ``archive_credentials_secret``; without either it would fail
    after its start, so the step skips with the plan instead.
    """

    template_fields: Sequence[str] = (
        "community_id",
        "contract_end",
        "kubernetes_conn_id",
        "image",
        "command",
    )

    def __init__(
        self,
        *,
        kubernetes_conn_id: str | None = None,
        aws_conn_id: str = "aws_default",
        image: str = "",
        command: str = "",
        home_pvc: str = "home-nfs",
        service_account: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.kubernetes_conn_id = kubernetes_conn_id
        self.aws_conn_id = aws_conn_id
        self.image = image
        self.command = command
        self.home_pvc = home_pvc
        self.service_account = service_account

    def execute(self, context: Context) -> dict[str, list[str]]:
        _, config = self.checked()
        self.kubernetes_conn_id = self.kubernetes_conn_id or f"kubernetes_{self.community_id}"
        archive_date = self.archive_date()
        if archive_date is None:
            raise AirflowFailException("no archive date recorded: run create_archive_buckets")
        todo: dict[str, list[str]] = {}
        for hub, bucket in self.archive_plan(config).items():
            previous = self.archive_buckets.read_manifest(bucket, archive_date) or {}
            verified = [e["user"] for e in previous.get("entries", []) if e["status"] == "ok"]
            if previous.get("ok"):
                log.info("%s: all %d archives verified before; no job", hub, len(verified))
                continue
            todo[hub] = verified
        if not todo:
            return {}
        image = self.image or self.settings.archive_image
        plans = [
            f"in namespace {hub} of cluster {config.cluster_name}, run {image} with the PVC "
            f"{self.home_pvc} mounted read-only, archiving every home directory to "
            f"s3://{self.archive_plan(config)[hub]}/<user>/archive-{archive_date}.tar.gz"
            + (f" except the {len(skip)} already verified" if skip else "")
            for hub, skip in todo.items()
        ]
        if not connection_exists(self.kubernetes_conn_id):
            raise AirflowSkipException(
                f"skipped: no kubernetes connection/kubeconfig {self.kubernetes_conn_id!r} "
                f"configured — plan: {'; '.join(plans)}"
            )
        self.service_account = self.service_account or self.settings.archive_service_account
        if not (self.service_account or self.settings.archive_credentials_secret):
            raise AirflowSkipException(
                "skipped: the archive job would have no AWS identity to write the buckets with "
                "— set engagements_archive_service_account (a service account bound to a role "
                "that may write them) or engagements_archive_credentials_secret (a Secret with "
                f"AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in each hub namespace) — plan: "
                f"{'; '.join(plans)}"
            )
        region = self.action("backup").detail["region"]
        for hub, skip in todo.items():
            bucket = self.archive_plan(config)[hub]
            pod = self.archive_pod(hub, bucket, archive_date, skip, image, region)
            log.info("Starting the archive job for %s (%d verified, skipped)", hub, len(skip))
            pod.execute(context)
            self.record(
                f"archive-job-{hub}",
                "kubernetes_job",
                {"image": image, "bucket": bucket, "skipped_users": skip},
            )
            log.info("Archive job for %s exited 0; verify_backup checks its archives", hub)
        return todo

    def archive_pod(
        self,
        hub: str,
        bucket: str,
        archive_date: dt.date,
        skip: list[str],
        image: str,
        region: str,
    ) -> KubernetesPodOperator:
        """The job's pod: the hub's home volume read-only, scratch space, the archive script."""
        from engagements.decommission.archive import ARCHIVE_SCRIPT
        from engagements.operators.pod_job import PodVolume, pod_job

        return pod_job(
            task_id=f"{self.task_id}_{hub}",
            kubernetes_conn_id=self.kubernetes_conn_id,
            namespace=hub,
            name=f"archive-homes-{hub}",
            image=image,
            script=self.command or self.settings.archive_command or ARCHIVE_SCRIPT,
            env={
                "HOME_ROOT": "/home-volume",
                "WORK_DIR": "/scratch",
                "BUCKET": bucket,
                "ARCHIVE_DATE": archive_date.isoformat(),
                "SKIP_USERS": " ".join(skip),
                "AWS_DEFAULT_REGION": region,
            },
            secrets=[s for s in [self.settings.archive_credentials_secret] if s],
            volumes=[
                PodVolume("homes", "/home-volume", claim=self.home_pvc, read_only=True),
                PodVolume("scratch", "/scratch"),
            ],
            service_account=self.service_account,
            startup_timeout_seconds=600,
        )
