"""GitHub through PyGithub: the infrastructure repository and the community's organization.

The ``github`` connection (the same type as the github provider's) keeps a token as its
password; its host, when set, is a GitHub Enterprise Server API URL. Optional extras tune the
client: ``max_rate_limit_wait`` (seconds a task may sleep for a rate limit, default 300),
``timeout``, ``seconds_between_requests`` and ``seconds_between_writes`` (PyGithub's pacing of
requests, which GitHub asks integrations to keep). The client is built on first use and every
PyGithub error leaves this module as a :class:`GitHubError` that names what was being done.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook
from github import Auth, Github, GithubException, GithubRetry, UnknownObjectException
from github.GithubException import RateLimitExceededExceedsMaxWait, RateLimitExceededException

if TYPE_CHECKING:
    from github.Issue import Issue
    from github.Organization import Organization
    from github.Repository import Repository
    from github.Team import Team
    from urllib3.response import BaseHTTPResponse

DEFAULT_MAX_RATE_LIMIT_WAIT = 300.0
"""Longer waits are better spent by Airflow retrying the task than by a sleeping worker."""


class GitHubError(RuntimeError):
    """GitHub refused or failed a request; the message says what we were doing and why."""

    def __init__(self, doing: str, status: int | None, reason: str) -> None:
        self.doing = doing
        self.status = status
        super().__init__(f"GitHub: {doing}: {reason}" + (f" (HTTP {status})" if status else ""))


class GitHubNotFound(GitHubError):
    """The organization, repository, user or object does not exist (or the token cannot see it)."""


class GitHubRateLimited(GitHubError):
    """GitHub's rate limit outlasted the bounded wait; a later retry of the task will succeed."""


class OrgStatus(StrEnum):
    """How ready a community's GitHub organization is for the pipeline's org work."""

    MISSING = "missing"
    BOT_NOT_MEMBER = "bot-not-member"
    BOT_INVITED = "bot-invited"
    BOT_NOT_OWNER = "bot-not-owner"
    READY = "ready"


class TeamRole(StrEnum):
    MEMBER = "member"
    MAINTAINER = "maintainer"


class _BoundedRetry(GithubRetry):
    """PyGithub's retry policy (rate limits honour X-RateLimit-Reset), with Retry-After bounded.

    ``GithubRetry`` already refuses to wait past ``max_rate_limit_wait`` for X-RateLimit-Reset
    and the secondary limit; urllib3 would sleep any Retry-After, so that is capped here too.
    """

    def get_retry_after(self, response: BaseHTTPResponse) -> float | None:
        seconds = super().get_retry_after(response)
        limit = self.max_rate_limit_wait
        if seconds is not None and limit is not None and seconds > limit:
            raise RateLimitExceededExceedsMaxWait(
                response.status, {"message": "Retry-After too long"}, {}, wait=seconds
            )
        return seconds


def _reason(exc: GithubException) -> str:
    data = exc.data if isinstance(exc.data, dict) else {}
    errors = [e for e in data.get("errors") or [] if isinstance(e, dict)]
    details = [e.get("message") or e.get("code") for e in errors]
    message = data.get("message") or exc.message or "no message"
    return "; ".join([message, *[d for d in details if d]])


