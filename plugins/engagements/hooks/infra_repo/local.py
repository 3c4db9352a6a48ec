"""The infrastructure repository as a git repository on this machine (the embedded
default): a change is a branch and commits, accepted by an engineer's ``git merge``."""

from __future__ import annotations

import logging
import os
import subprocess
import tempfile
from pathlib import Path

from engagements.hooks.infra_repo import (
    ChangeState,
    EmptyChange,
    InfraRepositoryError,
    Proposal,
    check_paths,
)

log = logging.getLogger(__name__)

COMMITTER = {
    "GIT_AUTHOR_NAME": "Engagement pipelines",
    "GIT_AUTHOR_EMAIL": "engagements@2i2c.org",
    "GIT_COMMITTER_NAME": "Engagement pipelines",
    "GIT_COMMITTER_EMAIL": "engagements@2i2c.org",
}


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
