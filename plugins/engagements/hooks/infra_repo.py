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
import os
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from engagements.hooks import connection_exists
from engagements.settings import default_home, resolve_settings

if TYPE_CHECKING:
    from github.PullRequest import PullRequest
    from github.Repository import Repository

    from engagements.hooks.github import GitHubHook

log = logging.getLogger(__name__)

COMMITTER = {
    "GIT_AUTHOR_NAME": "Engagement pipelines",
    "GIT_AUTHOR_EMAIL": "engagements@2i2c.org",
    "GIT_COMMITTER_NAME": "Engagement pipelines",
    "GIT_COMMITTER_EMAIL": "engagements@2i2c.org",
}


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


class GitHubInfraRepository:
    """The infrastructure repository on GitHub: branch, Git Data API commits, pull request."""

    def __init__(self, hook: GitHubHook, full_name: str, *, base: str = "") -> None:
        self.hook = hook
        self.full_name = full_name
        self.base = base

    def _repo(self) -> tuple[Repository, str]:
        repo = self.hook.repository(self.full_name)
        return repo, self.base or repo.default_branch

    def describe(self, branch: str) -> str:
        return f"pull request from {branch} in GitHub repository {self.full_name}"

    def propose_change(
        self,
        branch: str,
        files: dict[str, str | None],
        title: str,
        body: str,
        *,
        previous: str | None = None,
    ) -> Proposal:
        """``previous`` is not needed here: a merged change is found by its pull request."""
        check_paths(files)
        repo, base = self._repo()
        errors = self.hook.errors
        head = self._head(repo, branch)
        if head is None:
            start = self._branch_head(repo, base)
            elements = self._changes(repo, start, files)
            if not elements:
                # Nothing differs from the base: a change merged before (its branch deleted
                # since) is that proposal; with nothing ever proposed there is no change.
                merged = self._pull(repo, base, branch)
                if merged is None:
                    raise self._empty(branch, base)
                return Proposal("pull_request", merged.html_url, branch, merged.number, start)
            head = self._create_branch(repo, base, branch, start)
            if head != start:  # created meanwhile by another run, from another commit
                elements = self._changes(repo, head, files)
        else:
            elements = self._changes(repo, head, files)
        committed = False
        if elements:
            with errors(f"committing {len(elements)} file(s) to {branch} of {self.full_name}"):
                parent = repo.get_git_commit(head)
                tree = repo.create_git_tree(elements, base_tree=parent.tree)
                commit = repo.create_git_commit(title, tree, [parent])
                # Fast-forward only: a reviewer's push in between fails here, not overwritten.
                repo.get_git_ref(f"heads/{branch}").edit(commit.sha, force=False)
            head, committed = commit.sha, True
            log.info("Committed %d file(s) to %s: %s", len(elements), branch, head)
        pull = self._pull(repo, base, branch)
        if pull is not None and pull.state == "open":
            if (pull.title, pull.body or "") != (title, body):
                with errors(f"updating pull request #{pull.number} of {self.full_name}"):
                    pull.edit(title=title, body=body)
        elif pull is None or committed or pull.merged_at is None:
            pull = self._open_pull(repo, base, branch, title, body) or pull
        if pull is None:  # a branch with no commit of its own, and nothing ever proposed
            raise self._empty(branch, base)
        return Proposal("pull_request", pull.html_url, branch, pull.number, head, committed)

    def _empty(self, branch: str, base: str) -> EmptyChange:
        return EmptyChange(
            f"the change {branch} holds nothing: {base} of {self.full_name} already has these "
            "files as they are, so there is nothing to review or merge"
        )

    def change_state(self, branch: str, *, since: str | None = None) -> ChangeState:
        """A pull request says it; without one a change is never merged by an empty branch."""
        repo, base = self._repo()
        pull = self._pull(repo, base, branch)
        if pull is not None:
            if pull.merged_at is not None:  # list responses carry merged_at, not merged
                return ChangeState.MERGED
            return ChangeState.OPEN if pull.state == "open" else ChangeState.CLOSED
        if self._head(repo, branch) is None:
            return ChangeState.MISSING
        with self.hook.errors(f"comparing {branch} with {since or base} in {self.full_name}"):
            own = repo.compare(since, branch).ahead_by if since else None
            ahead = repo.compare(base, branch).ahead_by
        if ahead:
            return ChangeState.OPEN  # commits not in the base, and no pull request yet
        if own:
            return ChangeState.MERGED  # its own commits reached the base without a pull request
        return ChangeState.EMPTY

    def changed_paths(self, ref: str, since: str) -> dict[str, str]:
        repo, _ = self._repo()
        with self.hook.errors(f"comparing {ref} with {since} in {self.full_name}"):
            files = repo.compare(since, ref).files
        kinds = {"added": "added", "removed": "removed"}
        return {f.filename: kinds.get(f.status, "modified") for f in files}

    def base_head(self) -> str:
        repo, base = self._repo()
        return self._branch_head(repo, base)

    def read_file(self, path: str) -> str | None:
        from engagements.hooks.github import GitHubNotFound

        check_paths({path: None})
        repo, base = self._repo()
        try:
            with self.hook.errors(f"reading {path} on {base} of {self.full_name}"):
                content = repo.get_contents(path, ref=base)
        except GitHubNotFound:
            return None
        if isinstance(content, list):
            return None
        return content.decoded_content.decode("utf-8")

    def withdraw_change(self, branch: str, reason: str) -> ChangeState:
        """Close the open pull request, its body ending with the reason; merged stays merged."""
        repo, base = self._repo()
        pull = self._pull(repo, base, branch)
        if pull is None or pull.merged_at is not None or pull.state != "open":
            return self.change_state(branch)
        with self.hook.errors(f"closing pull request #{pull.number} of {self.full_name}"):
            pull.edit(state="closed", body=f"{pull.body or ''}\n\n**Withdrawn**: {reason}")
        log.info("Closed pull request #%s: %s", pull.number, reason)
        return ChangeState.CLOSED

    def _head(self, repo: Repository, branch: str) -> str | None:
        from engagements.hooks.github import GitHubNotFound

        try:
            with self.hook.errors(f"reading branch {branch} of {self.full_name}"):
                return repo.get_git_ref(f"heads/{branch}").object.sha
        except GitHubNotFound:
            return None

    def _branch_head(self, repo: Repository, base: str) -> str:
        with self.hook.errors(f"reading branch {base} of {self.full_name}"):
            return repo.get_branch(base).commit.sha

    def _create_branch(self, repo: Repository, base: str, branch: str, head: str) -> str:
        from engagements.hooks.github import GitHubError

        try:
            with self.hook.errors(f"creating branch {branch} in {self.full_name}"):
                repo.create_git_ref(f"refs/heads/{branch}", head)
        except GitHubError as exc:  # 422: created meanwhile by another run; use that one
            existing = self._head(repo, branch) if exc.status == 422 else None
            if existing is None:
                raise
            return existing
        return head

    def _changes(self, repo: Repository, head: str, files: dict[str, str | None]) -> list[Any]:
        """Tree entries for the files that differ, reading one listing per directory."""
        from github.InputGitTreeElement import InputGitTreeElement

        from engagements.hooks.github import GitHubNotFound

        existing: dict[str, str] = {}
        for directory in sorted({path.rpartition("/")[0] for path in files}):
            try:
                with self.hook.errors(f"listing {directory or '/'} of {self.full_name}"):
                    listing = repo.get_contents(directory, ref=head)
            except GitHubNotFound:
                continue
            for entry in listing if isinstance(listing, list) else [listing]:
                if entry.type == "file":
                    existing[entry.path] = entry.sha
        elements = []
        for path, content in sorted(files.items()):
            if content is None:
                if path in existing:
                    elements.append(InputGitTreeElement(path, "100644", "blob", sha=None))
            elif existing.get(path) != git_blob_sha(content):
                elements.append(InputGitTreeElement(path, "100644", "blob", content=content))
        return elements

    def _pull(self, repo: Repository, base: str, branch: str) -> PullRequest | None:
        """The open pull request from ``branch``, else the most recent one."""
        owner = self.full_name.split("/")[0]
        with self.hook.errors(f"listing pull requests from {branch} in {self.full_name}"):
            pulls = list(
                repo.get_pulls(
                    state="all",
                    head=f"{owner}:{branch}",
                    base=base,
                    sort="created",
                    direction="desc",
                )
            )
        return next((p for p in pulls if p.state == "open"), pulls[0] if pulls else None)

    def _open_pull(
        self, repo: Repository, base: str, branch: str, title: str, body: str
    ) -> PullRequest | None:
        from engagements.hooks.github import GitHubError

        try:
            with self.hook.errors(f"opening a pull request from {branch} in {self.full_name}"):
                pull = repo.create_pull(base=base, head=branch, title=title, body=body)
        except GitHubError as exc:
            text = str(exc).lower()
            if exc.status == 422 and "no commits between" in text:
                return None
            if exc.status == 422 and "already exists" in text:
                return self._pull(repo, base, branch)
            raise
        log.info("Opened pull request #%s: %s", pull.number, pull.html_url)
        return pull


