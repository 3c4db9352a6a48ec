"""Operators of the decommission lifecycle: thin wrappers over :mod:`engagements.decommission`.

Every step reads the engagement from the store when it runs and records what it did under a
key of this decommission (``decommission:<step>:<end date>``), so a re-run resumes: notices
are not sent twice, verified archives are not made again, a recorded pull request is found.

Nothing is ever reported as archived, removed or destroyed unless it was done and checked.
Steps that need a cluster or an account run only when its Airflow connection exists; without
one they skip, saying so and printing the plan (the embedded default). The destructive steps
re-read the store first: a renewal recorded meanwhile cancels the run before any removal.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import socket
import time
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk import Param, PokeReturnValue
from airflow.sdk.definitions.param import ParamsDict
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from engagements.hooks import connection_exists
from engagements.operators.engagement import (
    COMMUNITY_FROM_PARAMS,
    SMTP_CONN_ID,
    EngagementMixin,
    _EngagementOperator,
)
from engagements.operators.hitl import AskAgainMixin
from engagements.sensors.github import PullRequestMergedSensor
from engagements.store.base import EngagementStatus, upsert_action

if TYPE_CHECKING:
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
    from airflow.sdk import Context

    from engagements.config import CommunityConfig
    from engagements.decommission import Manifest, TeardownSteps
    from engagements.hooks.archive import HomeArchiveHook
    from engagements.store.base import ActionRecord, Engagement

log = logging.getLogger(__name__)

END_FROM_PARAMS = "{{ params['end_date'] }}"
MANIFEST_ROWS = 200
"""Rows of the per-user table in the approval form; the full manifest is in the bucket."""


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


class DecommissionMixin(EngagementMixin):
    """The decommission's end date, action log, guards and cancellation."""

    contract_end: str
    """The contract end this decommission is for (the run's ``end_date``), templated."""

    @property
    def end(self) -> dt.date:
        try:
            return dt.date.fromisoformat(str(self.contract_end))
        except ValueError:
            raise AirflowFailException(f"end_date {self.contract_end!r} is not a date") from None

    def key(self, step: str) -> str:
        from engagements.decommission import action_key

        return action_key(step, self.end)

    def action(self, step: str) -> ActionRecord | None:
        return self.store.get_action(self.community_id, self.key(step))

    def record(self, step: str, kind: str, detail: dict[str, Any]) -> None:
        """Record the step; a re-run replaces the detail of the same step."""
        upsert_action(self.store, self.community_id, self.key(step), kind, detail)

    def ensure_not_cancelled(self) -> None:
        cancelled = self.action("cancelled")
        if cancelled is not None:
            raise AirflowSkipException(f"cancelled: {cancelled.detail.get('reason')}")

    def checked(
        self, statuses: frozenset[EngagementStatus] | None = None
    ) -> tuple[Engagement, CommunityConfig]:
        """The engagement, re-read now, if this decommission may go on; else cancel or stop."""
        from engagements.decommission import (
            DecommissionCancelled,
            DecommissionRefused,
            check_identity,
            check_still_ending,
        )

        self.ensure_not_cancelled()
        engagement, config = self.engagement()
        try:
            check_identity(self.community_id, engagement, config)
            check_still_ending(engagement, self.end, config.contract.end, statuses=statuses)
        except DecommissionCancelled as exc:
            self.cancel(config, exc)
        except DecommissionRefused as exc:
            raise AirflowFailException(str(exc)) from None
        return engagement, config

    def cancel(self, config: CommunityConfig, exc: Exception) -> None:
        """Record the cancellation; tell the community if it was told of the decommission.

        A teardown change still under review is withdrawn. One already merged cannot be, so
        the task fails, naming the change to revert. After the destroy step nothing is
        cancelled: the task fails saying so, for a person to restore the community.
        """
        from engagements.decommission import NoticeStage, notice_key

        destroyed = self.action("destroy") or self.action("cluster-gone")
        if destroyed is not None:
            raise AirflowFailException(
                f"{exc}, but the cluster was already destroyed (recorded "
                f"{destroyed.created_at:%Y-%m-%d}): nothing is cancelled and the community is "
                "not told so. Restoring it is a new deployment from the backup."
            )
        told = [
            stage.value
            for stage in NoticeStage
            if self.store.get_action(self.community_id, f"email:{notice_key(stage, self.end)}")
        ]
        if told:
            self.send(
                "decommission-cancelled",
                config,
                key=f"decommission-cancelled:{self.end.isoformat()}",
                extra={"end_date": self.end, "new_end": getattr(exc, "new_end", None)},
            )
        detail: dict[str, Any] = {"reason": str(exc), "notices_sent": told}
        self.record("cancelled", "decommission", detail | {"teardown_change": None})
        log.warning("%s", exc)
        change = self._withdraw_teardown(exc)
        if change is not None:
            self.record("cancelled", "decommission", detail | {"teardown_change": change})
        if change is not None and change["state"] != "withdrawn":
            raise AirflowFailException(f"cancelled: {exc}. {change['todo']} Nothing was destroyed.")
        raise AirflowSkipException(f"cancelled: {exc}")

    def _withdraw_teardown(self, exc: Exception) -> dict[str, str] | None:
        """Take back the teardown change if there is one; what became of it, and what to do."""
        from engagements.hooks.github import GitHubError
        from engagements.hooks.infra_repo import (
            ChangeState,
            InfraRepositoryError,
            get_infra_repository,
            load_deployment_settings,
        )

        proposed = self.action("teardown-pr")
        if proposed is None:
            return None
        branch = proposed.detail["branch"]
        try:
            repo = get_infra_repository(load_deployment_settings(use_variables=True))
            where = repo.describe(branch)
            state = repo.withdraw_change(branch, f"the decommission was cancelled: {exc}")
        except (GitHubError, InfraRepositoryError) as err:
            todo = f"The teardown change {branch} could not be withdrawn ({err}): close it by hand."
            return {"branch": branch, "state": "not withdrawn", "todo": todo}
        log.warning("Teardown change %s is now %s", branch, state.value)
        if state is ChangeState.MERGED:
            todo = (
                f"The teardown change was already merged ({where}): revert it to bring the "
                "cluster's configuration back."
            )
            return {"branch": branch, "state": "merged", "where": where, "todo": todo}
        return {"branch": branch, "state": "withdrawn", "where": where}

    def archive_plan(self, config: CommunityConfig) -> dict[str, str]:
        """Hub -> archive bucket."""
        from engagements.decommission import archive_bucket, hubs_with_homes

        return {hub: archive_bucket(config.cluster_name, hub) for hub in hubs_with_homes(config)}

    def archive_date(self) -> dt.date | None:
        backup = self.action("backup")
        return dt.date.fromisoformat(backup.detail["archive_date"]) if backup else None


