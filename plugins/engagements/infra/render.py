"""Render a community's infrastructure-repository changes: pure functions, no Airflow.

2i2c deploys by committing configuration to its infrastructure repository; CI applies it.
Its engineers do it in two changes, and so does this module, laying files out as the
repository does (FACTS.md sections 1-4):

1. :func:`render_cluster_change`: ``config/clusters/<id>/cluster.yaml`` with ``hubs: []``,
   ``support.values.yaml``, the terraform ``.tfvars`` (and eksctl jsonnet on AWS), and the
   cluster's entry in the deploy workflow. Terraform is applied once it is merged.
2. :func:`render_hubs_change`: ``cluster.yaml`` with its hubs, ``common.values.yaml`` and
   each hub's values, written with the applied cluster's outputs (disk ids, NFS addresses),
   and the staging hubs' entries in the deploy workflow. A missing or made-up output is
   refused: no placeholder ever reaches a chart value.

Secrets are never rendered: each encrypted file an engineer must add is a follow-up with
what goes in it. Decisions the repository cannot deploy are refused, all at once and with
their keys, before anything is rendered.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar

from engagements.config import (
    REGIONS,
    Billing,
    CloudProvider,
    CommunityConfig,
    HubAuth,
    Image,
)

from .iac import iac_files
from .layout import GCP_BILLING_ACCOUNT, Layout
from .outputs import EXAMPLE_NOTE, check_outputs, example_outputs
from .review import (
    cluster_checklist,
    cluster_follow_ups,
    hub_follow_ups,
    hubs_checklist,
    plan,
)
from .values import binder_values, common_values, hub_values, support_values
from .workflow import DEPLOY_WORKFLOW, WorkflowError, with_cluster, with_staging_hubs
from .yamlfmt import dump_yaml

COMMUNITY_AUTH = (HubAuth.GITHUB, HubAuth.CILOGON, HubAuth.GOOGLE)
WORKSHOP_AUTH = (HubAuth.SHARED_PASSWORD, HubAuth.GITHUB, HubAuth.CILOGON, HubAuth.GOOGLE)
CONSUMER_GOOGLE_DOMAINS = ("gmail.com", "googlemail.com")
SSH_KEY = re.compile(r"^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp256) [A-Za-z0-9+/=]+( \S+)?$")
ACCOUNT_MEANING = {
    CloudProvider.AWS: "the 12-digit AWS account id (cluster.yaml aws.account)",
    CloudProvider.GCP: "the GCP project id (cluster.yaml gcp.project, terraform project_id)",
    CloudProvider.AZURE: "the Azure subscription id (terraform subscription_id)",
    CloudProvider.JETSTREAM2: "the Jetstream2 allocation the cluster is billed to",
}


class InfraError(ValueError):
    """Decisions (or outputs) the infrastructure repository cannot deploy, each with its key."""

    def __init__(self, problems: list[tuple[str, str]], what: str = "the technical decisions"):
        self.problems = problems
        super().__init__(
            f"{len(problems)} problem(s) with {what}:\n"
            + "\n".join(f"  {key}: {reason}" for key, reason in problems)
        )


CLUSTER, HUBS = "cluster", "hubs"


@dataclass(frozen=True)
class RenderedChange:
    """One change to propose: files, secrets to add, what to review, the plan."""

    step: str
    """:data:`CLUSTER` (the first change) or :data:`HUBS` (the second)."""
    files: dict[str, str]
    """Repository-relative path -> file text, sorted by path."""
    follow_ups: tuple[str, ...]
    """Encrypted files an engineer must add, each with what goes in it and how."""
    reviewer_checklist: tuple[str, ...]
    plan: dict[str, Any]
    """Infrastructure-as-code inputs: provider, region, cluster, GPU, node pools, files."""
    notes: tuple[str, ...] = ()
    """What a reviewer must know first (example outputs, a workflow file to edit by hand)."""


E = TypeVar("E", bound=Enum)


def _member(enum: type[E], value: Any) -> E | None:
    """``value`` as a member of ``enum``; None when it is none (configs built unvalidated)."""
    try:
        return enum(value)
    except ValueError:
        return None


def _auth_problem(config: CommunityConfig, auth: Any, allowed: tuple[HubAuth, ...]) -> str | None:
    """Why ``auth`` cannot log people in on a hub that allows ``allowed``; None if it can."""
    member = _member(HubAuth, auth)
    names = ", ".join(a.value for a in allowed)
    if member is HubAuth.SHARED_PASSWORD and member not in allowed:
        return f"a shared password does not identify people; choose one of {names}"
    if member not in allowed:
        return f"{auth!r} is not an authenticator the chart supports here; choose one of {names}"
    if member is HubAuth.GITHUB and not (config.hubs.community.allowed_teams or config.github_org):
        return (
            "GitHub login needs an organization to allow: set github_org or "
            "hubs.community.allowed_teams"
        )
    if member is HubAuth.GOOGLE:
        public = sorted(
            {r.email.rsplit("@", 1)[1].lower() for r in config.representatives}
            & set(CONSUMER_GOOGLE_DOMAINS)
        )
        if public:
            return (
                "Google login admits the Google accounts of the representatives' email domains, "
                f"and {', '.join(public)} would admit everyone; use cilogon or github"
            )
    return None


def check_decisions(config: CommunityConfig, ssh_public_key: str = "") -> list[tuple[str, str]]:
    """Every reason the repository could not deploy these decisions, as (key, reason)."""
    problems: list[tuple[str, str]] = []
    if config.cloud.provider is CloudProvider.AZURE:
        if not config.cloud.tenant_id:
            problems.append(
                (
                    "cloud.tenant_id",
                    "missing: the Azure terraform needs the subscription's tenant id "
                    "(az account show -s <subscription> --query tenantId)",
                )
            )
        if not SSH_KEY.match(ssh_public_key or ""):
            problems.append(
                (
                    "engagements_ssh_public_key",
                    "missing: the Azure terraform needs the public SSH key engineers reach "
                    "nodes with (setting engagements_ssh_public_key, one line ssh-ed25519/"
                    "ssh-rsa ...)",
                )
            )
    cloud = config.cloud
    provider = _member(CloudProvider, cloud.provider)
    if provider is None:
        choices = ", ".join(p.value for p in CloudProvider)
        problems.append(
            ("cloud.provider", f"unknown provider {cloud.provider!r}; choose one of {choices}")
        )
    elif cloud.region not in REGIONS[provider]:
        problems.append(
            (
                "cloud.region",
                f"{cloud.region!r} is not a {provider.value} region; choose one of "
                + ", ".join(REGIONS[provider]),
            )
        )
    elif cloud.zone and (
        provider is not CloudProvider.GCP or not cloud.zone.startswith(cloud.region + "-")
    ):
        problems.append(
            ("cloud.zone", f"{cloud.zone!r} is not a zone of GCP region {cloud.region!r}")
        )
    if not cloud.account:
        meaning = ACCOUNT_MEANING.get(provider, "the cloud account")
        problems.append(("cloud.account", f"missing: the cluster needs {meaning}"))
    elif provider is CloudProvider.AWS and not re.fullmatch(r"\d{12}", cloud.account):
        problems.append(("cloud.account", f"{cloud.account!r} is not a 12-digit AWS account id"))
    deal = config.contract.hubspot_deal_id
    if not isinstance(deal, int) or deal <= 0:
        problems.append(
            (
                "contract.hubspot_deal_id",
                "missing: cluster.yaml requires metadata.2i2c.hubspot_deal_id, the last number "
                "of the HubSpot deal URL",
            )
        )
    hubs = config.hubs
    community = _auth_problem(config, hubs.community.auth, COMMUNITY_AUTH)
    if community:
        problems.append(("hubs.community.auth", community))
    if hubs.workshop.enabled:
        workshop = _auth_problem(config, hubs.workshop.auth, WORKSHOP_AUTH)
        if workshop:
            problems.append(("hubs.workshop.auth", workshop))
    if hubs.binder.enabled and hubs.binder.authenticated and community:
        problems.append(
            (
                "hubs.binder.authenticated",
                "an authenticated BinderHub logs in like the community hub, which has no "
                "working login method; fix hubs.community.auth or make the BinderHub open",
            )
        )
    if hubs.community.dask_gateway and provider is CloudProvider.JETSTREAM2:
        problems.append(
            (
                "hubs.community.dask_gateway",
                "the chart's Dask Gateway options know only GKE, EKS and AKS node types; "
                "Dask Gateway cannot run on jetstream2",
            )
        )
    offered = config.images.offered
    if not offered:
        problems.append(("images.offered", "offer at least one image: the first is the default"))
    for i, image in enumerate(offered):
        if _member(Image, image) is None:
            problems.append((f"images.offered[{i}]", f"unknown image {image!r}"))
    return problems


def _provider_url(lay: Layout) -> str:
    if lay.provider is CloudProvider.AWS:
        if lay.config.cloud.billing is Billing.PROVIDER:
            return "https://2i2c.awsapps.com/start#/"
        return f"https://{lay.account}.signin.aws.amazon.com/console"
    if lay.provider is CloudProvider.GCP:
        return (
            f"https://console.cloud.google.com/kubernetes/clusters/details/{lay.region}/"
            f"{lay.cluster}-cluster/observability?project={lay.account}"
        )
    if lay.provider is CloudProvider.AZURE:
        return (
            f"https://portal.azure.com/#resource/subscriptions/{lay.account}/resourceGroups/"
            f"{lay.azure_resource_group}/overview"
        )
    return "https://js2.jetstream-cloud.org/project/"


def cluster_config(lay: Layout, *, with_hubs: bool) -> dict[str, Any]:
    """``cluster.yaml``: how the deployer reaches the cluster, and its hubs in deploy order."""
    paid = lay.config.cloud.billing is Billing.PROVIDER
    data: dict[str, Any] = {
        "name": lay.cluster,
        "provider": lay.cluster_provider,
        "provider_url": _provider_url(lay),
        "metadata": {"2i2c": {"hubspot_deal_id": lay.config.contract.hubspot_deal_id}},
    }
    if lay.provider is CloudProvider.AWS:
        data["aws"] = {
            "account": int(lay.account),
            "key": lay.deployer_key_file,
            "clusterType": "eks",
            "clusterName": lay.cluster,
            "region": lay.region,
            "billing": {"paid_by_us": paid},
        }
    elif lay.provider is CloudProvider.GCP:
        billing: dict[str, Any] = {"paid_by_us": paid}
        if paid:
            billing["bigquery"] = {
                "project": lay.account,
                "dataset": "cloud_costs",
                "billing_id": GCP_BILLING_ACCOUNT,
            }
        data["gcp"] = {
            "key": lay.deployer_key_file,
            "project": lay.account,
            "cluster": f"{lay.cluster}-cluster",
            # A regional cluster: the zone key holds the region.
            "zone": lay.region,
            "billing": billing,
        }
    else:
        data["kubeconfig"] = {"file": lay.deployer_key_file}
    data["support"] = {
        "helm_chart_values_files": ["support.values.yaml", "enc-support.secret.values.yaml"]
    }
    data["hubs"] = [
        {
            "name": hub.name,
            "display_name": hub.display_name,
            "domain": hub.domain,
            "helm_chart": "basehub",
            "helm_chart_values_files": list(hub.helm_chart_values_files),
        }
        for hub in lay.hubs
        if with_hubs
    ]
    return data


def _refuse(config: CommunityConfig, ssh_public_key: str) -> Layout:
    problems = check_decisions(config, ssh_public_key)
    if problems:
        raise InfraError(problems)
    return Layout(config)


def _workflow(
    text: str | None, edit: Any, lay: Layout, files: dict[str, str], notes: list[str]
) -> str:
    """Add the deploy workflow entries to ``files`` when the repository's file lacks them.

    Returns ``added``, ``present`` (the base branch has them all: the change leaves the file
    alone, so a merged change re-rendered later is unchanged) or ``absent`` (no such file).
    """
    if text is None:
        notes.append(
            f"{DEPLOY_WORKFLOW} is not in this repository: add the entries the checklist names "
            "by hand where the provider's repository lists its clusters."
        )
        return "absent"
    try:
        edited = edit(text)
    except WorkflowError as exc:
        raise InfraError([(DEPLOY_WORKFLOW, str(exc))], "the deploy workflow") from None
    if edited == text:
        return "present"
    files[DEPLOY_WORKFLOW] = edited
    return "added"


def render_cluster_change(
    config: CommunityConfig, *, ssh_public_key: str = "", deploy_workflow: str | None = None
) -> RenderedChange:
    """The first change: the cluster without hubs, its support chart and IaC inputs.

    ``deploy_workflow`` is the repository's current ``deploy-hubs.yaml`` (None when it has
    none); ``ssh_public_key`` is the node-access key Azure clusters need.
    """
    lay = _refuse(config, ssh_public_key)
    documents = {
        "cluster.yaml": cluster_config(lay, with_hubs=False),
        "support.values.yaml": support_values(lay),
    }
    files = {lay.path(name): dump_yaml(doc) for name, doc in documents.items()}
    files |= iac_files(lay, ssh_public_key)
    notes: list[str] = []
    workflow = _workflow(deploy_workflow, lambda t: with_cluster(t, lay.cluster), lay, files, notes)
    the_plan = plan(lay)
    return RenderedChange(
        step=CLUSTER,
        files=dict(sorted(files.items())),
        follow_ups=cluster_follow_ups(lay),
        reviewer_checklist=cluster_checklist(lay, the_plan, workflow),
        plan=the_plan,
        notes=tuple(notes),
    )


def render_hubs_change(
    config: CommunityConfig,
    outputs: Mapping[str, Any],
    *,
    outputs_source: str,
    ssh_public_key: str = "",
    deploy_workflow: str | None = None,
    example: bool = False,
) -> RenderedChange:
    """The second change: the hubs, written with the applied cluster's ``outputs``.

    Refused (:class:`InfraError`, keys ``outputs.<name>.<hub>``) when an output the hubs need
    is missing or is not a real value. ``outputs_source`` says where they came from; with
    ``example`` the change says first that they are examples to replace.
    """
    lay = _refuse(config, ssh_public_key)
    problems = check_outputs(lay, outputs)
    if problems:
        raise InfraError(problems, "the outputs of the applied cluster")
    values = dict(outputs)
    documents: dict[str, Any] = {
        "cluster.yaml": cluster_config(lay, with_hubs=True),
        "common.values.yaml": common_values(lay),
    }
    for hub in lay.hubs:
        documents[hub.values_files[-1]] = (
            binder_values(lay, hub) if hub.role == "binder" else hub_values(lay, hub, values)
        )
    files = {lay.path(name): dump_yaml(doc) for name, doc in documents.items()}
    notes = [EXAMPLE_NOTE] if example else []
    staging = [hub.name for hub in lay.staging_hubs]
    edit = lambda t: with_staging_hubs(with_cluster(t, lay.cluster), lay.cluster, staging)  # noqa: E731
    workflow = _workflow(deploy_workflow, edit, lay, files, notes)
    the_plan = plan(lay)
    return RenderedChange(
        step=HUBS,
        files=dict(sorted(files.items())),
        follow_ups=hub_follow_ups(lay),
        reviewer_checklist=hubs_checklist(lay, the_plan, values, outputs_source, workflow),
        plan=the_plan,
        notes=tuple(notes),
    )


def combined(cluster: RenderedChange, hubs: RenderedChange) -> RenderedChange:
    """The repository after both changes: what its validation checks for the hubs."""
    return RenderedChange(
        step=HUBS,
        files=dict(sorted((cluster.files | hubs.files).items())),
        follow_ups=cluster.follow_ups + hubs.follow_ups,
        reviewer_checklist=hubs.reviewer_checklist,
        plan=hubs.plan,
        notes=hubs.notes,
    )


def rendered_paths(config: CommunityConfig, *, ssh_public_key: str = "") -> list[str]:
    """Every file the two changes write for ``config`` (what a teardown removes).

    Paths do not depend on the outputs' values, so the example outputs stand in for them.
    """
    lay = _refuse(config, ssh_public_key)
    cluster = render_cluster_change(config, ssh_public_key=ssh_public_key)
    hubs = render_hubs_change(
        config, example_outputs(lay), outputs_source="examples", ssh_public_key=ssh_public_key
    )
    return sorted(cluster.files.keys() | hubs.files.keys())


def example_cluster_outputs(config: CommunityConfig) -> dict[str, Any]:
    """Example outputs for ``config``'s hubs, in the shape :func:`render_hubs_change` takes."""
    return example_outputs(Layout(config))


def write_change(change: RenderedChange, out_dir: Path) -> list[Path]:
    """Write the files under ``out_dir`` (a checkout of the repository, or any folder)."""
    written = []
    for relative, text in change.files.items():
        path = Path(out_dir) / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