class LocalGitInfraRepository:
    """A git repository on this machine: the change is a branch, accepted by ``git merge``.

    Commits are made with git's plumbing against a temporary index, so the working tree of the
    repository (where an engineer may be reviewing or merging) is never touched.
    """

    def __init__(self, path: Path, *, base: str = "") -> None:
        self.path = Path(path)
        self.base = base or "main"

    def describe(self, branch: str) -> str:
        return (
            f"branch {branch} of the local git repository {self.path}; review it, then accept "
            f"it with `git -C {self.path} merge {branch}` (into {self.base})"
        )

    def _git(self, *args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> str:
        result = subprocess.run(
            ["git", "-C", str(self.path), "-c", "commit.gpgsign=false", *args],
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, **COMMITTER, **(env or {})},
        )
        if result.returncode:
            raise InfraRepositoryError(
                f"git {' '.join(args)} failed in {self.path}: {result.stderr.strip()}"
            )
        return result.stdout.strip()

    def _ref(self, branch: str) -> str | None:
        try:
            return self._git("rev-parse", "--verify", "--quiet", f"refs/heads/{branch}^{{commit}}")
        except InfraRepositoryError:
            return None

    def ensure(self) -> None:
        """Create the repository with an initial commit on the base branch if it is absent."""
        if (self.path / ".git").exists():
            return
        if self.path.exists() and any(self.path.iterdir()):
            raise InfraRepositoryError(
                f"{self.path} exists and is not a git repository; set engagements_infra_repo_path"
                " to an existing repository or to an empty or new folder"
            )
        self.path.mkdir(parents=True, exist_ok=True)
        self._git("init", "--quiet", f"--initial-branch={self.base}")
        readme = (
            "# Infrastructure repository (embedded)\n\n"
            "Changes proposed by the engagement pipelines arrive here as branches. Review a\n"
            "branch, then merge it into this branch to accept it.\n"
        )
        blob = self._git("hash-object", "-w", "--stdin", stdin=readme)
        tree = self._git("mktree", stdin=f"100644 blob {blob}\tREADME.md\n")
        commit = self._git("commit-tree", tree, "-m", "Initial commit")
        self._git("update-ref", f"refs/heads/{self.base}", commit, "")
        self._git("reset", "--quiet", "--hard")
        log.info("Created the local infrastructure repository %s", self.path)

    def propose_change(
        self,
        branch: str,
        files: dict[str, str | None],
        title: str,
        body: str,
        *,
        previous: str | None = None,
    ) -> Proposal:
        check_paths(files)
        self.ensure()
        self._git("check-ref-format", "--branch", branch)
        head = self._ref(branch)
        start = head or self._ref(self.base)
        if start is None:
            raise InfraRepositoryError(f"{self.path} has no branch {self.base!r}")
        with tempfile.TemporaryDirectory() as tmp:
            index = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
            self._git("read-tree", start, env=index)
            lines = []
            for path, content in sorted(files.items()):
                if content is None:
                    lines.append(f"0 {'0' * 40}\t{path}")
                else:
                    blob = self._git("hash-object", "-w", "--stdin", stdin=content)
                    lines.append(f"100644 {blob}\t{path}")
            self._git("update-index", "--index-info", stdin="\n".join(lines) + "\n", env=index)
            tree = self._git("write-tree", env=index)
        if tree == self._git("rev-parse", f"{start}^{{tree}}"):
            if head is None and previous and self._merged_commit(previous):
                # Proposed and merged before, its branch deleted since: the branch comes back.
                self._git("update-ref", f"refs/heads/{branch}", previous, "")
                return Proposal("local_branch", str(self.path), branch, None, previous, False)
            if head is None:  # no branch is made for a change that holds nothing
                raise EmptyChange(
                    f"the change {branch} holds nothing: {self.base} of {self.path} already has "
                    "these files as they are, so there is nothing to review or merge"
                )
            return Proposal("local_branch", str(self.path), branch, None, head, False)
        commit = self._git("commit-tree", tree, "-p", start, "-m", title, "-m", body)
        self._git("update-ref", f"refs/heads/{branch}", commit, head or "")
        log.info("Committed %s to %s in %s", commit[:12], branch, self.path)
        return Proposal("local_branch", str(self.path), branch, None, commit, True)

    def base_head(self) -> str:
        self.ensure()
        head = self._ref(self.base)
        if head is None:
            raise InfraRepositoryError(f"{self.path} has no branch {self.base!r}")
        return head

    def read_file(self, path: str) -> str | None:
        check_paths({path: None})
        if not (self.path / ".git").exists() or self._ref(self.base) is None:
            return None  # created when a change is proposed, not when one is read
        try:
            return self._git("show", f"refs/heads/{self.base}:{path}") + "\n"
        except InfraRepositoryError:
            return None

    def withdraw_change(self, branch: str, reason: str) -> ChangeState:
        """Delete the branch of a change not merged (its commit is named in the log)."""
        state = self.change_state(branch)
        if state is ChangeState.OPEN:
            head = self._ref(branch)
            self._git("update-ref", "-d", f"refs/heads/{branch}", head)
            log.info("Deleted branch %s (was %s): %s", branch, head, reason)
            return ChangeState.MISSING
        return state

    def change_state(self, branch: str, *, since: str | None = None) -> ChangeState:
        """MERGED when the branch's head is in the base branch (``git merge``, fast-forward
        or not), unless it has no commit after ``since``: then it never held a change."""
        if not (self.path / ".git").exists():
            return ChangeState.MISSING
        head = self._ref(branch)
        if head is None:
            return ChangeState.MISSING
        if since and self._git("rev-list", "--count", f"{since}..{head}") == "0":
            return ChangeState.EMPTY
        return ChangeState.MERGED if self._is_ancestor(head, self.base) else ChangeState.OPEN

    def _merged_commit(self, commit: str) -> bool:
        """Whether ``commit`` exists here and is in the base branch."""
        try:
            self._git("rev-parse", "--verify", "--quiet", f"{commit}^{{commit}}")
        except InfraRepositoryError:
            return False
        return self._is_ancestor(commit, self.base)

    def _is_ancestor(self, commit: str, ref: str) -> bool:
        result = subprocess.run(
            ["git", "-C", str(self.path), "merge-base", "--is-ancestor", commit, ref],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode not in (0, 1):
            raise InfraRepositoryError(f"cannot compare {commit} with {ref}: {result.stderr}")
        return result.returncode == 0

    def changed_paths(self, ref: str, since: str) -> dict[str, str]:
        kinds = {"A": "added", "D": "removed"}
        out = self._git("diff", "--name-status", "--no-renames", "-z", since, ref, "--")
        fields = out.split("\0")
        return {
            path: kinds.get(status, "modified")
            for status, path in zip(fields[::2], fields[1::2], strict=False)
            if path
        }


def get_infra_repository(
    settings: DeploymentSettings, *, github_conn_id: str = "github_default"
) -> InfraRepository:
    """GitHub when ``infra_repo`` is set (its connection must exist), else the local default."""
    from engagements.hooks.github import GitHubHook

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