class _DecommissionOperator(DecommissionMixin, _EngagementOperator):
    template_fields: Sequence[str] = ("community_id", "contract_end")

    def __init__(self, *, contract_end: str = END_FROM_PARAMS, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.contract_end = contract_end


class _AwsMixin:
    aws_conn_id: str

    @cached_property
    def archive_hook(self) -> HomeArchiveHook:
        from engagements.hooks.archive import HomeArchiveHook

        return HomeArchiveHook(aws_conn_id=self.aws_conn_id)

    def require_aws(self, plan: str) -> None:
        if not connection_exists(self.aws_conn_id):
            raise AirflowSkipException(
                f"skipped: no AWS connection {self.aws_conn_id!r} configured — plan: {plan}"
            )


class StartDecommissionOperator(_DecommissionOperator):
    """Check the run's community and end date against the store; mark it Decommissioning.

    A run triggered by hand for an Active engagement is accepted when its end date is the
    contract's; a run for an engagement already decommissioned for this end skips.
    """

    def execute(self, context: Context) -> dict[str, Any]:
        from engagements.decommission import expiry_date, removal_deadline

        if self.action("decommissioned") is not None:
            raise AirflowSkipException(f"{self.community_id} was already decommissioned")
        startable = frozenset(
            {EngagementStatus.ACTIVE, EngagementStatus.RENEWAL, EngagementStatus.DECOMMISSIONING}
        )
        engagement, config = self.checked(startable)
        if engagement.status is not EngagementStatus.DECOMMISSIONING:
            self.store.update_engagement(self.community_id, status=EngagementStatus.DECOMMISSIONING)
            log.warning(
                "%s was %s; now Decommissioning (run triggered by hand)",
                self.community_id,
                engagement.status.value,
            )
        if self.action("started") is None:
            self.record("started", "decommission", {"run_id": context["run_id"]})
        plan = {
            "community_id": self.community_id,
            "end_date": self.end.isoformat(),
            "removal_by": removal_deadline(self.end).isoformat(),
            "buckets": self.archive_plan(config),
            "backup_kept_until": expiry_date(max(self.end, _today())).isoformat(),
        }
        log.info("Decommission plan: %s", plan)
        return plan


class DecommissionNoticeOperator(_DecommissionOperator):
    """One of the three notices to the representatives (BD in cc), each sent once.

    A run that starts after the end date (no renewal decision by then) does not send the
    "two weeks before the end" notice: it would announce an end already past. The notice at
    the end is worded to be true on the day or later.
    """

    def __init__(self, *, stage: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stage = stage

    def execute(self, context: Context) -> str | None:
        from engagements.decommission import NoticeStage, notice_key

        stage = NoticeStage(self.stage)
        if stage is NoticeStage.AFTER_REMOVAL:
            _, config = self.checked(frozenset({EngagementStatus.DECOMMISSIONED}))
            if self.action("cluster-gone") is None:
                raise AirflowFailException(
                    "the removal is not verified; the community is not told it is done"
                )
        else:
            _, config = self.checked()
        if stage is NoticeStage.BEFORE_END and _today() >= self.end:
            log.warning("Not sent: the end date %s has passed; notice_at_end says so", self.end)
            return None
        sent = self.send(
            "decommission-notice",
            config,
            key=notice_key(stage, self.end),
            extra={
                "stage": stage.value,
                "end_date": self.end,
                "removal_by": self._removal_by(),
                "backups": self._backups(config),
            },
        )
        return sent.message_id if sent else None

    def _removal_by(self) -> dt.date:
        """The actual removal day once done; else the runbook's, or a week away when late."""
        from engagements.decommission import LATE_NOTICE_DAYS, removal_deadline

        done = self.action("decommissioned")
        if done is not None:
            return dt.date.fromisoformat(done.detail["decommissioned_on"])
        return max(removal_deadline(self.end), _today() + dt.timedelta(days=LATE_NOTICE_DAYS))

    def _backups(self, config: CommunityConfig) -> list[dict[str, Any]]:
        """Where each hub's archives are (or will be) and until when they are kept."""
        from engagements.decommission import archive_key, expiry_date

        archived_on = self.archive_date()
        date = archived_on or max(self.end, _today())
        return [
            {
                "hub": hub,
                "location": f"s3://{bucket}/{archive_key('<username>', date)}",
                "expires_on": expiry_date(date),
            }
            for hub, bucket in self.archive_plan(config).items()
        ]


class CreateArchiveBucketsOperator(_AwsMixin, _DecommissionOperator):
    """One archive bucket per hub: private, encrypted, to GLACIER_IR after 3 days, gone at 90."""

    def __init__(self, *, aws_conn_id: str = "aws_default", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.aws_conn_id = aws_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        from engagements.decommission import (
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
        from engagements.decommission import backup_too_old, expiry_date

        archive_date = self.archive_date()
        removed = self.action("destroy") or self.action("cluster-gone")
        stale = archive_date is not None and backup_too_old(expiry_date(archive_date), _today())
        if stale and removed is None:  # after the removal, the archive is the only copy
            log.warning(
                "The archive of %s expires on %s, too soon: archiving again as of today",
                archive_date,
                expiry_date(archive_date),
            )
            archive_date = None
        archive_date = archive_date or _today()
        for bucket in buckets.values():
            try:
                created = self.archive_hook.ensure_bucket(bucket, region)
                settings = self.archive_hook.configure_bucket(bucket, lifecycle)
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


class ArchiveHomeDirectoriesOperator(_AwsMixin, _DecommissionOperator):
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
            previous = self.archive_hook.read_manifest(bucket, archive_date) or {}
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
        from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
        from kubernetes.client import models as k8s

        from engagements.decommission import ARCHIVE_SCRIPT

        return KubernetesPodOperator(
            task_id=f"{self.task_id}_{hub}",
            kubernetes_conn_id=self.kubernetes_conn_id,
            namespace=hub,
            name=f"archive-homes-{hub}",
            image=image,
            cmds=["/bin/sh", "-c"],
            arguments=[self.command or self.settings.archive_command or ARCHIVE_SCRIPT],
            env_vars={
                "HOME_ROOT": "/home-volume",
                "WORK_DIR": "/scratch",
                "BUCKET": bucket,
                "ARCHIVE_DATE": archive_date.isoformat(),
                "SKIP_USERS": " ".join(skip),
                "AWS_DEFAULT_REGION": region,
            },
            env_from=[
                k8s.V1EnvFromSource(secret_ref=k8s.V1SecretEnvSource(name=secret))
                for secret in [self.settings.archive_credentials_secret]
                if secret
            ],
            volumes=[
                k8s.V1Volume(
                    name="homes",
                    persistent_volume_claim=k8s.V1PersistentVolumeClaimVolumeSource(
                        claim_name=self.home_pvc, read_only=True
                    ),
                ),
                k8s.V1Volume(name="scratch", empty_dir=k8s.V1EmptyDirVolumeSource()),
            ],
            volume_mounts=[
                k8s.V1VolumeMount(name="homes", mount_path="/home-volume", read_only=True),
                k8s.V1VolumeMount(name="scratch", mount_path="/scratch"),
            ],
            service_account_name=self.service_account or None,
            get_logs=True,
            do_xcom_push=False,
            on_finish_action="delete_succeeded_pod",
            startup_timeout_seconds=600,
        )


class VerifyBackupOperator(_AwsMixin, _DecommissionOperator):
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
        from engagements.decommission import expected_homes, verify_archives

        _, config = self.checked()
        archive_date = self.archive_date()
        if archive_date is None:
            raise AirflowFailException("no archive date recorded: run create_archive_buckets")
        manifests = []
        for hub, bucket in self.archive_plan(config).items():
            hook = self.archive_hook
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


def _manifests(hook: HomeArchiveHook, detail: dict[str, Any]) -> list[Manifest]:
    """The verified manifests, read back from their buckets for the approval form."""
    from engagements.decommission import manifest_from_dict

    manifests = []
    for summary in detail["hubs"].values():
        data = hook.read_manifest(summary["bucket"], dt.date.fromisoformat(summary["archive_date"]))
        if data is None:
            raise AirflowFailException(f"the manifest {summary['manifest']} cannot be read")
        manifests.append(manifest_from_dict(data))
    return manifests


def confirm_param(community_id: str | None) -> Param:
    """The approval's confirmation field: the community id, or empty (to reject)."""
    rule = {"pattern": f"^(?:{re.escape(community_id)})?$"} if community_id else {}
    return Param(
        "",
        type="string",
        description="Type the community id to confirm which community is torn down.",
        **rule,
    )


class TeardownApprovalOperator(AskAgainMixin, _AwsMixin, DecommissionMixin, ApprovalOperator):
    """An engineer approves the teardown, seeing the verified backup manifest and the plan.

    The form asks for the community id to be typed: it must equal the run's. Reject skips the
    teardown; nothing is removed.
    """

    template_fields = (*ApprovalOperator.template_fields, "community_id", "contract_end")

    def __init__(
        self,
        *,
        community_id: str = COMMUNITY_FROM_PARAMS,
        contract_end: str = END_FROM_PARAMS,
        aws_conn_id: str = "aws_default",
        smtp_conn_id: str = SMTP_CONN_ID,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("subject", "Tear down {{ params['community_id'] }}?")
        kwargs["params"] = {"confirm_community_id": confirm_param(None)}
        super().__init__(**kwargs)
        self.community_id = community_id
        self.contract_end = contract_end
        self.aws_conn_id = aws_conn_id
        self.smtp_conn_id = smtp_conn_id

    def execute(self, context: Context):
        _, config = self.checked()
        self.prepare_form(config)
        self.params = ParamsDict({"confirm_community_id": confirm_param(config.community_id)})
        return super().execute(context)

    def prepare_form(self, config: CommunityConfig) -> None:
        """The form's body: the verified manifests read back from S3, and the teardown steps.

        The steps shown are recorded now (``approval-form``): the answer approves these,
        whatever the settings say by the time someone answers.
        """
        from engagements.decommission import manifest_markdown, teardown_steps

        verified = self.action("backup-verified")
        if verified is None:
            raise AirflowFailException("the backup is not verified; there is nothing to approve")
        manifests = _manifests(self.archive_hook, verified.detail)
        steps = teardown_steps(config, self.settings.teardown_command)
        self.record("approval-form", "approval", {"steps": steps.to_dict()})
        folder, *iac = steps.removes
        self.body = (
            f"Approve removing **{config.name}** (`{config.community_id}`): its cluster "
            f"`{steps.cluster}` ({steps.provider}) and hubs. The contract ended on "
            f"{self.end}.\n\n"
            "### Backup (verified)\n\n"
            + manifest_markdown(manifests, max_rows=MANIFEST_ROWS)
            + "\n### What happens on Approve\n\n"
            f"1. A pull request removes `{folder}` and "
            + ", ".join(f"`{p}`" for p in iac)
            + ".\n2. Once it is merged, the destroy step runs exactly these commands:\n\n```\n"
            + "\n".join(steps.commands)
            + "\n```\n3. The providers are asked whether the cluster is gone.\n\n"
            f"Digest of these steps: `{steps.digest}`. If the plan changes after you approve "
            "(the engagement's config or the teardown_command setting), nothing runs until it "
            "is approved again.\n\n"
            f"Type `{config.community_id}` in **confirm_community_id** to approve."
        )

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        from engagements.decommission import (
            DecommissionRefused,
            check_unchanged,
            recorded_steps,
            teardown_steps,
        )

        if "error" in event:
            return super().execute_complete(context, event)  # raises the HITL error
        self.checked()  # a renewal recorded while the form waited cancels here
        self.checked_answer(context, event)  # options and fields, before anything is recorded
        chosen = event["chosen_options"]
        approved = self.APPROVE in chosen
        answer = (event.get("params_input") or {}).get("confirm_community_id") or ""
        if approved and answer.strip() != self.community_id:
            self.ask_again(
                context,
                f"confirm_community_id is {answer!r}, not {self.community_id!r}: the approval "
                "is refused and nothing was removed",
            )
        form = self.action("approval-form")
        detail: dict[str, Any] = {"approved": approved}
        if approved:  # what is approved is what the form showed, and only if still planned
            if form is None:
                self.ask_again(
                    context,
                    "the steps this form showed are not recorded (approval-form), so there is "
                    "nothing to approve; the form shows them again. Nothing was approved or "
                    "removed",
                )
            _, config = self.engagement()
            try:
                steps = recorded_steps(form.detail)
                check_unchanged(steps, teardown_steps(config, self.settings.teardown_command))
            except DecommissionRefused as exc:
                self.ask_again(context, f"not approved: {exc} The form shows the plan as it is now")
            detail["steps"] = steps.to_dict()
        elif form is not None:
            detail["steps"] = form.detail.get("steps")
        who = (event.get("responded_by_user") or {}).get("name") or "unknown"
        # Recorded first: a rejection skips the teardown, which ends this task at once.
        self.record(
            "approval",
            "approval",
            detail | {"by": who, "at": str(event.get("responded_at"))},
        )
        verdict = "APPROVED" if approved else "rejected"
        log.warning("Teardown of %s %s by %s", self.community_id, verdict, who)
        return super().execute_complete(context, event)


class _TeardownOperator(_DecommissionOperator):
    """A destructive step: runs only after an approval, re-reading the store first.

    What runs is what was approved: the steps recorded with the approval, checked against
    their digest and against the plan made now from the store and the settings.
    """

    def approved_engagement(self) -> tuple[Engagement, CommunityConfig, TeardownSteps]:
        from engagements.decommission import (
            DecommissionRefused,
            check_unchanged,
            recorded_steps,
            teardown_steps,
        )

        engagement, config = self.checked()
        approval = self.action("approval")
        if approval is None or not approval.detail.get("approved"):
            raise AirflowFailException("the teardown is not approved; nothing was removed")
        verified = self.action("backup-verified")
        if verified is None:
            raise AirflowFailException("the backup is not verified; nothing was removed")
        try:
            steps = recorded_steps(approval.detail)
            check_unchanged(steps, teardown_steps(config, self.settings.teardown_command))
        except DecommissionRefused as exc:
            raise AirflowFailException(str(exc)) from None
        self.ensure_backup_lasts(verified.detail["hubs"])
        return engagement, config, steps

    def ensure_backup_lasts(self, hubs: dict[str, dict[str, Any]]) -> None:
        from engagements.decommission import MIN_DAYS_KEPT_AFTER_REMOVAL, backup_too_old

        if not hubs or self.action("destroy") or self.action("cluster-gone"):
            return  # nothing left to remove, or no backup needed
        expires = dt.date.fromisoformat(min(s["expires_on"] for s in hubs.values()))
        if backup_too_old(expires, _today()):
            raise AirflowFailException(
                f"the verified backup expires on {expires}, {(expires - _today()).days} days "
                f"from now: a removal now would keep the community's data less than "
                f"{MIN_DAYS_KEPT_AFTER_REMOVAL} days. Archive again: clear "
                "create_archive_buckets and its downstream tasks (a new archive date is used, "
                "and the new manifest is approved again). Nothing was removed."
            )


class OpenTeardownPullRequestOperator(_TeardownOperator):
    """Propose removing the cluster's config folder and IaC inputs as a reviewed change."""

    def execute(self, context: Context) -> dict[str, Any]:
        from engagements.decommission import (
            teardown_branch,
            teardown_files,
            teardown_plan,
            teardown_pr_body,
        )
        from engagements.hooks.infra_repo import (
            EmptyChange,
            get_infra_repository,
            load_deployment_settings,
        )

        _, config, steps = self.approved_engagement()
        plan = teardown_plan(config)
        files = teardown_files(plan, self._rendered_paths(config))
        backups = list(self.action("backup-verified").detail["hubs"].values())
        repo = get_infra_repository(load_deployment_settings(use_variables=True))
        # The base branch as the change leaves it is the last tree holding the cluster's
        # inputs: the destroy step runs from there once the change is merged. Read once,
        # before the first proposal; a re-run (even after the merge) keeps it.
        previous = self.action("teardown-pr")
        base = (previous.detail.get("base_commit") if previous else None) or repo.base_head()
        branch = teardown_branch(plan.cluster, self.end)
        try:
            proposal = repo.propose_change(
                branch,
                files,
                f"Decommission {config.community_id}: remove cluster {plan.cluster}",
                teardown_pr_body(config, plan, backups, self.end, steps),
                previous=previous.detail.get("commit") if previous else None,
            )
        except EmptyChange as exc:
            raise AirflowFailException(
                f"The teardown change removes nothing: {exc}. The base branch holds none of "
                f"the cluster's files ({plan.config_folder}/ was removed some other way?); a "
                "teardown must be a reviewed removal. Nothing was proposed or destroyed: check "
                "the infrastructure repository, then clear this task."
            ) from None
        removed = sorted(
            path
            for path, how in repo.changed_paths(proposal.commit, base).items()
            if how == "removed" and path.startswith(plan.config_folder + "/")
        )
        if not removed:
            raise AirflowFailException(
                f"The teardown change ({repo.describe(branch)}) does not remove the cluster's "
                f"configuration ({plan.config_folder}/): a change without the removal is not "
                "a teardown. Nothing will be destroyed; check the branch, then clear this task."
            )
        detail = proposal.to_dict() | {
            "base_commit": base,
            "where": repo.describe(proposal.branch),
            "deleted_paths": sorted(files),
            "removed_paths": removed,
            "auth_clients": list(plan.auth_clients),
            "approved_digest": steps.digest,
        }
        self.record("teardown-pr", "pull_request", detail)
        log.info("Teardown change proposed: %s", detail["where"])
        return detail

    def _rendered_paths(self, config: CommunityConfig) -> list[str]:
        """What the deployment renders for this community, when it still can be rendered."""
        from engagements.hooks.infra_repo import load_deployment_settings
        from engagements.infra.render import InfraError, rendered_paths

        key = load_deployment_settings(use_variables=True).ssh_public_key
        try:
            return rendered_paths(config, ssh_public_key=key)
        except InfraError as exc:
            log.warning("Cannot render the deployed files (%s); deleting the known paths", exc)
            return []


class DestroyClusterOperator(_TeardownOperator):
    """Run the provider's destroy commands with the infrastructure tooling image.

    Only once the teardown change is merged (checked here, not trusted to the sensor before
    it, which a person may mark success). The merged change has deleted the cluster's IaC
    inputs, so the pod checks out the commit the change started from (``INFRA_REF``), the
    last one that holds them, from ``INFRA_URL``. Runs on the cluster of
    ``tooling_kubernetes_conn_id`` (2i2c's own, never the community's cluster that is being
    destroyed). Without that connection or a tooling image: skipped, with the commands to run
    by hand. The commands are the approved ones, never read from a setting at this point.
    """

    template_fields: Sequence[str] = ("community_id", "contract_end", "image")

    def __init__(
        self,
        *,
        tooling_kubernetes_conn_id: str = "kubernetes_default",
        image: str = "",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.tooling_kubernetes_conn_id = tooling_kubernetes_conn_id
        self.image = image

    def execute(self, context: Context) -> dict[str, Any]:
        from engagements.hooks.infra_repo import (
            ChangeState,
            get_infra_repository,
            load_deployment_settings,
        )
        from engagements.infra.apply import CLONE_DIR

        *_, steps = self.approved_engagement()
        proposed = self.action("teardown-pr")
        if proposed is None:
            raise AirflowFailException("the teardown change is not proposed; nothing was removed")
        if self.action("cluster-gone") is not None:
            raise AirflowSkipException("the cluster was already verified gone")
        base = proposed.detail.get("base_commit")
        if not base:
            raise AirflowFailException(
                "the commit the teardown change started from is not recorded, so the destroy "
                "step has no tree holding the cluster's inputs: run its plan by hand from the "
                "commit before the change was merged. Nothing was destroyed."
            )
        deployment = load_deployment_settings(use_variables=True)
        repo = get_infra_repository(deployment)
        state = repo.change_state(proposed.detail["branch"], since=base)
        if state is not ChangeState.MERGED:
            raise AirflowFailException(
                f"the teardown change ({repo.describe(proposed.detail['branch'])}) is "
                f"{state.value}, not merged: nothing is destroyed before it is reviewed and merged"
            )
        image = self.image or deployment.tooling_image
        script = " && ".join(
            [
                "set -eu",
                f'git clone --quiet "$INFRA_URL" {CLONE_DIR}',
                f"cd {CLONE_DIR}",
                'git checkout --quiet "$INFRA_REF"',
                *steps.commands,
            ]
        )
        local = proposed.detail.get("kind") != "pull_request"
        url = (
            (deployment.infra_clone_url or Path(proposed.detail["url_or_path"]).as_uri())
            if local
            else f"https://github.com/{deployment.infra_repo}"
        )
        missing = ""
        if not image:
            missing = "no tooling image (engagements_tooling_image) configured"
        elif not connection_exists(self.tooling_kubernetes_conn_id):
            missing = (
                f"no kubernetes connection/kubeconfig {self.tooling_kubernetes_conn_id!r} "
                "configured"
            )
        elif local and not deployment.infra_clone_url:
            missing = (
                f"the infrastructure repository is local ({proposed.detail['url_or_path']}), "
                "which the tooling pod cannot clone (engagements_infra_clone_url is not set)"
            )
        if missing:
            raise AirflowSkipException(
                f"skipped: {missing} — plan: with INFRA_URL={url} and INFRA_REF={base} (the "
                f"last commit holding the cluster's inputs), run: {script}"
            )
        env = {"INFRA_URL": url, "INFRA_REF": base}
        pod = self.destroy_pod(steps.cluster, steps.provider, image, script, deployment, env)
        pod.execute(context)
        detail = {
            "image": image,
            "script": script,
            "cluster": steps.cluster,
            "approved_digest": steps.digest,
            **env,
        }
        self.record("destroy", "kubernetes_job", detail)
        log.info("Destroy job for %s exited 0; verify_cluster_gone checks it", steps.cluster)
        return detail

    def destroy_pod(
        self,
        cluster: str,
        provider: str,
        image: str,
        script: str,
        deployment: Any,
        env: dict[str, str],
    ) -> KubernetesPodOperator:
        from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

        return KubernetesPodOperator(
            task_id=f"{self.task_id}_pod",
            kubernetes_conn_id=self.tooling_kubernetes_conn_id,
            namespace=deployment.kubernetes_namespace,
            name=f"destroy-{cluster}",
            image=image,
            cmds=["/bin/sh", "-c"],
            arguments=[script],
            env_vars={"CLUSTER": cluster, "PROVIDER": provider, **env},
            get_logs=True,
            do_xcom_push=False,
            on_finish_action="delete_succeeded_pod",
        )


class VerifyClusterGoneOperator(_DecommissionOperator):
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
            status = self._eks_status(cluster, region)
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
            status = self._gke_status(cluster, project, location)
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

    def _eks_status(self, cluster: str, region: str) -> str | None:
        from airflow.providers.amazon.aws.hooks.eks import EksHook

        client = EksHook(aws_conn_id=self.aws_conn_id, region_name=region).conn
        try:
            return f"status {client.describe_cluster(name=cluster)['cluster']['status']}"
        except client.exceptions.ResourceNotFoundException:
            return None

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
        from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import MaxRetryError

        client = KubernetesHook(conn_id=conn_id).core_v1_client
        server = client.api_client.configuration.host
        gone: list[str] = []
        for attempt in range(self.unreachable_checks):
            if attempt:
                time.sleep(self.check_interval)
            try:
                nodes = client.list_node(_request_timeout=(10, 30)).items
            except ApiException as exc:
                return f"API server {server} answers: {exc.status} {exc.reason}", {}
            except MaxRetryError as exc:
                evidence = _removed_api_server(exc.reason)
                if evidence is None:
                    raise AirflowFailException(
                        f"cannot tell whether cluster {server} is gone: {exc.reason}. A timeout "
                        "or an unreachable network is not proof of removal; check from a "
                        "machine that could reach it before (kubectl get nodes), then clear "
                        "this task. Nothing is recorded as decommissioned."
                    ) from None
                gone.append(f"{dt.datetime.now(dt.UTC):%H:%M:%S}: {evidence}")
                log.info("Attempt %d: %s: %s", attempt + 1, server, evidence)
            else:
                return f"API server {server} lists {len(nodes)} node(s)", {}
        return None, {"connection": conn_id, "server": server, "unreachable": gone}

    def _gke_status(self, cluster: str, project: str | None, location: str) -> str | None:
        from airflow.providers.google.cloud.hooks.kubernetes_engine import GKEHook
        from google.api_core.exceptions import NotFound

        hook = GKEHook(gcp_conn_id=self.gcp_conn_id, location=location)
        try:
            found = hook.get_cluster(name=cluster, project_id=project)
        except NotFound:
            return None
        status = getattr(found, "status", None)
        return f"status {getattr(status, 'name', None) or status}"


def _removed_api_server(reason: Exception | None) -> str | None:
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


class RecordDecommissionedOperator(_DecommissionOperator):
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


class TeardownMergedSensor(DecommissionMixin, PullRequestMergedSensor):
    """Wait, in reschedule mode, until the teardown change is reviewed and merged.

    Waits on the branch recorded by ``open_teardown_pr`` (one per decommission). Re-reads the
    store on every poke: a renewal recorded while the change waits for review cancels the run
    and withdraws the change, before anyone can merge it.
    """

    template_fields: Sequence[str] = (*PullRequestMergedSensor.template_fields, "contract_end")

    def __init__(self, *, contract_end: str = END_FROM_PARAMS, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.contract_end = contract_end

    def poke(self, context: Context) -> PokeReturnValue | bool:
        self.checked()
        proposed = self.action("teardown-pr")
        if proposed is None:
            raise AirflowFailException("no teardown change is recorded: run open_teardown_pr")
        self.branch = proposed.detail["branch"]
        self.since = proposed.detail.get("base_commit")
        return super().poke(context)
