"""The infrastructure repository: where a community's deployment is proposed as a change.

2i2c deploys by committing configuration to its infrastructure repository and letting CI apply
it after review. :func:`get_infra_repository` picks the backend by configuration:

- GitHub (production): the setting ``infra_repo`` (Variable ``engagements_infra_repo`` or
  ``ENGAGEMENTS_INFRA_REPO``) names ``owner/name`` and the ``github_default`` connection exists.
  The change is a branch, commits made with the Git Data API, and a pull request.
- Local git (embedded default): a repository at ``infra_repo_path`` (default
  ``$AIRFLOW_HOME/infrastructure``), created with an initial commit if absent. The change is a
  branch and commits; an engineer reviews it and runs ``git merge`` to accept it.

Either way ``propose_change`` is idempotent: the same files on the same branch make no new
commit, and a re-run finds the branch and pull request instead of opening new ones. A change
that holds nothing (the files are already so in the base branch) is never proposed: it is an
:class:`EmptyChange` error, so that an empty branch can never be taken for a merged change.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import Any, Literal, Protocol, runtime_checkable

from engagements.hooks import connection_exists
from engagements.settings import default_home, resolve_settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeploymentSettings:
    """Settings of the deployment steps, resolved like :mod:`engagements.settings`.

    Each comes from the Variable ``engagements_<name>``, else ``ENGAGEMENTS_<NAME>``, else the
    default here. Empty means "not configured": the step that needs it reports its plan and
    skips instead of guessing.
    """

    infra_repo: str = ""
    """GitHub ``owner/name`` of the infrastructure repository (used with ``github_default``)."""
    infra_repo_path: str = ""
    """Local git repository of the embedded default; empty means $AIRFLOW_HOME/infrastructure."""
    infra_base_branch: str = ""
    """Branch changes are proposed against; empty means the repository's default (or main)."""
    infra_clone_url: str = ""
    """A URL the tooling pods can clone the local repository from (a git server in front of
    it); empty: pods cannot reach the local repository, so the destroy step plans only."""
    image_repo_template: str = "2i2c-org/hub-user-image-template"
    binder_repo_template: str = "binder-examples/requirements"
    docs_repo_template: str = "2i2c-org/community-docs-template"
    quay_namespace: str = "2i2c"
    """Quay organization that holds community images (quay.io/2i2c/<community>-image)."""
    ssh_public_key: str = ""
    """Public SSH key engineers reach cluster nodes with (Azure's terraform requires one)."""
    outputs_dir: str = ""
    """Folder of the example cluster outputs the embedded default's hubs change is rendered
    with (``<cluster>.yaml``, editable); empty means $AIRFLOW_HOME/cluster-outputs."""
    tooling_image: str = ""
    """Image with the infrastructure tooling (deployer, terraform, eksctl) for provisioning."""
    tooling_command: str = ""
    """Shell command run in the tooling image; empty uses the provider's runbook commands."""
    kubernetes_namespace: str = "default"
    """Namespace of the provisioning pod, on the cluster of ``kubernetes_default``."""
    hub_health: str = "auto"
    """``auto``: check hubs only when the change goes to GitHub (local is plan only);
    ``always`` or ``never``."""

    @property
    def local_repo_path(self) -> Path:
        return Path(self.infra_repo_path or Path(default_home()) / "infrastructure")

    @property
    def outputs_path(self) -> Path:
        return Path(self.outputs_dir or Path(default_home()) / "cluster-outputs")


def load_deployment_settings(*, use_variables: bool = False) -> DeploymentSettings:
    """Resolve every deployment setting; ``use_variables`` is set by tasks running in Airflow."""
    return resolve_settings(DeploymentSettings, use_variables=use_variables)


class InfraRepositoryError(RuntimeError):
    """The change could not be proposed or read; the message names the repository."""


class EmptyChange(InfraRepositoryError):
    """The files make no difference to the base branch and nothing was proposed before."""


