"""What the store says was really deployed for a community, for every message that tells it.

The emails and the rollout deck state only what happened: a part counts as deployed when the
store holds the evidence of it (the step recorded it done, or an engineer confirmed it), never
because its step ran green or because it was planned. A step that skipped leaves no such
record (Quay records ``planned``), so what it would have made is reported as not done yet.

Evidence, by part (store action keys, as the deployment steps record them):

- the cluster: ``cluster-verified`` (checked through the provider), or the milestone
  ``infrastructure_deployed`` recorded by an engineer;
- each hub: ``hubs-healthy`` (it answered ``/hub/health``), or ``infrastructure_deployed``;
- the GitHub organization's teams and the sample repositories: ``github-org``;
- the Quay image repository: ``quay-image`` with state ``created``;
- the rollout meeting's requests: ``rollout-outcome`` and the ``follow_up_issue`` actions.

Plain functions over a store: no Airflow here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from engagements.store.base import EngagementStore, MilestoneRecord

if TYPE_CHECKING:
    from engagements.config import CommunityConfig

INFRA_PR = "infra-pr"
"""Action key of the cluster's change, the first pull request (branch, PR, plan)."""
INFRA_HUBS_PR = "infra-hubs-pr"
"""Action key of the hubs' change, the second pull request (branch, PR, hub domains)."""
CLUSTER_OUTPUTS = "cluster-outputs"
"""Action key of the applied cluster's outputs the hubs' change is written with."""
CLUSTER_VERIFIED = "cluster-verified"
HUBS_HEALTHY = "hubs-healthy"
"""Action key recorded when every hub answered 200: the proof that the hubs are deployed."""
GITHUB_ORG = "github-org"
QUAY_IMAGE = "quay-image"
ROLLOUT_OUTCOME = "rollout-outcome"
INFRASTRUCTURE_DEPLOYED = "infrastructure_deployed"
CONFIGURATION_COMPLETED = "configuration_completed"
STEP_TASKS = {
    INFRA_PR: "open_cluster_pull_request",
    CLUSTER_OUTPUTS: "cluster_outputs",
    INFRA_HUBS_PR: "open_hubs_pull_request",
}
"""The task that records each step's action, to name in a message asking to clear it."""

ADMIN_TEAM = "hub-admins"
DEFAULT_MEMBER_TEAM = "hub-users"
IMAGE_REPOSITORY = "hub-user-image"
BINDER_REPOSITORY = "hub-binder-examples"
DOCS_REPOSITORY = "hub-docs"
REPOSITORY_ROLES = {
    IMAGE_REPOSITORY: "Sample image configuration repository",
    BINDER_REPOSITORY: "Sample binder project repository",
    DOCS_REPOSITORY: "JupyterBook companion site repository",
}
"""Repositories the GitHub org step creates, by name."""


class RepositoryTemplates(Protocol):
    """The templates the community's repositories are created from (deployment settings)."""

    image_repo_template: str
    binder_repo_template: str
    docs_repo_template: str


def member_teams(config: CommunityConfig) -> list[str]:
    """The org's own teams the community hub admits (``org:team`` entries), else hub-users."""
    org = (config.github_org or "").lower()
    teams = [
        entry.split(":", 1)[1]
        for entry in config.hubs.community.allowed_teams
        if ":" in entry and entry.split(":", 1)[0].lower() == org
    ]
    return teams or [DEFAULT_MEMBER_TEAM]


def community_repositories(
    config: CommunityConfig, settings: RepositoryTemplates
) -> list[tuple[str, str, str]]:
    """(name, template, description) of the repositories created in the community's org."""
    return [
        (
            IMAGE_REPOSITORY,
            settings.image_repo_template,
            f"The user image of {config.name}'s hubs, built and pushed to Quay by GitHub Actions",
        ),
        (
            BINDER_REPOSITORY,
            settings.binder_repo_template,
            f"A sample repository to launch on {config.name}'s BinderHub",
        ),
        (
            DOCS_REPOSITORY,
            settings.docs_repo_template,
            f"{config.name}'s JupyterBook companion site for its hubs",
        ),
    ]


def org_plan(config: CommunityConfig, settings: RepositoryTemplates) -> list[str]:
    """What the org steps would do, for logs and for a skip that reports the plan."""
    org = config.github_org
    return [
        f"team {org}/{ADMIN_TEAM} with the representatives as maintainers: "
        + ", ".join(config.admin_users),
        *(
            f"team {org}/{team} with the representatives as members"
            for team in member_teams(config)
        ),
        *(
            f"repository {org}/{name} from template {template}"
            for name, template, _ in community_repositories(config, settings)
        ),
    ]


@dataclass(frozen=True)
class Part:
    """One deployed part: whether the store shows it done, and the evidence or what is missing."""

    name: str
    done: bool
    evidence: str
    url: str = ""


@dataclass(frozen=True)
class Request:
    """A configuration request from the rollout meeting and where it is tracked."""

    title: str
    issue_url: str = ""


