"""Waiting on GitHub: the infrastructure change merged, the community's org ready for us.

Both wait in reschedule mode, like the milestone sensors: a person does the step (merges the
change, creates the org and invites the bot), and marking the waiting task success in the UI
lets the run through just the same.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import PokeReturnValue
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from engagements.deployment import INFRA_PR, STEP_TASKS, org_plan
from engagements.hooks import connection_exists
from engagements.tasks import EngagementSensor, recorded_change

if TYPE_CHECKING:
    from airflow.sdk import Context

log = logging.getLogger(__name__)


class _GitHubSensor(EngagementSensor):
    ui_color = "#fde9c4"

    def __init__(self, *, github_conn_id: str = "github_default", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.github_conn_id = github_conn_id


class PullRequestMergedSensor(_GitHubSensor):
    """Wait until the proposed infrastructure change is merged into the base branch.

    On GitHub that is the pull request merged; in the local git repository, the branch merged
    into main by an engineer (``git merge``). A pull request closed without merging fails the
    wait: a reviewer turned the change down, and clearing the task that proposed it
    (``open_cluster_pull_request`` or ``open_hubs_pull_request``) proposes it again.

    ``change_key`` names the recorded change to wait on: the cluster's (``infra-pr``, the
    default) or the hubs' (``infra-hubs-pr``). ``branch`` (templated) waits on that branch
    instead: the decommission waits so on its teardown change (``decommission-<cluster>``),
    with ``since``, the commit the change started from, so that a branch holding nothing of
    its own is never taken for a merged one.
    """

    template_fields: Sequence[str] = ("community_id", "branch")

    def __init__(
        self, *, branch: str | None = None, change_key: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.branch = branch
        self.change_key = change_key
        self.since: str | None = None

    def poke(self, context: Context) -> PokeReturnValue | bool:
        from engagements.hooks.infra_repo import (
            ChangeState,
            get_infra_repository,
            load_deployment_settings,
        )

        if self.branch:
            change: dict[str, Any] = {"branch": self.branch}
            clear = "the task that proposed it"
        else:
            key = self.change_key or INFRA_PR
            change = recorded_change(self.store, self.community_id, key)
            clear = STEP_TASKS[key]
        branch = change["branch"]
        repo = get_infra_repository(
            load_deployment_settings(use_variables=True), github_conn_id=self.github_conn_id
        )
        state = repo.change_state(branch, since=self.since)
        if state is ChangeState.MERGED:
            log.info("Merged: %s", repo.describe(branch))
            return PokeReturnValue(
                is_done=True,
                xcom_value={k: change.get(k) for k in ("branch", "url_or_path", "number")},
            )
        if state is ChangeState.OPEN:
            log.info("Waiting for review and merge: %s", repo.describe(branch))
            return False
        why = {
            ChangeState.CLOSED: "A reviewer closed it without merging; ",
            ChangeState.EMPTY: "Its branch holds no change of its own, so there is nothing to "
            "merge and nothing counts as merged; ",
        }.get(state, "Its branch is gone; ")
        raise AirflowFailException(
            f"The infrastructure change is {state.value}: {repo.describe(branch)}. {why}"
            f"clear {clear} to propose it again."
        )


ORG_WAITING = {
    "missing": "the organization {org} does not exist yet: the community creates it (GitHub "
    "has no API that creates organizations on github.com) and invites {bot} as an owner",
    "bot-not-member": "{bot} is not a member of {org}: a representative invites it as an owner",
    "bot-not-owner": "{bot} is a member of {org} but not an owner: a representative makes it one",
}


class GitHubOrgReadySensor(_GitHubSensor):
    """Wait until the community's GitHub org exists and the bot is one of its owners.

    Creating the org is the community's step, so this is a milestone-style wait. A pending
    invitation of the bot is accepted here. Without a GitHub connection the org work is only
    planned: the sensor skips, reporting the plan.
    """

    def poke(self, context: Context) -> PokeReturnValue | bool:
        from engagements.hooks.github import GitHubHook, OrgStatus
        from engagements.hooks.infra_repo import load_deployment_settings

        _, config = self.engagement()
        org = config.github_org
        if not org or not connection_exists(self.github_conn_id):
            why = (
                "no github_org is recorded"
                if not org
                else f"the Airflow connection {self.github_conn_id!r} is not defined"
            )
            plan = org_plan(config, load_deployment_settings(use_variables=True))
            raise AirflowSkipException(
                f"Plan only ({why}); the GitHub org steps would create:\n"
                + "\n".join(f"  - {step}" for step in plan)
            )
        hook = GitHubHook(self.github_conn_id)
        status = hook.org_status(org)
        if status is OrgStatus.BOT_INVITED:
            log.info("Accepting the invitation of %s to %s", hook.login, org)
            hook.accept_invitation(org)
            status = hook.org_status(org)
        if status is OrgStatus.READY:
            log.info("GitHub organization %s is ready; %s is an owner", org, hook.login)
            return PokeReturnValue(is_done=True, xcom_value={"org": org, "bot": hook.login})
        log.info("Waiting: " + ORG_WAITING[status.value].format(org=org, bot=hook.login))
        return False