class GitHubHook(BaseHook):
    """A PyGithub client from an Airflow connection, and the org operations the runbook needs.

    Every operation is idempotent: it looks for what it would create and creates only what is
    missing, so a cleared task can run again.
    """

    conn_name_attr = "github_conn_id"
    default_conn_name = "github_default"
    conn_type = "github"
    hook_name = "GitHub (engagements)"

    def __init__(self, github_conn_id: str = default_conn_name, *, retries: int = 3) -> None:
        super().__init__()
        self.github_conn_id = github_conn_id
        self.retries = retries

    @cached_property
    def client(self) -> Github:
        conn = self.get_connection(self.github_conn_id)
        if not conn.password:
            raise GitHubError(
                f"connecting with Airflow connection {self.github_conn_id!r}",
                None,
                "the connection needs a token as its password",
            )
        extra = conn.extra_dejson
        max_wait = float(extra.get("max_rate_limit_wait", DEFAULT_MAX_RATE_LIMIT_WAIT))
        retry = _BoundedRetry(
            total=self.retries,
            # 403 rate limits are added by GithubRetry. A 5xx or a dropped response to a POST
            # may have been applied, so those are left to the task's own retries, which look
            # before they create.
            status_forcelist=[429],
            read=0,
            backoff_factor=1,
            raise_on_status=False,
            max_rate_limit_wait=max_wait,
            secondary_rate_wait=min(60.0, max_wait),
        )
        kwargs: dict[str, Any] = {
            "auth": Auth.Token(conn.password),
            "retry": retry,
            "timeout": int(extra.get("timeout", 30)),
        }
        for pacing in ("seconds_between_requests", "seconds_between_writes"):
            if pacing in extra:
                kwargs[pacing] = float(extra[pacing])
        if conn.host:
            kwargs["base_url"] = _api_url(conn.host, conn.port)
        return Github(**kwargs)

    def get_conn(self) -> Github:
        return self.client

    @contextmanager
    def errors(self, doing: str) -> Iterator[None]:
        """Turn PyGithub's exceptions into ours, naming the operation (never the token)."""
        try:
            yield
        except RateLimitExceededExceedsMaxWait as exc:
            raise GitHubRateLimited(
                doing,
                exc.status,
                f"rate limited; GitHub asks to wait {exc.wait:.0f} s, longer than this task "
                "waits; the task's retries will try again later",
            ) from None
        except RateLimitExceededException as exc:
            raise GitHubRateLimited(doing, exc.status, f"rate limited: {_reason(exc)}") from None
        except UnknownObjectException as exc:
            raise GitHubNotFound(doing, exc.status, _reason(exc)) from None
        except GithubException as exc:
            if _rate_limited(exc):
                raise GitHubRateLimited(doing, exc.status, "rate limited after retries") from None
            raise GitHubError(doing, exc.status, _reason(exc)) from None

    @cached_property
    def login(self) -> str:
        """The bot's own login."""
        with self.errors("reading the authenticated user"):
            return self.client.get_user().login

    def repository(self, full_name: str) -> Repository:
        with self.errors(f"reading repository {full_name}"):
            return self.client.get_repo(full_name)

    def organization(self, org: str) -> Organization:
        with self.errors(f"reading organization {org}"):
            return self.client.get_organization(org)

    def org_status(self, org: str) -> OrgStatus:
        """Whether the org exists and the bot is an active owner (``admin`` membership)."""
        try:
            self.organization(org)
        except GitHubNotFound:
            return OrgStatus.MISSING
        try:
            with self.errors(f"reading the bot's membership of {org}"):
                membership = self.client.get_user().get_organization_membership(org)
        except GitHubNotFound:
            return OrgStatus.BOT_NOT_MEMBER
        if membership.state == "pending":
            return OrgStatus.BOT_INVITED
        return OrgStatus.READY if membership.role == "admin" else OrgStatus.BOT_NOT_OWNER

    def accept_invitation(self, org: str) -> None:
        """Accept the org's pending invitation of the bot: the community's go-ahead."""
        with self.errors(f"accepting the invitation to {org}"):
            self.client.requester.requestJsonAndCheck(
                "PATCH", f"/user/memberships/orgs/{org}", input={"state": "active"}
            )

    def ensure_team(self, org: str, name: str, *, description: str) -> tuple[Team, bool]:
        """The team with this name, created (closed privacy) if missing; ``True`` if created."""
        organization = self.organization(org)
        slug = team_slug(name)
        doing = f"creating team {org}/{slug}"
        try:
            with self.errors(doing):
                return organization.get_team_by_slug(slug), False
        except GitHubNotFound:
            pass
        try:
            with self.errors(doing):
                team = organization.create_team(name, privacy="closed", description=description)
        except GitHubError as exc:
            if exc.status != 422:
                raise
            with self.errors(doing):  # created meanwhile by another run
                return organization.get_team_by_slug(slug), False
        return team, True

    def add_to_team(self, team: Team, login: str, role: TeamRole) -> str:
        """Add a user to a team; GitHub invites to the org anyone not yet in it.

        Returns the membership state: ``active``, or ``pending`` while the invitation is open.
        """
        with self.errors(f"adding {login} to team {team.slug}"):
            _, data = self.client.requester.requestJsonAndCheck(
                "PUT", f"{team.url}/memberships/{login}", input={"role": role.value}
            )
        return str(data.get("state", "pending"))

    def ensure_repo_from_template(
        self, org: str, name: str, template: str, *, description: str
    ) -> tuple[Repository, bool]:
        """``org/name`` generated from the template repository if missing; ``True`` if created."""
        full_name = f"{org}/{name}"
        try:
            return self.repository(full_name), False
        except GitHubNotFound:
            pass
        organization = self.organization(org)
        source = self.repository(template)
        doing = f"creating {full_name} from template {template}"
        try:
            with self.errors(doing):
                repo = organization.create_repo_from_template(
                    name, source, description=description, private=False
                )
        except GitHubError as exc:
            if exc.status != 422 or "already exists" not in str(exc).lower():
                raise
            return self.repository(full_name), False
        return repo, True

    def ensure_label(self, repo: Repository, name: str, *, color: str, description: str) -> None:
        try:
            with self.errors(f"reading label {name!r} of {repo.full_name}"):
                repo.get_label(name)
                return
        except GitHubNotFound:
            pass
        try:
            with self.errors(f"creating label {name!r} in {repo.full_name}"):
                repo.create_label(name, color, description)
        except GitHubError as exc:
            if exc.status != 422:
                raise

    def ensure_issue(
        self, repo: Repository, title: str, body: str, *, label: str
    ) -> tuple[Issue, bool]:
        """The issue with this title among those carrying ``label``, opened if there is none.

        The label keeps the lookup to our own issues in a busy repository; ``True`` if opened.
        """
        with self.errors(f"looking for issue {title!r} in {repo.full_name}"):
            for issue in repo.get_issues(state="all", labels=[label]):
                if issue.title == title:
                    return issue, False
        with self.errors(f"opening issue {title!r} in {repo.full_name}"):
            return repo.create_issue(title=title, body=body, labels=[label]), True

    def update_issue_body(self, issue: Issue, body: str) -> bool:
        """Replace an issue's body when it differs; ``True`` if it was changed."""
        if (issue.body or "") == body:
            return False
        with self.errors(f"updating issue #{issue.number}"):
            issue.edit(body=body)
        return True

    def release_tags(self, full_name: str, *, limit: int = 100) -> list[str]:
        """Tags of the repository's published releases (no drafts or pre-releases), newest
        first, from the ``limit`` most recent."""
        repo = self.repository(full_name)
        tags = []
        with self.errors(f"listing releases of {full_name}"):
            for i, release in enumerate(repo.get_releases()):
                if i >= limit:
                    break
                if not release.draft and not release.prerelease:
                    tags.append(release.tag_name)
        return tags

    def set_actions_secret(self, repo: Repository, name: str, value: str) -> None:
        """Store a GitHub Actions secret (PyGithub encrypts it with the repository's key)."""
        with self.errors(f"setting Actions secret {name} of {repo.full_name}"):
            repo.create_secret(name, value, secret_type="actions")


def _rate_limited(exc: GithubException) -> bool:
    """A rate limit whose body was consumed by the retries: only its headers tell."""
    headers = {k.lower(): v for k, v in (exc.headers or {}).items()}
    return exc.status in (403, 429) and (
        headers.get("x-ratelimit-remaining") == "0" or "retry-after" in headers
    )


def team_slug(name: str) -> str:
    """GitHub's slug for a team name: lowercase, runs of other characters become hyphens."""
    return re.sub(r"[^a-z0-9_]+", "-", name.lower()).strip("-")


def _api_url(host: str, port: int | None) -> str:
    """A GitHub Enterprise Server API URL from the connection's host (with or without scheme)."""
    if "://" in host:
        return host.rstrip("/")
    netloc = f"{host}:{port}" if port else host
    return f"https://{netloc}/api/v3"
