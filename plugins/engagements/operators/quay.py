"""The community image on Quay: repository, robot account, and the robot's token for CI.

The image repository ``quay.io/<quay_namespace>/<community>-image`` receives the images that
GitHub Actions builds in the community's ``hub-user-image`` repository (the template's
``build.yaml`` pushes with the secrets ``QUAY_USERNAME`` and ``QUAY_PASSWORD``). The robot's
name is recorded in the store; its token goes only to those Actions secrets.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowSkipException

from engagements.deployment import IMAGE_REPOSITORY, QUAY_IMAGE
from engagements.hooks import connection_exists
from engagements.operators.github import GitHubOperator
from engagements.store.base import upsert_action

if TYPE_CHECKING:
    from airflow.sdk import Context

    from engagements.config import CommunityConfig
    from engagements.hooks.quay import Robot

log = logging.getLogger(__name__)


def image_names(config: CommunityConfig, namespace: str) -> dict[str, str]:
    """Quay repository and robot names; robot short names allow only [a-z0-9_]."""
    repository = f"{config.community_id}-image"
    robot = f"{config.community_id.replace('-', '_')}_image_builder"
    return {
        "namespace": namespace,
        "repository": repository,
        "image": f"quay.io/{namespace}/{repository}",
        "robot_shortname": robot,
        "robot": f"{namespace}+{robot}",
    }


class QuayImageRepositoryOperator(GitHubOperator):
    """Create the image repository and its robot; hand the robot's token to GitHub Actions.

    Without ``quay_default`` the step is recorded as planned and skipped. Without GitHub (or
    before the image repository exists there) the token stays in Quay and the action says the
    secrets are still to be set; a re-run sets them.
    """

    def __init__(self, *, quay_conn_id: str = "quay_default", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.quay_conn_id = quay_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        from engagements.hooks.quay import QuayHook

        _, config = self.engagement()
        names = image_names(config, self.deployment_settings().quay_namespace)
        if not connection_exists(self.quay_conn_id):
            detail = {**names, "state": "planned", "secrets": "not set"}
            upsert_action(self.store, config.community_id, QUAY_IMAGE, "container_registry", detail)
            raise AirflowSkipException(
                f"Plan only (no {self.quay_conn_id!r} connection): would create {names['image']} "
                f"and robot {names['robot']} with write access; recorded as planned"
            )
        hook = QuayHook(self.quay_conn_id)
        created = hook.create_repository(
            names["namespace"],
            names["repository"],
            description=f"User image of {config.name}'s hubs (2i2c)",
        )
        robot, robot_created = hook.ensure_robot(
            names["namespace"],
            names["robot_shortname"],
            description=f"Pushes {names['image']} from GitHub Actions",
        )
        hook.set_repository_permission(names["namespace"], names["repository"], robot.name)
        log.info(
            "%s %s; robot %s %s with write access",
            "Created" if created else "Found",
            names["image"],
            robot.name,
            "created" if robot_created else "found",
        )
        detail = {**names, "state": "created", "secrets": self._store_secrets(config, robot)}
        upsert_action(self.store, config.community_id, QUAY_IMAGE, "container_registry", detail)
        return detail

    def _store_secrets(self, config: CommunityConfig, robot: Robot) -> str:
        """Put the robot's credentials into the image repository's Actions secrets."""
        from engagements.hooks.github import GitHubHook, GitHubNotFound

        full_name = f"{config.github_org}/{IMAGE_REPOSITORY}"
        if not config.github_org or not connection_exists(self.github_conn_id):
            log.warning("GitHub is not configured: set QUAY_USERNAME/QUAY_PASSWORD by hand")
            return "not set: GitHub is not configured"
        hook = GitHubHook(self.github_conn_id)
        try:
            repo = hook.repository(full_name)
        except GitHubNotFound:
            log.warning("%s does not exist yet; the Quay secrets are set on a re-run", full_name)
            return f"not set: {full_name} does not exist"
        hook.set_actions_secret(repo, "QUAY_USERNAME", robot.name)
        hook.set_actions_secret(repo, "QUAY_PASSWORD", robot.token)
        log.info("Set QUAY_USERNAME and QUAY_PASSWORD in %s", full_name)
        return f"set in {full_name}"
