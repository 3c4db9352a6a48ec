"""GitHub steps of onboarding: the infrastructure change, the community's org, follow-up issues.

Each operator renders or reads what it needs when it runs, acts through the GitHub hook or the
infrastructure repository, and records the result in the store's action log, so that a re-run
finds what was done instead of doing it again.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import yaml
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from engagements.deployment import (
    ADMIN_TEAM,
    CLUSTER_OUTPUTS,
    GITHUB_ORG,
    INFRA_HUBS_PR,
    INFRA_PR,
    community_repositories,
    member_teams,
    org_plan,
)
from engagements.hooks import connection_exists
from engagements.store.base import upsert_action
from engagements.tasks import EngagementOperator, recorded_change

if TYPE_CHECKING:
    from airflow.sdk import Context

    from engagements.config import CommunityConfig
    from engagements.hooks.infra_repo import DeploymentSettings
    from engagements.infra.render import RenderedChange

log = logging.getLogger(__name__)


def change_branch(community_id: str, step: str = "cluster") -> str:
    return f"onboard-{community_id}" if step == "cluster" else f"onboard-{community_id}-hubs"


def hub_domains(files: dict[str, str]) -> dict[str, str]:
    """Hub name -> JupyterHub domain, read from the rendered cluster.yaml files."""
    domains = {}
    for path, text in sorted(files.items()):
        if path.startswith("config/clusters/") and path.endswith("/cluster.yaml"):
            for hub in yaml.safe_load(text).get("hubs") or []:
                domains[hub["name"]] = hub["domain"]
    return domains


def pull_request_body(config: CommunityConfig, change: RenderedChange) -> str:
    """What a reviewer must check and the secrets to add; the files speak for themselves."""
    plan = change.plan
    provider = plan.get("provider", config.cloud.provider.value)
    region = plan.get("region", config.cloud.region)
    if change.step == "cluster":
        what = (
            f"Step 1 of 2: the {provider} cluster in {region} (`cluster.yaml` with `hubs: []`, "
            "support chart, terraform/eksctl inputs). Once merged and applied, a second pull "
            "request adds the hubs with terraform's outputs."
        )
    else:
        what = (
            "Step 2 of 2: the hubs, on the cluster the first pull request created, written "
            "with its applied outputs."
        )
    lines = [
        f"Deploys **{config.name}** (`{config.community_id}`) for its Advanced Tier engagement. "
        f"{what} Opened by the engagement pipelines from the community config and its "
        "technical decisions.",
        "",
        *(f"> **Note**: {note}" for note in change.notes),
        *([""] if change.notes else []),
        "### Reviewer checklist",
        *(f"- [ ] {item}" for item in change.reviewer_checklist),
        "",
        "### Secrets to add before merging",
        "Encrypt each with sops (any path containing `secret` must be encrypted); never commit "
        "a value in clear text.",
        *(f"- [ ] {item}" for item in change.follow_ups),
        "",
        *(
            [
                "### Hubs",
                *(
                    f"- {h['name']}: {h['url']}"
                    + (f" (its JupyterHub https://{h['domain']})" if h["role"] == "binder" else "")
                    for h in plan.get("hubs", [])
                ),
                "",
            ]
            if change.step == "hubs"
            else []
        ),
        f"<details><summary>{len(change.files)} files</summary>",
        "",
        *(f"- `{path}`" for path in change.files),
        "",
        "</details>",
    ]
    return "\n".join(lines)


class DeploymentOperator(EngagementOperator):
    """An operator of the deployment: reads the deployment settings when it runs."""

    def deployment_settings(self) -> DeploymentSettings:
        from engagements.hooks.infra_repo import load_deployment_settings

        return load_deployment_settings(use_variables=True)


class GitHubOperator(DeploymentOperator):
    """A deployment operator that acts on GitHub through the ``github_conn_id`` connection."""

    def __init__(self, *, github_conn_id: str = "github_default", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.github_conn_id = github_conn_id


class ProposeOperator(GitHubOperator):
    """Propose one of the two changes and record where it is (idempotent: same branch)."""

    step = "cluster"
    action_key = INFRA_PR

    def render(self, config: CommunityConfig, workflow: str | None, ssh_key: str) -> Any:
        raise NotImplementedError

    def execute(self, context: Context) -> dict[str, Any]:
        from engagements.hooks.infra_repo import EmptyChange, get_infra_repository
        from engagements.infra.render import InfraError
        from engagements.infra.workflow import DEPLOY_WORKFLOW

        _, config = self.engagement()
        settings = self.deployment_settings()
        repo = get_infra_repository(settings, github_conn_id=self.github_conn_id)
        try:
            change, extra = self.render(
                config, repo.read_file(DEPLOY_WORKFLOW), settings.ssh_public_key
            )
        except InfraError as exc:
            raise AirflowFailException(f"{exc}\nNothing was proposed; {self.remedy}") from None
        branch = change_branch(config.community_id, self.step)
        what = "cluster" if self.step == "cluster" else "hubs"
        title = f"Deploy {config.name} ({config.community_id}): {what}"
        earlier = self.store.get_action(config.community_id, self.action_key)
        previous = earlier.detail.get("commit") if earlier else None
        try:
            proposal = repo.propose_change(
                branch, change.files, title, pull_request_body(config, change), previous=previous
            )
        except EmptyChange as exc:
            raise AirflowFailException(
                f"{exc}. The {what} change was not proposed by this pipeline, so nothing is "
                "reviewed, merged or recorded as deployed: check who changed the repository, "
                "then record infrastructure_deployed by hand if the hubs run."
            ) from None
        detail = {  # the state of the change, not what this try did: a re-run records the same
            **{k: v for k, v in proposal.to_dict().items() if k != "committed"},
            "step": self.step,
            "title": title,
            "files": sorted(change.files),
            "hubs": hub_domains(change.files),
            "follow_ups": list(change.follow_ups),
            "notes": list(change.notes),
            "plan": change.plan,
            **extra,
        }
        upsert_action(self.store, config.community_id, self.action_key, "pull_request", detail)
        log.info(
            "%s %d file(s): %s",
            "Committed" if proposal.committed else "Already proposed",
            len(change.files),
            repo.describe(branch),
        )
        return proposal.to_dict()


class OpenInfrastructurePullRequestOperator(ProposeOperator):
    """Propose the cluster (step 1): cluster.yaml with ``hubs: []``, support, IaC inputs.

    A pull request on GitHub (``engagements_infra_repo`` and ``github_default``), else a branch
    of the local git repository. Refused decisions fail here, before anything is proposed.
    """

    remedy = (
        "correct the technical decisions (clear technical_decisions to answer the form again), "
        "then clear this task."
    )

    def render(self, config: CommunityConfig, workflow: str | None, ssh_key: str) -> Any:
        from engagements.infra.render import render_cluster_change

        change = render_cluster_change(config, ssh_public_key=ssh_key, deploy_workflow=workflow)
        return change, {}


class OpenHubsPullRequestOperator(ProposeOperator):
    """Propose the hubs (step 2), written with the outputs ``cluster_outputs`` recorded.

    Outputs that changed since the last run (an engineer corrected the example file, or the
    cluster was applied again) update the same branch and pull request.
    """

    step = "hubs"
    action_key = INFRA_HUBS_PR
    remedy = "correct the cluster's outputs, then clear cluster_outputs and this task."

    def render(self, config: CommunityConfig, workflow: str | None, ssh_key: str) -> Any:
        from engagements.infra.render import render_hubs_change

        outputs = recorded_change(self.store, config.community_id, CLUSTER_OUTPUTS)
        change = render_hubs_change(
            config,
            outputs["outputs"],
            outputs_source=outputs["source"],
            ssh_public_key=ssh_key,
            deploy_workflow=workflow,
            example=bool(outputs.get("example")),
        )
        return change, {"outputs": outputs["outputs"], "example_outputs": outputs.get("example")}


class CommunityGitHubOrgOperator(GitHubOperator):
    """Teams, representatives and template repositories in the community's GitHub org.

    Runs once the org is ready (``GitHubOrgReadySensor``): an admin team and the member teams
    the hub admits, each representative added (GitHub invites those not yet in the org), and
    the sample image, sample binder and JupyterBook site repositories from their templates.
    """

    def execute(self, context: Context) -> dict[str, Any]:
        from engagements.hooks.github import GitHubHook, TeamRole

        _, config = self.engagement()
        settings = self.deployment_settings()
        if not config.github_org or not connection_exists(self.github_conn_id):
            raise AirflowSkipException(
                f"Plan only (no {self.github_conn_id!r} connection or no github_org); "
                "would create:\n" + "\n".join(f"  - {step}" for step in org_plan(config, settings))
            )
        org = config.github_org
        hook = GitHubHook(self.github_conn_id)
        admin, _ = hook.ensure_team(
            org, ADMIN_TEAM, description=f"Administrators of {config.name}'s hubs"
        )
        members = [
            hook.ensure_team(org, team, description=f"Users of {config.name}'s hubs")[0]
            for team in member_teams(config)
        ]
        invitations: dict[str, str] = {}
        for login in config.admin_users:
            invitations[login] = hook.add_to_team(admin, login, TeamRole.MAINTAINER)
            for team in members:
                hook.add_to_team(team, login, TeamRole.MEMBER)
        repositories = {}
        for name, template, description in community_repositories(config, settings):
            repo, created = hook.ensure_repo_from_template(
                org, name, template, description=description
            )
            repositories[name] = repo.html_url
            log.info("%s %s", "Created" if created else "Found", repo.full_name)
        detail = {
            "org": org,
            "teams": [admin.slug, *(team.slug for team in members)],
            "representatives": invitations,
            "repositories": repositories,
        }
        upsert_action(self.store, config.community_id, GITHUB_ORG, "github", detail)
        pending = [login for login, state in invitations.items() if state != "active"]
        if pending:
            log.info("Invitations to %s pending for: %s", org, ", ".join(pending))
        return detail


class OpenFollowUpIssuesOperator(GitHubOperator):
    """Open each follow-up recorded after the rollout meeting as an issue, once, by title.

    The issues go to the infrastructure repository, where engineers track configuration work,
    labelled ``engagement:<community>``. With nothing to open, or without GitHub, the task
    ends skipped, saying why; without GitHub each follow-up stays in the store marked
    ``not opened`` with the reason, for an engineer to open by hand. Never green for nothing.
    """

    def execute(self, context: Context) -> dict[str, Any]:
        from engagements.hooks.github import GitHubHook

        actions = self.store.list_actions(self.community_id, kind="follow_up_issue")
        waiting = [a for a in actions if not a.detail.get("number")]
        settings = self.deployment_settings()
        if not actions:
            raise AirflowSkipException(
                f"skipped: no follow-up issue is recorded for {self.community_id}; nothing to open"
            )
        if not waiting:
            log.info("Every follow-up issue of %s was opened before", self.community_id)
            return {"opened": [a.detail.get("url") for a in actions], "not_opened": []}
        if not settings.infra_repo or not connection_exists(self.github_conn_id):
            reason = (
                "GitHub is not configured (engagements_infra_repo and the Airflow connection "
                f"{self.github_conn_id!r}): open them by hand in the infrastructure repository"
            )
            for action in waiting:
                detail = {**action.detail, "state": "not opened", "not_opened_reason": reason}
                self.store.update_action(self.community_id, action.key, detail)
            raise AirflowSkipException(
                f"skipped: {len(waiting)} follow-up issue(s) not opened, recorded in the store "
                f"as not opened: {reason}:\n"
                + "\n".join(f"  - {a.detail['title']}" for a in waiting)
            )
        hook = GitHubHook(self.github_conn_id)
        repo = hook.repository(settings.infra_repo)
        label = f"engagement:{self.community_id}"
        hook.ensure_label(
            repo, label, color="0e8a16", description=f"Engagement with {self.community_id}"
        )
        opened = []
        for action in waiting:
            issue, created = hook.ensure_issue(
                repo, action.detail["title"], action.detail.get("body", ""), label=label
            )
            detail = {k: v for k, v in action.detail.items() if k != "not_opened_reason"}
            self.store.update_action(
                self.community_id,
                action.key,
                {
                    **detail,
                    "state": "opened",
                    "repository": settings.infra_repo,
                    "number": issue.number,
                    "url": issue.html_url,
                },
            )
            opened.append(issue.html_url)
            log.info("%s %s: %s", "Opened" if created else "Found", issue.html_url, issue.title)
        return {"opened": opened, "not_opened": []}
