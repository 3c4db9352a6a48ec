"""The cluster phase's destructive steps, run only as approved: the teardown pull request and
the destroy job."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from engagements.hooks import connection_exists
from engagements.operators.decommission.base import DecommissionOperator
from engagements.tasks.decommission import today

if TYPE_CHECKING:
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
    from airflow.sdk import Context

    from engagements.config import CommunityConfig
    from engagements.decommission.teardown import TeardownSteps
    from engagements.store.base import Engagement

log = logging.getLogger(__name__)


class _TeardownOperator(DecommissionOperator):
    """A destructive step: runs only after an approval, re-reading the store first.

    What runs is what was approved: the steps recorded with the approval, checked against
    their digest and against the plan made now from the store and the settings.
    """

    def approved_engagement(self) -> tuple[Engagement, CommunityConfig, TeardownSteps]:
        from engagements.decommission.dates import DecommissionRefused
        from engagements.decommission.teardown import (
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
        from engagements.decommission.dates import MIN_DAYS_KEPT_AFTER_REMOVAL, backup_too_old

        if not hubs or self.action("destroy") or self.action("cluster-gone"):
            return  # nothing left to remove, or no backup needed
        expires = dt.date.fromisoformat(min(s["expires_on"] for s in hubs.values()))
        if backup_too_old(expires, today()):
            raise AirflowFailException(
                f"the verified backup expires on {expires}, {(expires - today()).days} days "
                f"from now: a removal now would keep the community's data less than "
                f"{MIN_DAYS_KEPT_AFTER_REMOVAL} days. Archive again: clear "
                "create_archive_buckets and its downstream tasks (a new archive date is used, "
                "and the new manifest is approved again). Nothing was removed."
            )


class OpenTeardownPullRequestOperator(_TeardownOperator):
    """Propose removing the cluster's config folder and IaC inputs as a reviewed change."""

    def execute(self, context: Context) -> dict[str, Any]:
        from engagements.decommission.teardown import (
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
        from engagements.operators.pod_job import pod_job

        return pod_job(
            task_id=f"{self.task_id}_pod",
            kubernetes_conn_id=self.tooling_kubernetes_conn_id,
            namespace=deployment.kubernetes_namespace,
            name=f"destroy-{cluster}",
            image=image,
            script=script,
            env={"CLUSTER": cluster, "PROVIDER": provider, **env},
        )
