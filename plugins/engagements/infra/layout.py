"""Where a community's infrastructure lives: cluster, hubs, domains, node types, registries.

Every naming rule of the infrastructure repository that the rendered files share is decided
here once, so that ``cluster.yaml``, the values files, the IaC inputs, the follow-up actions
and the plan cannot disagree (FACTS.md sections 1-4 and 7). :class:`Layout` expects a config
that :func:`engagements.infra.render.check_decisions` accepted.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from engagements.config import PROVIDER_DOMAIN, CloudProvider, CommunityConfig, HubAuth

GOOGLE_IDP = "http://google.com/accounts/o8/id"
DEFAULT_SPLASH = "https://2i2c.org/media/logo.png"
"""The logo 2i2c's own hubs show when a community has none (e.g. ``opensci/staging``)."""
GCP_BILLING_ACCOUNT = "0157F7-E3EA8C-25AC3C"
"""2i2c's GCP billing account; projects 2i2c pays for are created on it."""
QUAY_PREFIX = "quay.io/imagebuilding-non-gcp-hubs"
QUAY_ROBOT = "imagebuilding-non-gcp-hubs+image_builder"
GCP_IMAGE_REPO = "imagebuilding"
"""Terraform ``container_repos`` entry; Artifact Registry names it ``imagebuilding-registry``."""

AUTHENTICATOR_CLASS: dict[HubAuth, str] = {
    HubAuth.GITHUB: "github",
    HubAuth.CILOGON: "cilogon",
    # The chart has no Google authenticator of its own: 2i2c offers Google login through
    # CILogon's Google identity provider (docs: configure-auth/cilogon.md).
    HubAuth.GOOGLE: "cilogon",
    HubAuth.SHARED_PASSWORD: "shared-password",
}
STAFF_ID_TYPE: dict[str, str] = {
    "github": "github",
    "cilogon": "google",
    "shared-password": "github",
}
"""How 2i2c staff are made admins: GitHub logins, or Google accounts through CILogon. On a
shared-password hub staff sign in under their GitHub login (with the admin password)."""
IMAGEBUILDING_SECRET = "enc-imagebuilding-common.secret.values.yaml"
"""The registry credentials image builds push and pull with, once for the cluster's hubs."""


@dataclass(frozen=True)
class NodeType:
    """A user node type and the capacity left for user pods (for the resource choices)."""

    instance_type: str
    cpu: float
    memory: int
    measured: bool
    """True when cpu/memory are the repository's measured ``available`` capacity
    (``node-capacity-info.json``); False when estimated from the nominal size."""
    selector: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class GpuType:
    instance_type: str
    display_name: str
    mem_guarantee: str
    selector: tuple[tuple[str, str], ...]


def _instance_selector(instance_type: str) -> tuple[tuple[str, str], ...]:
    return (("node.kubernetes.io/instance-type", instance_type),)


def _capi_selector(node_group: str) -> tuple[tuple[str, str], ...]:
    # Magnum does not propagate labels to Jetstream2 nodes; only the node-group label exists.
    return (("capi.stackhpc.com/node-group", node_group),)


USER_NODES: dict[CloudProvider, NodeType] = {
    CloudProvider.AWS: NodeType(
        "r5.xlarge", 3.725, 31_859_916_406, True, _instance_selector("r5.xlarge")
    ),
    CloudProvider.GCP: NodeType(
        "n2-highmem-4", 3.45, 28_967_406_928, True, _instance_selector("n2-highmem-4")
    ),
    # 4 vCPU / 32 GiB and 8 vCPU / 30 GB nominal; 80% of the memory is assumed available.
    CloudProvider.AZURE: NodeType(
        "Standard_E4s_v5", 3.5, 27_487_790_694, False, _instance_selector("Standard_E4s_v5")
    ),
    CloudProvider.JETSTREAM2: NodeType(
        "m3.medium", 7.5, 24_000_000_000, False, _capi_selector("user-m3-medium")
    ),
}
GPU_NODES: dict[CloudProvider, GpuType] = {
    CloudProvider.AWS: GpuType(
        "g4dn.xlarge", "NVIDIA Tesla T4, ~16 GB, ~4 CPUs", "14G", _instance_selector("g4dn.xlarge")
    ),
    CloudProvider.GCP: GpuType(
        "n1-highmem-8",
        "NVIDIA Tesla T4, ~52 GB, ~8 CPUs",
        "14G",
        _instance_selector("n1-highmem-8"),
    ),
    CloudProvider.AZURE: GpuType(
        "Standard_NC4as_T4_v3",
        "NVIDIA Tesla T4, ~28 GB, ~4 CPUs",
        "24G",
        _instance_selector("Standard_NC4as_T4_v3"),
    ),
    CloudProvider.JETSTREAM2: GpuType(
        "g3.medium",
        "NVIDIA A100 (shared), ~30 GB, ~8 CPUs",
        "24G",
        _capi_selector("user-g3-medium"),
    ),
}


