"""The infrastructure repository on GitHub (production): a change is a branch, commits made
with the Git Data API, and a pull request that a reviewer merges."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from engagements.hooks.infra_repo import (
    ChangeState,
    EmptyChange,
    Proposal,
    check_paths,
    git_blob_sha,
)

if TYPE_CHECKING:
    from github.PullRequest import PullRequest
    from github.Repository import Repository

    from engagements.hooks.github import GitHubHook

log = logging.getLogger(__name__)


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