class ChangeState(StrEnum):
    OPEN = "open"
    """Proposed and waiting for review."""
    MERGED = "merged"
    """In the base branch: CI (or an engineer) applies it from there."""
    CLOSED = "closed"
    """The pull request was closed without merging: a reviewer turned it down."""
    MISSING = "missing"
    """No such branch or pull request."""
    EMPTY = "empty"
    """The branch holds no commit of its own: there is nothing to review or merge."""


@dataclass(frozen=True)
class Proposal:
    """Where a proposed change is, for the store and for the people who review it."""

    kind: Literal["pull_request", "local_branch"]
    url_or_path: str
    branch: str
    number: int | None
    commit: str
    committed: bool = False
    """Whether this call made a new commit (False when the branch already had the files)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@runtime_checkable
class InfraRepository(Protocol):
    """What onboarding and decommissioning need from the infrastructure repository."""

    def propose_change(
        self,
        branch: str,
        files: dict[str, str | None],
        title: str,
        body: str,
        *,
        previous: str | None = None,
    ) -> Proposal:
        """Make ``branch`` hold these files (None deletes a path) and propose it for review.

        ``previous`` is the commit this change was proposed with before, when recorded: a
        change already merged is found by it even after its branch was deleted. A change
        that holds nothing and was never proposed raises :class:`EmptyChange`.
        """

    def change_state(self, branch: str, *, since: str | None = None) -> ChangeState:
        """Whether the change on ``branch`` is still open, merged, closed, empty or unknown.

        ``since`` is the commit the change started from, when the caller recorded it: a branch
        with no commit after it holds no change (EMPTY), whatever the base branch holds.
        """

    def changed_paths(self, ref: str, since: str) -> dict[str, str]:
        """What ``ref`` (a branch or commit) changes since ``since``: path -> added, modified
        or removed."""

    def describe(self, branch: str) -> str:
        """Where the change is and how a person accepts it, for logs and messages."""

    def withdraw_change(self, branch: str, reason: str) -> ChangeState:
        """Take back a change not merged yet, saying why; the state it is left in."""

    def base_head(self) -> str:
        """The base branch's current commit: what a change proposed now starts from."""

    def read_file(self, path: str) -> str | None:
        """A file's text on the base branch, or None when it has no such file."""


def git_blob_sha(content: str) -> str:
    """The object id git gives a file with this content, to compare without downloading it."""
    data = content.encode("utf-8")
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def check_paths(files: dict[str, str | None]) -> None:
    """Refuse paths that would escape the repository or touch git's own files."""
    for path in files:
        parts = PurePosixPath(path).parts
        if not parts or path.startswith("/") or ".." in parts or ".git" in parts or "\\" in path:
            raise InfraRepositoryError(f"refusing to write {path!r}: not a relative file path")


def get_infra_repository(
    settings: DeploymentSettings, *, github_conn_id: str = "github_default"
) -> InfraRepository:
    """GitHub when ``infra_repo`` is set (its connection must exist), else the local default."""
    from engagements.hooks.github import GitHubHook
    from engagements.hooks.infra_repo.github import GitHubInfraRepository
    from engagements.hooks.infra_repo.local import LocalGitInfraRepository

    if settings.infra_repo:
        if not connection_exists(github_conn_id):
            raise InfraRepositoryError(
                f"engagements_infra_repo names {settings.infra_repo!r} but the Airflow connection"
                f" {github_conn_id!r} is not defined; add it, or unset engagements_infra_repo to"
                " use the local git repository"
            )
        return GitHubInfraRepository(
            GitHubHook(github_conn_id), settings.infra_repo, base=settings.infra_base_branch
        )
    if connection_exists(github_conn_id):
        log.warning(
            "Connection %r exists but engagements_infra_repo is not set: proposing the change in"
            " the local git repository %s",
            github_conn_id,
            settings.local_repo_path,
        )
    return LocalGitInfraRepository(settings.local_repo_path, base=settings.infra_base_branch)