@dataclass(frozen=True)
class Hub:
    """One entry of ``cluster.yaml``'s ``hubs``."""

    name: str
    role: str
    """``community`` (staging and prod), ``workshop`` or ``binder``."""
    display_name: str
    domain: str
    """The JupyterHub domain (what cluster.yaml holds)."""
    auth: HubAuth | None
    """None for an unauthenticated BinderHub."""
    values_files: tuple[str, ...]
    binder_domain: str | None = None
    shared_secrets: tuple[str, ...] = ()
    """Encrypted files the cluster's hubs share (the image registry credentials)."""

    @property
    def secret_file(self) -> str:
        return f"enc-{self.name}.secret.values.yaml"

    @property
    def helm_chart_values_files(self) -> tuple[str, ...]:
        return (*self.values_files, *self.shared_secrets, self.secret_file)

    @property
    def authenticator_class(self) -> str:
        return AUTHENTICATOR_CLASS[self.auth] if self.auth else "null"

    @property
    def home_storage(self) -> bool:
        """BinderHub users get no persistent home; every other hub does."""
        return self.role != "binder"


@dataclass(frozen=True)
class Layout:
    config: CommunityConfig

    @property
    def cluster(self) -> str:
        return self.config.cluster_name

    @property
    def provider(self) -> CloudProvider:
        return self.config.cloud.provider

    @property
    def cluster_provider(self) -> str:
        """cluster.yaml's ``provider``: Azure and Jetstream2 clusters are reached by kubeconfig."""
        return {CloudProvider.AWS: "aws", CloudProvider.GCP: "gcp"}.get(self.provider, "kubeconfig")

    @property
    def account(self) -> str:
        return self.config.cloud.account or ""

    @property
    def region(self) -> str:
        return self.config.cloud.region

    @property
    def gcp_zone(self) -> str:
        """The zone of GCP disks; the deployer's generator defaults to zone ``b``."""
        return self.config.cloud.zone or f"{self.region}-b"

    @property
    def cluster_dir(self) -> str:
        return f"config/clusters/{self.cluster}"

    def path(self, name: str) -> str:
        return f"{self.cluster_dir}/{name}"

    @property
    def tfvars_path(self) -> str:
        folder = "openstack" if self.provider is CloudProvider.JETSTREAM2 else self.provider.value
        return f"terraform/{folder}/projects/{self.cluster}.tfvars"

    @property
    def eksctl_path(self) -> str | None:
        return f"eksctl/{self.cluster}.jsonnet" if self.provider is CloudProvider.AWS else None

    @property
    def iac_paths(self) -> tuple[str, ...]:
        return tuple(p for p in (self.tfvars_path, self.eksctl_path) if p)

    @property
    def deployer_key_file(self) -> str:
        return (
            "enc-deployer-credentials.secret.yaml"
            if self.cluster_provider == "kubeconfig"
            else "enc-deployer-credentials.secret.json"
        )

    @property
    def support_domain(self) -> str:
        """Grafana and Prometheus always live under 2i2c's own domain."""
        return f"{self.cluster}.{PROVIDER_DOMAIN}"

    @property
    def grafana_domain(self) -> str:
        return f"grafana.{self.support_domain}"

    @property
    def prometheus_domain(self) -> str:
        return f"prometheus.{self.support_domain}"

    @property
    def user_node(self) -> NodeType:
        return USER_NODES[self.provider]

    @property
    def gpu(self) -> GpuType | None:
        return GPU_NODES[self.provider] if self.config.cloud.gpu else None

    @property
    def image_building(self) -> bool:
        return self.config.images.dynamic_image_building

    @property
    def dask(self) -> bool:
        return self.config.hubs.community.dask_gateway

    @property
    def azure_storage_account(self) -> str:
        """Azure storage account names are 3-24 lowercase letters and digits, globally unique."""
        compact = "".join(ch for ch in self.cluster if ch.isalnum())
        return f"2i2c{compact}"[:20] + "home"

    @property
    def azure_resource_group(self) -> str:
        return f"2i2c-{self.cluster}-cluster"

    @property
    def registry_secret(self) -> bool:
        """Whether the hubs build images (dynamic image building or a BinderHub)."""
        return self.image_building or self.config.hubs.binder.enabled

    @cached_property
    def hubs(self) -> tuple[Hub, ...]:
        base = self.config.base_domain
        name = self.config.name
        community = self.config.hubs.community.auth
        shared = (IMAGEBUILDING_SECRET,) if self.registry_secret else ()
        hubs = [
            Hub(
                "staging",
                "community",
                f"{name} (staging)",
                f"staging.{base}",
                community,
                ("common.values.yaml", "staging.values.yaml"),
                shared_secrets=shared,
            ),
            Hub(
                "prod",
                "community",
                name,
                base,
                community,
                ("common.values.yaml", "prod.values.yaml"),
                shared_secrets=shared,
            ),
        ]
        workshop = self.config.hubs.workshop
        if workshop.enabled:
            hubs.append(
                Hub(
                    "workshop",
                    "workshop",
                    f"{name} (workshop)",
                    f"workshop.{base}",
                    workshop.auth,
                    ("common.values.yaml", "workshop.values.yaml"),
                    shared_secrets=shared,
                )
            )
        binder = self.config.hubs.binder
        if binder.enabled:
            hubs.append(
                Hub(
                    "binder",
                    "binder",
                    f"{name} (BinderHub)",
                    f"hub.binder.{base}",
                    community if binder.authenticated else None,
                    ("binder.values.yaml",),
                    binder_domain=f"binder.{base}",
                    shared_secrets=shared,
                )
            )
        return tuple(hubs)

    @property
    def staging_hubs(self) -> tuple[Hub, ...]:
        """The hubs CI deploys first, before the production hubs (deploy-hubs.yaml)."""
        return tuple(h for h in self.hubs if "staging" in h.name)

    @property
    def home_hubs(self) -> tuple[Hub, ...]:
        return tuple(h for h in self.hubs if h.home_storage)

    @property
    def github_allowed(self) -> tuple[str, ...]:
        """``allowed_organizations``: the chosen org:team entries, else the whole org."""
        teams = self.config.hubs.community.allowed_teams
        if teams:
            return tuple(teams)
        return (self.config.github_org,) if self.config.github_org else ()

    @property
    def representative_domains(self) -> tuple[str, ...]:
        return tuple(
            sorted({r.email.rsplit("@", 1)[1].lower() for r in self.config.representatives})
        )

    def admin_users(self, hub: Hub) -> list[str]:
        """GitHub logins, except CILogon where usernames are email addresses."""
        if hub.authenticator_class == "cilogon":
            return [r.email.lower() for r in self.config.representatives]
        return list(self.config.admin_users)

    def image_prefix(self, hub: Hub) -> str:
        if self.provider is CloudProvider.GCP:
            return (
                f"{self.region}-docker.pkg.dev/{self.account}/{GCP_IMAGE_REPO}-registry/"
                f"{self.cluster}-{hub.name}-"
            )
        return f"{QUAY_PREFIX}/{self.cluster}-{hub.name}-"

    @property
    def registry(self) -> tuple[str, str]:
        """(server, username) image builds push with; the password is a follow-up secret."""
        if self.provider is CloudProvider.GCP:
            return f"https://{self.region}-docker.pkg.dev", "_json_key"
        return "https://quay.io", QUAY_ROBOT