@dataclass(frozen=True)
class DeploymentStatus:
    cluster: Part
    hubs: tuple[Part, ...]
    github: tuple[Part, ...]
    """The organization's teams, then each sample repository."""
    quay: Part
    requests: tuple[Request, ...]
    configuration_completed: dt.date | None
    """When an engineer recorded the requested configuration as done, if they did."""

    @property
    def hubs_deployed(self) -> bool:
        return bool(self.hubs) and all(h.done for h in self.hubs)

    @property
    def done(self) -> list[Part]:
        return [p for p in (self.cluster, *self.hubs, *self.github, self.quay) if p.done]

    @property
    def pending(self) -> list[Part]:
        return [p for p in (self.cluster, *self.hubs, *self.github, self.quay) if not p.done]


def _confirmed(record: MilestoneRecord | None) -> str:
    """The engineer's confirmation of the deployment, as evidence, or empty when there is none."""
    if record is None or not record.done:
        return ""
    on = f" on {record.done_at:%Y-%m-%d}" if record.done_at else ""
    return f"confirmed by {record.done_by or 'an engineer'}{on}"


def deployment_status(
    store: EngagementStore, community_id: str, hub_urls: dict[str, str]
) -> DeploymentStatus:
    """Each part of the deployment as the store shows it; ``hub_urls`` names the hubs to show
    (role -> URL, the config's ``hub_urls``)."""
    actions = {a.key: a for a in store.list_actions(community_id)}
    confirmed = _confirmed(store.get_milestone(community_id, INFRASTRUCTURE_DEPLOYED))

    verified = actions.get(CLUSTER_VERIFIED)
    if verified is not None:
        cluster = Part("Kubernetes cluster", True, f"checked through {verified.detail.get('via')}")
    else:
        cluster = Part("Kubernetes cluster", bool(confirmed), confirmed or "not recorded as done")

    healthy = actions.get(HUBS_HEALTHY)
    answered = set(healthy.detail if healthy else {})
    hubs = []
    for role, url in hub_urls.items():
        if _HEALTH_NAMES[role] in answered:
            hubs.append(Part(_HUB_NAMES[role], True, "answered its health check", url))
        else:
            hubs.append(
                Part(_HUB_NAMES[role], bool(confirmed), confirmed or "not recorded as done", url)
            )

    org = actions.get(GITHUB_ORG)
    org_detail = org.detail if org else {}
    github = [
        Part(
            "GitHub organization teams",
            bool(org_detail.get("teams")),
            ", ".join(f"{org_detail['org']}/{t}" for t in org_detail.get("teams") or [])
            or "not recorded as done",
        )
    ]
    created = org_detail.get("repositories") or {}
    for name, role in REPOSITORY_ROLES.items():
        url = created.get(name, "")
        github.append(Part(role, bool(url), "created" if url else "not recorded as done", url))

    quay = actions.get(QUAY_IMAGE)
    quay_detail = quay.detail if quay else {}
    made = quay_detail.get("state") == "created"
    quay_part = Part(
        "Quay image repository",
        made,
        "created" if made else ("planned only" if quay else "not recorded as done"),
        f"https://{quay_detail['image']}" if made and quay_detail.get("image") else "",
    )

    outcome = actions.get(ROLLOUT_OUTCOME)
    issues = {
        " ".join(a.detail.get("title", "").split()): a.detail.get("url") or ""
        for a in actions.values()
        if a.kind == "follow_up_issue"
    }
    requests = tuple(
        Request(r, issues.get(f"[{community_id}] {' '.join(r.split())}", ""))
        for r in (outcome.detail.get("requirements") or [] if outcome else [])
    )
    completed = store.get_milestone(community_id, CONFIGURATION_COMPLETED)
    return DeploymentStatus(
        cluster=cluster,
        hubs=tuple(hubs),
        github=tuple(github),
        quay=quay_part,
        requests=requests,
        configuration_completed=(
            completed.done_at.date() if completed and completed.done and completed.done_at else None
        ),
    )


def planned_status(hub_urls: dict[str, str], *, hubs_by: str = "") -> DeploymentStatus:
    """A deployment with nothing recorded yet; ``hubs_by`` confirms the cluster and hubs (for
    previews of the emails, which say so)."""
    evidence = hubs_by or "not recorded as done"
    return DeploymentStatus(
        cluster=Part("Kubernetes cluster", bool(hubs_by), evidence),
        hubs=tuple(Part(_HUB_NAMES[r], bool(hubs_by), evidence, u) for r, u in hub_urls.items()),
        github=(
            Part("GitHub organization teams", False, "not recorded as done"),
            *(Part(role, False, "not recorded as done") for role in REPOSITORY_ROLES.values()),
        ),
        quay=Part("Quay image repository", False, "not recorded as done"),
        requests=(),
        configuration_completed=None,
    )


_HUB_NAMES = {"community": "Community hub", "workshop": "Workshop hub", "binder": "BinderHub"}
_HEALTH_NAMES = {"community": "prod", "workshop": "workshop", "binder": "binder"}
"""The hub of each role as ``cluster.yaml`` names it (the health check's keys)."""
