"""Provisioning the cluster once its change is merged: approval, tooling pod, verification,
and the applied cluster's outputs the hubs' change is written with.

The plan (provider, region, account, node pools, IaC files) is what
``open_cluster_pull_request`` recorded. Applying it needs the infrastructure tooling image
(setting ``tooling_image``), the change on GitHub (the pod clones the repository) and, on AWS
and GCP, the cloud connection used to verify the result (``aws_default``,
``google_cloud_default``). Without them each step reports the plan and why it cannot run, and
skips: nothing is ever recorded as deployed then. Kubeconfig clusters (Azure, Jetstream2) are
verified through the connection ``kubernetes_<cluster>`` holding the kubeconfig that
terraform outputs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk.exceptions import AirflowException, AirflowSkipException

from engagements.hooks import connection_exists
from engagements.operators.github import DeploymentOperator
from engagements.store.base import upsert_action
from engagements.tasks import (
    COMMUNITY_FROM_PARAMS,
    SMTP_CONN_ID,
    EngagementMixin,
    EngagementOperator,
    recorded_change,
)

if TYPE_CHECKING:
    from pathlib import Path

    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
    from airflow.sdk import Context

    from engagements.hooks.infra_repo import DeploymentSettings
    from engagements.infra.layout import Layout

log = logging.getLogger(__name__)

NOT_VERIFIED = "deployment-not-verified"
"""Action key recorded when record_if_deployed skips: why nothing counts as deployed."""


def verification_connection(plan: dict[str, Any]) -> tuple[str, str]:
    """(kind, connection id) through which the new cluster is checked."""
    provider = plan["provider"]
    if provider == "aws":
        return "eks", "aws_default"
    if provider == "gcp":
        return "gke", "google_cloud_default"
    return "kubeconfig", f"kubernetes_{plan['cluster_name']}"


def blockers(
    plan: dict[str, Any],
    settings: DeploymentSettings,
    proposal_kind: str,
    exists: Callable[[str], bool] = connection_exists,
) -> list[str]:
    """Why the plan cannot be applied from here; empty when it can."""
    reasons = []
    if not settings.tooling_image:
        reasons.append(
            "no tooling image: set engagements_tooling_image to an image with the deployer, "
            "terraform, eksctl and jsonnet"
        )
    if proposal_kind != "pull_request":
        reasons.append(
            "the change is a branch of the local git repository; the tooling pod applies what "
            "is merged in the GitHub infrastructure repository (engagements_infra_repo)"
        )
    kind, conn_id = verification_connection(plan)
    if kind != "kubeconfig" and not exists(conn_id):
        reasons.append(f"no {conn_id!r} connection to reach {plan['provider']}")
    return reasons


def plan_summary(plan: dict[str, Any]) -> str:
    """The plan inputs as Markdown, for the approval form and for skip messages."""
    lines = [
        f"- **Cluster** `{plan['cluster_name']}` on **{plan['provider']}** in "
        f"`{plan['region']}`" + (f" (zone `{plan['zone']}`)" if plan.get("zone") else ""),
        f"- **Account** `{plan.get('account')}`, billed to {plan.get('billing')}",
        f"- **GPU** {'yes: ' + str(plan.get('gpu_instance_type')) if plan.get('gpu') else 'no'}",
        "- **Node pools**: "
        + ", ".join(
            f"{p['name']} ({p['instance_type']}, {p['min']}-{p['max']})"
            for p in plan.get("node_pools", [])
        ),
        "- **IaC files**: " + ", ".join(f"`{f}`" for f in plan["iac_files"]),
        "- **Hubs**: " + ", ".join(h["url"] for h in plan.get("hubs", [])),
    ]
    return "\n".join(lines)


def _skip(plan: dict[str, Any], reasons: list[str]) -> AirflowSkipException:
    return AirflowSkipException(
        "Plan only, nothing applied and nothing recorded as deployed:\n"
        + "\n".join(f"  - {r}" for r in reasons)
        + "\nThe plan:\n"
        + plan_summary(plan)
    )


class ProvisionApprovalOperator(EngagementMixin, ApprovalOperator):
    """Ask an engineer to approve applying the plan (Required actions page).

    Skips, reporting the plan, when the plan cannot be applied from here; rejecting skips
    the provisioning and its verification.
    """

    template_fields = (*ApprovalOperator.template_fields, "community_id")

    def __init__(
        self,
        *,
        community_id: str = COMMUNITY_FROM_PARAMS,
        smtp_conn_id: str = SMTP_CONN_ID,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("subject", "Provision the cluster of {{ params['community_id'] }}?")
        super().__init__(**kwargs)
        self.community_id = community_id
        self.smtp_conn_id = smtp_conn_id

    def execute(self, context: Context) -> Any:
        from engagements.hooks.infra_repo import load_deployment_settings
        from engagements.infra.apply import provisioning_script

        change = recorded_change(self.store, self.community_id)
        settings = load_deployment_settings(use_variables=True)
        reasons = blockers(change["plan"], settings, change["kind"])
        if reasons:
            raise _skip(change["plan"], reasons)
        self.body = (
            f"The infrastructure change ({change['url_or_path']}) is merged. Approve to run "
            f"`{settings.tooling_image}` on Kubernetes, which applies:\n\n"
            + plan_summary(change["plan"])
            + "\n\nThe pod runs:\n\n```sh\n"
            + (settings.tooling_command or provisioning_script(change["plan"]))
            + "\n```"
        )
        return super().execute(context)


class ProvisionClusterOperator(DeploymentOperator):
    """Run the infrastructure tooling image in a pod to apply the merged IaC files.

    The ``KubernetesPodOperator`` is built only when this task runs (nothing is imported or
    looked up at parse time). Its command is the setting ``tooling_command`` if set, else the
    runbook's steps for the plan; the pod gets ``INFRA_REPO``, ``INFRA_REF``, ``CLUSTER_NAME``,
    ``PROVIDER`` and ``REGION`` and its cloud identity from its service account.
    """

    def __init__(
        self,
        *,
        kubernetes_conn_id: str = "kubernetes_default",
        startup_timeout_seconds: int = 600,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.kubernetes_conn_id = kubernetes_conn_id
        self.startup_timeout_seconds = startup_timeout_seconds

    def pod_operator(
        self, change: dict[str, Any], settings: DeploymentSettings
    ) -> KubernetesPodOperator:
        from engagements.infra.apply import provisioning_script
        from engagements.operators.pod_job import pod_job

        plan = change["plan"]
        return pod_job(
            task_id=self.task_id,
            name=f"provision-{plan['cluster_name']}",
            namespace=settings.kubernetes_namespace,
            image=settings.tooling_image,
            script=settings.tooling_command or provisioning_script(plan),
            env={
                "INFRA_REPO": settings.infra_repo,
                "INFRA_REF": settings.infra_base_branch or "main",
                "CLUSTER_NAME": plan["cluster_name"],
                "PROVIDER": plan["provider"],
                "REGION": plan["region"],
            },
            labels={"engagement": self.community_id},
            kubernetes_conn_id=self.kubernetes_conn_id,
            startup_timeout_seconds=self.startup_timeout_seconds,
            xcom=True,
        )

    def execute(self, context: Context) -> dict[str, Any]:
        change = recorded_change(self.store, self.community_id)
        settings = self.deployment_settings()
        reasons = blockers(change["plan"], settings, change["kind"])
        if reasons:
            raise _skip(change["plan"], reasons)
        pod = self.pod_operator(change, settings)
        result = pod.execute(context) or {}
        detail = {
            "state": "applied",
            "image": settings.tooling_image,
            "cluster": change["plan"]["cluster_name"],
            "commit": change["commit"],
            "terraform_outputs": result.get("terraform") or {},
            "nfs_server_ip": result.get("nfs_server_ip") or {},
        }
        upsert_action(self.store, self.community_id, "provisioning", "infrastructure", detail)
        return detail


class VerifyClusterOperator(DeploymentOperator):
    """Check through the provider that the cluster runs: EKS ACTIVE, GKE RUNNING, nodes Ready.

    Skips with the reason when the connection is missing; a cluster that is not running yet
    raises, so the task's retries look again.
    """

    def execute(self, context: Context) -> dict[str, Any]:
        change = recorded_change(self.store, self.community_id)
        plan = change["plan"]
        kind, conn_id = verification_connection(plan)
        if not connection_exists(conn_id):
            raise _skip(plan, [f"no {conn_id!r} connection to check the cluster through"])
        state = cluster_state(kind, conn_id, plan)
        if not state["ready"]:
            raise AirflowException(f"Cluster {plan['cluster_name']} is not ready yet: {state}")
        detail = {"state": "verified", "via": kind, "connection": conn_id, **state}
        upsert_action(self.store, self.community_id, "cluster-verified", "infrastructure", detail)
        log.info("Cluster %s verified through %s: %s", plan["cluster_name"], conn_id, state)
        return detail


def cluster_state(kind: str, conn_id: str, plan: dict[str, Any]) -> dict[str, Any]:
    """Whether the planned cluster runs (``ready``), as the provider answers through ``conn_id``.

    EKS must say ACTIVE and GKE RUNNING; a kubeconfig cluster needs a Ready node. A cluster
    the provider does not know fails, so the task's retries look again.
    """
    from engagements.hooks.cluster_status import cluster_status

    found = cluster_status(
        plan["provider"],
        plan["cluster_name"],
        conn_id=conn_id,
        region=plan["region"],
        zone=plan.get("zone"),
        account=plan.get("account"),
    )
    if not found["exists"]:
        raise AirflowException(
            f"Cluster {plan['cluster_name']} does not exist (yet) on {kind}: {found}"
        )
    if kind == "kubeconfig":
        ready = found["ready_nodes"]
        return {"ready": bool(ready), "nodes": found["nodes"], "ready_nodes": ready}
    running = "ACTIVE" if kind == "eks" else "RUNNING"
    return {"ready": found["status"] == running, "status": found["status"]}


class ConfirmDeploymentOperator(EngagementOperator):
    """Record ``infrastructure_deployed`` when the automated path proved it, else skip.

    Proof is every hub healthy, the org work done and the Quay repository created. A skipped,
    plan-only step is never proof: this task then ends skipped with what was not verified
    (recorded as action ``deployment-not-verified``), and the milestone waits for an engineer,
    who deploys as the runbook says and records it (CLI, store, or marking the wait success).
    """

    def execute(self, context: Context) -> dict[str, Any]:
        from engagements.deployment import GITHUB_ORG, HUBS_HEALTHY, QUAY_IMAGE

        quay = self.store.get_action(self.community_id, QUAY_IMAGE)
        missing = [
            what
            for what, done in (
                (
                    "every hub healthy (hubs_healthy)",
                    self.store.get_action(self.community_id, HUBS_HEALTHY),
                ),
                ("the GitHub org work", self.store.get_action(self.community_id, GITHUB_ORG)),
                ("the Quay image repository", quay and quay.detail.get("state") == "created"),
            )
            if not done
        ]
        if missing:
            reason = (
                "Nothing recorded as deployed: the pipeline did not verify "
                + "; ".join(missing)
                + ". infrastructure_deployed is left to the engineer who deploys by the runbook."
            )
            upsert_action(
                self.store,
                self.community_id,
                NOT_VERIFIED,
                "infrastructure",
                {
                    "state": "not_verified",
                    "missing": missing,
                    "reason": reason,
                    "run_id": context["run_id"],
                },
            )
            raise AirflowSkipException(reason)
        record = self.store.record_milestone(
            self.community_id,
            "infrastructure_deployed",
            by="engagement pipelines (every hub healthy)",
            note=f"recorded by run {context['run_id']}",
        )
        log.info("Recorded infrastructure_deployed for %s", self.community_id)
        return {"recorded": True, "done_by": record.done_by}


class ClusterOutputsOperator(DeploymentOperator):
    """Collect the applied cluster's outputs for the hubs' change; stop when one is missing.

    From the provisioning pod's ``terraform output -json`` and reserved NFS addresses when the
    pipeline applied the cluster; otherwise from the outputs file an engineer keeps
    (``<outputs_dir>/<cluster>.yaml``). With the embedded default (the change is a branch of
    the local repository) that file is created with clearly named example outputs, which the
    hubs' change then says it carries. A missing or placeholder output fails this task, so the
    hubs' pull request is never opened without it.
    """

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowFailException

        from engagements.deployment import CLUSTER_OUTPUTS
        from engagements.infra.layout import Layout
        from engagements.infra.outputs import check_outputs, outputs_from_terraform

        _, config = self.engagement()
        change = recorded_change(self.store, self.community_id)
        lay = Layout(config)
        applied = self.store.get_action(self.community_id, "provisioning")
        if applied is not None and applied.detail.get("terraform_outputs"):
            outputs = outputs_from_terraform(
                lay, applied.detail["terraform_outputs"], applied.detail.get("nfs_server_ip")
            )
            source = f"terraform output -json of the provisioning pod (commit {change['commit']})"
            example = False
            remedy = (
                "check the tfvars' disks and the reserved NFS services, clear "
                "provision_cluster to apply again, then clear this task"
            )
        else:
            path = self.deployment_settings().outputs_path / f"{lay.cluster}.yaml"
            outputs, source, example = self.outputs_file(lay, path, change, applied is not None)
            remedy = f"correct them in {path}, then clear this task"
        problems = check_outputs(lay, outputs)
        if problems:
            raise AirflowFailException(
                f"The applied cluster {lay.cluster} lacks outputs the hubs need; the hubs' pull "
                "request is not opened:\n"
                + "\n".join(f"  {key}: {reason}" for key, reason in problems)
                + f"\nTo go on: {remedy}."
            )
        outputs = {k: v for k, v in outputs.items() if not k.startswith("_")}
        detail = {"outputs": outputs, "source": source, "example": example}
        upsert_action(self.store, self.community_id, CLUSTER_OUTPUTS, "infrastructure", detail)
        return detail

    @staticmethod
    def outputs_file(
        lay: Layout, path: Path, change: dict[str, Any], applied: bool
    ) -> tuple[dict[str, Any], str, bool]:
        """The outputs an engineer keeps in ``path`` (written with examples on the embedded
        default), where they came from, and whether they are still the examples."""
        import yaml
        from airflow.sdk.exceptions import AirflowFailException

        from engagements.infra.outputs import example_outputs

        if not path.exists() and change.get("kind") == "local_branch":
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(yaml.safe_dump(example_outputs(lay), sort_keys=False))
            log.info("Wrote example outputs to %s; edit them to the real ones", path)
        if not path.exists():
            why = (
                "the provisioning pod reported none (a tooling_command must write "
                '{"terraform": <terraform output -json>, "nfs_server_ip": {<hub>: <address>}} '
                "to /airflow/xcom/return.json)"
                if applied
                else "the pipeline did not apply it"
            )
            raise AirflowFailException(
                f"No outputs of cluster {lay.cluster}: {why}, and {path} does not exist. Write "
                "the outputs there ("
                + ", ".join(change["plan"].get("outputs", []))
                + "), then clear cluster_outputs. The hubs' pull request waits for them."
            )
        outputs = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if "_note" in outputs:
            return (
                outputs,
                f"EXAMPLE values from {path} (no cluster was applied from here): write the real "
                "outputs there, delete its _note line and clear cluster_outputs",
                True,
            )
        return outputs, f"{path}, written by an engineer", False
