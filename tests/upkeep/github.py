"""The fake GitHub of the tests with what the upkeep also asks: releases, and editing issues."""

from __future__ import annotations

from typing import Any

from tests.hooks.test_github import NOT_FOUND, FakeGitHub


class UpkeepGitHub(FakeGitHub):
    """``releases`` per repository (newest first, as GitHub lists them); issue bodies edited."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.releases: dict[str, list[dict[str, Any]]] = {}

    def add_release(
        self, full_name: str, tag: str, *, draft: bool = False, prerelease: bool = False
    ) -> None:
        """A release published now: it goes first in the listing."""
        number = sum(len(r) for r in self.releases.values()) + 1
        self.releases.setdefault(full_name, []).insert(
            0,
            {
                "id": 7000 + number,
                "tag_name": tag,
                "name": tag,
                "draft": draft,
                "prerelease": prerelease,
                "url": f"{self.url}/repos/{full_name}/releases/{7000 + number}",
                "html_url": f"https://github.com/{full_name}/releases/tag/{tag}",
                "created_at": "2026-11-01T10:00:00Z",
                "published_at": None if draft else "2026-11-01T10:00:00Z",
            },
        )

    def commit(self, full_name: str, files: dict[str, str], message: str) -> None:
        """A commit on the default branch changing ``files`` (as a merged pull request would)."""
        repo = self.repos[full_name]
        head = repo.refs[repo.default_branch]
        repo.refs[repo.default_branch] = repo.add_commit(
            {**repo.files_at(head), **files}, [head], message
        )

    def r_list_releases(self, owner, name, *, body, query):
        if f"{owner}/{name}" not in self.repos:
            return 404, NOT_FOUND, {}
        return 200, self.releases.get(f"{owner}/{name}", []), {}

    def r_edit_issue(self, owner, name, number, *, body, query):
        repo = self._get_repo(owner, name)
        issue = next((i for i in repo.issues if i["number"] == int(number)), None)
        if issue is None:
            return 404, NOT_FOUND, {}
        issue.update({k: v for k, v in body.items() if k in ("title", "body", "state")})
        return 200, self._issue(repo, issue), {}

    R = FakeGitHub.R
    ROUTES = (
        *FakeGitHub.ROUTES,
        ("GET", rf"/repos/{R}/{R}/releases", r_list_releases),
        ("PATCH", rf"/repos/{R}/{R}/issues/(\d+)", r_edit_issue),
    )
