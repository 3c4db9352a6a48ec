"""The GitHub hook at the HTTP boundary: PyGithub talking to a stateful fake GitHub on loopback.

``FakeGitHub`` answers the REST endpoints the pipelines use with bodies in the shapes
api.github.com returns (and its real error messages), keeps state across requests so that a
re-run meets what the first run created, and can inject faults (rate limits) in front of any
route. The other GitHub tests (infra repository, sensors, operators) import it from here.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from nacl.public import PrivateKey, SealedBox

from engagements.hooks import connection_exists
from engagements.hooks.github import (
    GitHubError,
    GitHubHook,
    GitHubNotFound,
    GitHubRateLimited,
    OrgStatus,
    TeamRole,
)

TOKEN = "ghp_fake-token-never-logged"
NOT_FOUND = {
    "message": "Not Found",
    "documentation_url": "https://docs.github.com/rest",
    "status": "404",
}


def _sha(*parts: Any) -> str:
    return hashlib.sha1(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def blob_sha(content: str) -> str:
    data = content.encode()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def validation_failed(summary: str, **error: str) -> dict[str, Any]:
    return {
        "message": summary,
        "errors": [error] if error else [],
        "documentation_url": "https://docs.github.com/rest",
        "status": "422",
    }


@dataclass
class FakeRepo:
    owner: str
    name: str
    default_branch: str = "main"
    is_template: bool = False
    commits: dict[str, dict[str, Any]] = field(default_factory=dict)
    trees: dict[str, dict[str, str]] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)
    pulls: list[dict[str, Any]] = field(default_factory=list)
    issues: list[dict[str, Any]] = field(default_factory=list)
    labels: set[str] = field(default_factory=set)
    secrets: dict[str, dict[str, str]] = field(default_factory=dict)
    key: PrivateKey = field(default_factory=PrivateKey.generate)

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    def add_tree(self, files: dict[str, str]) -> str:
        sha = _sha("tree", files)
        self.trees[sha] = dict(files)
        return sha

    def add_commit(self, files: dict[str, str], parents: list[str], message: str) -> str:
        tree = self.add_tree(files)
        sha = _sha("commit", tree, parents, message)
        self.commits[sha] = {"tree": tree, "parents": parents, "message": message}
        return sha

    def files_at(self, ref: str) -> dict[str, str]:
        sha = self.refs.get(ref, ref)
        return self.trees[self.commits[sha]["tree"]]

    def ancestors(self, sha: str) -> set[str]:
        seen, todo = set(), [sha]
        while todo:
            current = todo.pop()
            if current not in seen:
                seen.add(current)
                todo.extend(self.commits[current]["parents"])
        return seen

    def decrypt(self, name: str) -> str:
        sealed = base64.b64decode(self.secrets[name]["encrypted_value"])
        return SealedBox(self.key).decrypt(sealed).decode()


@dataclass
class Fault:
    method: str
    pattern: str
    status: int
    body: Any
    headers: dict[str, str]
    times: int


class FakeGitHub:
    """A small, stateful GitHub REST API on 127.0.0.1 (see the module docstring)."""

    def __init__(self, bot: str = "engagements-bot") -> None:
        self.bot = bot
        self.repos: dict[str, FakeRepo] = {}
        self.orgs: dict[str, dict[str, Any]] = {}
        self.users: dict[str, int] = {bot: 1}
        self.requests: list[tuple[str, str, Any]] = []
        self.faults: list[Fault] = []
        self.numbers = itertools.count(1)
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                with fake.lock:
                    status, payload, headers = fake.dispatch(
                        self.command, self.path, body, dict(self.headers)
                    )
                data = b"" if payload is None else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> FakeGitHub:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    # Setting up state, as a test's "given".

    def add_user(self, login: str) -> None:
        self.users.setdefault(login, len(self.users) + 1)

    def add_org(self, login: str, *, bot_role: str | None = "admin", bot_state: str = "active"):
        self.orgs[login] = {
            "id": 1000 + len(self.orgs),
            "teams": {},
            "members": {},
            "bot": None if bot_role is None else {"role": bot_role, "state": bot_state},
        }

    def add_repo(
        self,
        full_name: str,
        files: dict[str, str] | None = None,
        *,
        is_template: bool = False,
        default_branch: str = "main",
    ) -> FakeRepo:
        owner, name = full_name.split("/")
        repo = FakeRepo(owner, name, default_branch=default_branch, is_template=is_template)
        repo.refs[default_branch] = repo.add_commit(
            files or {"README.md": "# infra\n"}, [], "Initial commit"
        )
        self.repos[full_name] = repo
        return repo

    def merge(self, full_name: str, number: int) -> None:
        """What pressing "Merge" does: a merge commit on the base, the pull request merged."""
        repo = self.repos[full_name]
        pull = next(p for p in repo.pulls if p["number"] == number)
        head = repo.refs[pull["head"]]
        base = repo.refs[pull["base"]]
        files = repo.files_at(head)
        repo.refs[pull["base"]] = repo.add_commit(files, [base, head], f"Merge #{number}")
        pull.update(state="closed", merged_at="2026-12-01T10:00:00Z")

    def fail(
        self,
        method: str,
        pattern: str,
        status: int,
        body: Any,
        headers: dict[str, str] | None = None,
        times: int = 1,
    ) -> None:
        self.faults.append(Fault(method, pattern, status, body, headers or {}, times))

    def calls(self, method: str, pattern: str) -> list[tuple[str, str, Any]]:
        return [r for r in self.requests if r[0] == method and re.search(pattern, r[1])]

    # JSON shapes.

    def _user(self, login: str) -> dict[str, Any]:
        return {
            "login": login,
            "id": self.users[login],
            "type": "User",
            "url": f"{self.url}/users/{login}",
            "html_url": f"https://github.com/{login}",
        }

    def _org(self, login: str) -> dict[str, Any]:
        return {
            "login": login,
            "id": self.orgs[login]["id"],
            "url": f"{self.url}/orgs/{login}",
            "repos_url": f"{self.url}/orgs/{login}/repos",
            "html_url": f"https://github.com/{login}",
            "type": "Organization",
        }

    def _repo(self, repo: FakeRepo) -> dict[str, Any]:
        return {
            "id": abs(hash(repo.full_name)) % 10**8,
            "name": repo.name,
            "full_name": repo.full_name,
            "owner": {
                "login": repo.owner,
                "id": 7,
                "url": f"{self.url}/users/{repo.owner}",
                "type": "Organization",
            },
            "private": False,
            "html_url": f"https://github.com/{repo.full_name}",
            "url": f"{self.url}/repos/{repo.full_name}",
            "default_branch": repo.default_branch,
            "is_template": repo.is_template,
            "visibility": "public",
        }

    def _commit(self, repo: FakeRepo, sha: str) -> dict[str, Any]:
        commit = repo.commits[sha]
        base = f"{self.url}/repos/{repo.full_name}/git"
        return {
            "sha": sha,
            "node_id": "C_" + sha[:8],
            "url": f"{base}/commits/{sha}",
            "html_url": f"https://github.com/{repo.full_name}/commit/{sha}",
            "message": commit["message"],
            "tree": {"sha": commit["tree"], "url": f"{base}/trees/{commit['tree']}"},
            "parents": [{"sha": p, "url": f"{base}/commits/{p}"} for p in commit["parents"]],
            "author": {"name": "bot", "email": "bot@example.org", "date": "2026-12-01T10:00:00Z"},
            "committer": {
                "name": "bot",
                "email": "bot@example.org",
                "date": "2026-12-01T10:00:00Z",
            },
        }

    def _ref(self, repo: FakeRepo, branch: str) -> dict[str, Any]:
        sha = repo.refs[branch]
        return {
            "ref": f"refs/heads/{branch}",
            "url": f"{self.url}/repos/{repo.full_name}/git/refs/heads/{branch}",
            "object": {
                "sha": sha,
                "type": "commit",
                "url": f"{self.url}/repos/{repo.full_name}/git/commits/{sha}",
            },
        }

    def _pull(self, repo: FakeRepo, pull: dict[str, Any]) -> dict[str, Any]:
        return {
            "number": pull["number"],
            "id": 5000 + pull["number"],
            "url": f"{self.url}/repos/{repo.full_name}/pulls/{pull['number']}",
            "html_url": f"https://github.com/{repo.full_name}/pull/{pull['number']}",
            "state": pull["state"],
            "title": pull["title"],
            "body": pull["body"],
            "merged_at": pull.get("merged_at"),
            "draft": False,
            "head": {
                "ref": pull["head"],
                "sha": repo.refs.get(pull["head"], ""),
                "label": f"{repo.owner}:{pull['head']}",
            },
            "base": {
                "ref": pull["base"],
                "sha": repo.refs[pull["base"]],
                "label": f"{repo.owner}:{pull['base']}",
            },
            "user": self._user(self.bot),
        }

    def _issue(self, repo: FakeRepo, issue: dict[str, Any]) -> dict[str, Any]:
        return {
            "number": issue["number"],
            "id": 9000 + issue["number"],
            "url": f"{self.url}/repos/{repo.full_name}/issues/{issue['number']}",
            "html_url": f"https://github.com/{repo.full_name}/issues/{issue['number']}",
            "title": issue["title"],
            "body": issue["body"],
            "state": issue["state"],
            "labels": [{"name": n, "color": "ededed"} for n in issue["labels"]],
            "user": self._user(self.bot),
        }

    def _team(self, org: str, team: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": team["id"],
            "name": team["name"],
            "slug": team["slug"],
            "description": team["description"],
            "privacy": team["privacy"],
            "url": f"{self.url}/orgs/{org}/teams/{team['slug']}",
            "html_url": f"https://github.com/orgs/{org}/teams/{team['slug']}",
            "organization": self._org(org),
        }

    # Routing.

    def dispatch(self, method: str, path: str, body: Any, headers: dict[str, str]):
        parts = urlsplit(path)
        route, query = unquote(parts.path), {k: v[0] for k, v in parse_qs(parts.query).items()}
        self.requests.append((method, route, body))
        if headers.get("Authorization") != f"token {TOKEN}":
            return 401, {"message": "Bad credentials"}, {}
        for fault in self.faults:
            if fault.method == method and re.search(fault.pattern, route) and fault.times:
                fault.times -= 1
                return fault.status, fault.body, fault.headers
        for verb, pattern, handler in self.ROUTES:
            match = re.fullmatch(pattern, route)
            if verb == method and match:
                return handler(self, *match.groups(), body=body, query=query)
        return 404, NOT_FOUND, {}

    def _get_repo(self, owner, name):
        return self.repos.get(f"{owner}/{name}")

    def r_user(self, *, body, query):
        return 200, self._user(self.bot), {}

    def r_get_user(self, login, *, body, query):
        if login not in self.users:
            return 404, NOT_FOUND, {}
        return 200, self._user(login), {}

    def r_org(self, org, *, body, query):
        if org not in self.orgs:
            return 404, NOT_FOUND, {}
        return 200, self._org(org), {}

    def r_membership(self, org, *, body, query):
        bot = self.orgs.get(org, {}).get("bot")
        if not bot:
            return 404, NOT_FOUND, {}
        return (
            200,
            {
                "url": f"{self.url}/orgs/{org}/memberships/{self.bot}",
                "state": bot["state"],
                "role": bot["role"],
                "organization_url": f"{self.url}/orgs/{org}",
                "organization": self._org(org),
                "user": self._user(self.bot),
            },
            {},
        )

    def r_accept(self, org, *, body, query):
        bot = self.orgs.get(org, {}).get("bot")
        if not bot:
            return 404, NOT_FOUND, {}
        bot["state"] = body["state"]
        return self.r_membership(org, body=None, query=query)

    def r_get_team(self, org, slug, *, body, query):
        team = self.orgs.get(org, {}).get("teams", {}).get(slug)
        if team is None:
            return 404, NOT_FOUND, {}
        return 200, self._team(org, team), {}

    def r_create_team(self, org, *, body, query):
        teams = self.orgs[org]["teams"]
        slug = re.sub(r"[^a-z0-9_]+", "-", body["name"].lower()).strip("-")
        if slug in teams:
            return (
                422,
                validation_failed(
                    "Validation Failed",
                    resource="Team",
                    code="custom",
                    field="name",
                    message="Name must be unique for this org",
                ),
                {},
            )
        teams[slug] = {
            "id": 300 + len(teams),
            "name": body["name"],
            "slug": slug,
            "description": body.get("description"),
            "privacy": body.get("privacy", "secret"),
            "members": {},
        }
        return 201, self._team(org, teams[slug]), {}

    def r_team_membership(self, org, slug, login, *, body, query):
        if login not in self.users:
            return 404, NOT_FOUND, {}
        org_state = self.orgs[org]
        team = org_state["teams"][slug]
        state = "active" if login in org_state["members"] else "pending"
        team["members"][login] = {"role": body["role"], "state": state}
        return (
            200,
            {
                "url": f"{self.url}/orgs/{org}/teams/{slug}/memberships/{login}",
                "role": body["role"],
                "state": state,
            },
            {},
        )

    def r_repo(self, owner, name, *, body, query):
        repo = self._get_repo(owner, name)
        if repo is None:
            return 404, NOT_FOUND, {}
        return 200, self._repo(repo), {}

    def r_generate(self, owner, name, *, body, query):
        template = self._get_repo(owner, name)
        if template is None:
            return 404, NOT_FOUND, {}
        if not template.is_template:
            return 422, validation_failed(f"{owner}/{name} is not a template repository"), {}
        full_name = f"{body['owner']}/{body['name']}"
        if full_name in self.repos:
            return (
                422,
                validation_failed(
                    "Unprocessable Entity",
                    resource="Repository",
                    code="custom",
                    field="name",
                    message="name already exists on this account",
                ),
                {},
            )
        repo = self.add_repo(full_name, template.files_at(template.default_branch))
        return 201, self._repo(repo), {}

    def r_branch(self, owner, name, branch, *, body, query):
        repo = self._get_repo(owner, name)
        if repo is None or branch not in repo.refs:
            return 404, {"message": "Branch not found", "status": "404"}, {}
        sha = repo.refs[branch]
        return 200, {"name": branch, "commit": self._commit(repo, sha), "protected": False}, {}

    def r_get_ref(self, owner, name, branch, *, body, query):
        repo = self._get_repo(owner, name)
        if repo is None or branch not in repo.refs:
            return 404, NOT_FOUND, {}
        return 200, self._ref(repo, branch), {}

    def r_create_ref(self, owner, name, *, body, query):
        repo = self._get_repo(owner, name)
        branch = body["ref"].removeprefix("refs/heads/")
        if branch in repo.refs:
            return 422, validation_failed("Reference already exists"), {}
        repo.refs[branch] = body["sha"]
        return 201, self._ref(repo, branch), {}

    def r_update_ref(self, owner, name, branch, *, body, query):
        repo = self._get_repo(owner, name)
        if not body.get("force") and repo.refs[branch] not in repo.ancestors(body["sha"]):
            return 422, validation_failed("Update is not a fast forward"), {}
        repo.refs[branch] = body["sha"]
        return 200, self._ref(repo, branch), {}

    def r_get_commit(self, owner, name, sha, *, body, query):
        repo = self._get_repo(owner, name)
        if sha not in repo.commits:
            return 404, NOT_FOUND, {}
        return 200, self._commit(repo, sha), {}

    def r_contents(self, owner, name, path, *, body, query):
        repo = self._get_repo(owner, name)
        files = repo.files_at(query.get("ref", repo.default_branch))
        path = path.strip("/")
        if path in files:
            return 200, self._content(repo, path, files[path]), {}
        prefix = f"{path}/" if path else ""
        entries: dict[str, dict[str, Any]] = {}
        for file_path, content in files.items():
            if file_path.startswith(prefix):
                child = file_path[len(prefix) :].split("/")[0]
                if "/" in file_path[len(prefix) :]:
                    entries.setdefault(
                        child, {"name": child, "path": prefix + child, "type": "dir"}
                    )
                else:
                    entries[child] = self._content(repo, file_path, content)
        if not entries:
            return 404, NOT_FOUND, {}
        listing = []
        for child in sorted(entries):
            entry = entries[child]
            entry.setdefault("sha", _sha("dir", entry["path"]))
            entry.pop("content", None)
            listing.append(entry)
        return 200, listing, {}

    def _content(self, repo: FakeRepo, path: str, content: str) -> dict[str, Any]:
        return {
            "type": "file",
            "name": path.rsplit("/", 1)[-1],
            "path": path,
            "sha": blob_sha(content),
            "size": len(content.encode()),
            "url": f"{self.url}/repos/{repo.full_name}/contents/{path}",
            "encoding": "base64",
            "content": base64.b64encode(content.encode()).decode(),
        }

    def r_create_tree(self, owner, name, *, body, query):
        repo = self._get_repo(owner, name)
        files = dict(repo.trees[body["base_tree"]]) if body.get("base_tree") else {}
        for entry in body["tree"]:
            if "sha" in entry and entry["sha"] is None:
                if entry["path"] not in files:
                    return 422, validation_failed("GitRPC::BadObjectState"), {}
                del files[entry["path"]]
            else:
                files[entry["path"]] = entry["content"]
        sha = repo.add_tree(files)
        tree = [
            {"path": p, "mode": "100644", "type": "blob", "sha": blob_sha(c)}
            for p, c in sorted(files.items())
        ]
        url = f"{self.url}/repos/{repo.full_name}/git/trees/{sha}"
        return 201, {"sha": sha, "url": url, "tree": tree, "truncated": False}, {}

    def r_create_commit(self, owner, name, *, body, query):
        repo = self._get_repo(owner, name)
        files = repo.trees[body["tree"]]
        sha = repo.add_commit(files, body["parents"], body["message"])
        return 201, self._commit(repo, sha), {}

    def r_list_pulls(self, owner, name, *, body, query):
        repo = self._get_repo(owner, name)
        pulls = [
            p
            for p in repo.pulls
            if query.get("state", "open") in ("all", p["state"])
            and ("head" not in query or query["head"] == f"{owner}:{p['head']}")
            and ("base" not in query or query["base"] == p["base"])
        ]
        if query.get("direction") == "desc":
            pulls = pulls[::-1]
        return 200, [self._pull(repo, p) for p in pulls], {}

    def r_create_pull(self, owner, name, *, body, query):
        repo = self._get_repo(owner, name)
        head, base = body["head"], body["base"]
        if any(p["head"] == head and p["state"] == "open" for p in repo.pulls):
            message = f"A pull request already exists for {owner}:{head}."
            return 422, validation_failed("Validation Failed", code="custom", message=message), {}
        if repo.refs[head] in repo.ancestors(repo.refs[base]):
            message = f"No commits between {base} and {head}"
            return 422, validation_failed("Validation Failed", code="custom", message=message), {}
        pull = {
            "number": next(self.numbers),
            "head": head,
            "base": base,
            "title": body["title"],
            "body": body.get("body"),
            "state": "open",
        }
        repo.pulls.append(pull)
        return 201, self._pull(repo, pull), {}

    def r_edit_pull(self, owner, name, number, *, body, query):
        repo = self._get_repo(owner, name)
        pull = next(p for p in repo.pulls if p["number"] == int(number))
        pull.update({k: v for k, v in body.items() if k in ("title", "body", "state")})
        return 200, self._pull(repo, pull), {}

    def r_compare(self, owner, name, base, head, *, body, query):
        repo = self._get_repo(owner, name)
        base_sha, head_sha = repo.refs.get(base, base), repo.refs.get(head, head)
        if base_sha == head_sha:
            status = "identical"
        elif head_sha in repo.ancestors(base_sha):
            status = "behind"
        elif base_sha in repo.ancestors(head_sha):
            status = "ahead"
        else:
            status = "diverged"
        # As GitHub compares base...head: commits and files since their merge base.
        common = repo.ancestors(base_sha) & repo.ancestors(head_sha)
        merge_base = next(
            c for c in common if not any(c in repo.ancestors(o) - {o} for o in common)
        )
        before, after = repo.files_at(merge_base), repo.files_at(head_sha)
        files = [
            {
                "filename": path,
                "status": "added"
                if path not in before
                else "removed"
                if path not in after
                else "modified",
                "sha": _sha("blob", after.get(path, "")),
            }
            for path in sorted(set(before) | set(after))
            if before.get(path) != after.get(path)
        ]
        url = f"{self.url}/repos/{repo.full_name}/compare/{base}...{head}"
        answer = {
            "url": url,
            "status": status,
            "ahead_by": len(repo.ancestors(head_sha) - repo.ancestors(base_sha)),
            "behind_by": len(repo.ancestors(base_sha) - repo.ancestors(head_sha)),
            "total_commits": len(repo.ancestors(head_sha) - repo.ancestors(base_sha)),
            "commits": [],
            "files": files,
        }
        return 200, answer, {}

    def r_get_label(self, owner, name, label, *, body, query):
        repo = self._get_repo(owner, name)
        if label not in repo.labels:
            return 404, NOT_FOUND, {}
        url = f"{self.url}/repos/{repo.full_name}/labels/{label}"
        return 200, {"name": label, "color": "ededed", "url": url}, {}

    def r_create_label(self, owner, name, *, body, query):
        repo = self._get_repo(owner, name)
        if body["name"] in repo.labels:
            return (
                422,
                validation_failed(
                    "Validation Failed", resource="Label", code="already_exists", field="name"
                ),
                {},
            )
        repo.labels.add(body["name"])
        url = f"{self.url}/repos/{repo.full_name}/labels/{body['name']}"
        return 201, {"name": body["name"], "color": body["color"], "url": url}, {}

    def r_list_issues(self, owner, name, *, body, query):
        repo = self._get_repo(owner, name)
        wanted = set(filter(None, query.get("labels", "").split(",")))
        issues = [
            i
            for i in repo.issues
            if query.get("state", "open") in ("all", i["state"]) and wanted <= set(i["labels"])
        ]
        return 200, [self._issue(repo, i) for i in issues], {}

    def r_create_issue(self, owner, name, *, body, query):
        repo = self._get_repo(owner, name)
        issue = {
            "number": next(self.numbers),
            "title": body["title"],
            "body": body.get("body"),
            "labels": body.get("labels", []),
            "state": "open",
        }
        repo.issues.append(issue)
        repo.labels.update(issue["labels"])
        return 201, self._issue(repo, issue), {}

    def r_public_key(self, owner, name, *, body, query):
        repo = self._get_repo(owner, name)
        if repo is None:
            return 404, NOT_FOUND, {}
        key = base64.b64encode(bytes(repo.key.public_key)).decode()
        return 200, {"key_id": "568250167242549743", "key": key}, {}

    def r_put_secret(self, owner, name, secret, *, body, query):
        repo = self._get_repo(owner, name)
        created = secret not in repo.secrets
        repo.secrets[secret] = body
        return (201 if created else 204), None, {}

    R = r"([^/]+)"
    ROUTES = (
        ("GET", r"/user", r_user),
        ("GET", rf"/users/{R}", r_get_user),
        ("GET", rf"/orgs/{R}", r_org),
        ("GET", rf"/user/memberships/orgs/{R}", r_membership),
        ("PATCH", rf"/user/memberships/orgs/{R}", r_accept),
        ("GET", rf"/orgs/{R}/teams/{R}", r_get_team),
        ("POST", rf"/orgs/{R}/teams", r_create_team),
        ("PUT", rf"/orgs/{R}/teams/{R}/memberships/{R}", r_team_membership),
        ("GET", rf"/repos/{R}/{R}", r_repo),
        ("POST", rf"/repos/{R}/{R}/generate", r_generate),
        ("GET", rf"/repos/{R}/{R}/branches/(.+)", r_branch),
        ("GET", rf"/repos/{R}/{R}/git/ref/heads/(.+)", r_get_ref),
        ("POST", rf"/repos/{R}/{R}/git/refs", r_create_ref),
        ("PATCH", rf"/repos/{R}/{R}/git/refs/heads/(.+)", r_update_ref),
        ("GET", rf"/repos/{R}/{R}/git/commits/{R}", r_get_commit),
        ("GET", rf"/repos/{R}/{R}/contents/?(.*)", r_contents),
        ("POST", rf"/repos/{R}/{R}/git/trees", r_create_tree),
        ("POST", rf"/repos/{R}/{R}/git/commits", r_create_commit),
        ("GET", rf"/repos/{R}/{R}/pulls", r_list_pulls),
        ("POST", rf"/repos/{R}/{R}/pulls", r_create_pull),
        ("PATCH", rf"/repos/{R}/{R}/pulls/(\d+)", r_edit_pull),
        ("GET", rf"/repos/{R}/{R}/compare/(.+)\.\.\.(.+)", r_compare),
        ("GET", rf"/repos/{R}/{R}/labels/(.+)", r_get_label),
        ("POST", rf"/repos/{R}/{R}/labels", r_create_label),
        ("GET", rf"/repos/{R}/{R}/issues", r_list_issues),
        ("POST", rf"/repos/{R}/{R}/issues", r_create_issue),
        ("GET", rf"/repos/{R}/{R}/actions/secrets/public-key", r_public_key),
        ("PUT", rf"/repos/{R}/{R}/actions/secrets/{R}", r_put_secret),
    )


def github_connection(url: str, **extra: Any) -> str:
    """The ``github_default`` connection as Airflow reads it from the environment."""
    return json.dumps(
        {
            "conn_type": "github",
            "host": url,
            "password": TOKEN,
            "extra": {"seconds_between_requests": 0, "seconds_between_writes": 0, **extra},
        }
    )


@pytest.fixture
def fake_github(monkeypatch):
    with FakeGitHub() as fake:
        monkeypatch.setenv("AIRFLOW_CONN_GITHUB_DEFAULT", github_connection(fake.url))
        yield fake


def rate_limited(reset_in: float) -> tuple[int, dict[str, Any], dict[str, str]]:
    reset = int(time.time() + reset_in)
    return (
        403,
        {
            "message": "API rate limit exceeded for user ID 1.",
            "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
            "status": "403",
        },
        {
            "X-RateLimit-Limit": "5000",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": str(reset),
            "X-RateLimit-Resource": "core",
        },
    )


@pytest.fixture
def sleeps(monkeypatch):
    """Record the waits urllib3 would sleep between retries instead of sleeping them."""
    import urllib3.util.retry

    waited: list[float] = []
    monkeypatch.setattr(urllib3.util.retry.time, "sleep", waited.append)
    return waited


def test_connection_contract():
    hook = GitHubHook()
    assert (hook.conn_name_attr, hook.default_conn_name, hook.conn_type) == (
        "github_conn_id",
        "github_default",
        "github",
    )
    assert hook.hook_name


def test_client_is_built_on_first_use_only(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_GITHUB_DEFAULT", raising=False)
    hook = GitHubHook()  # no connection needed to build the hook
    assert connection_exists("github_default") is False
    with pytest.raises(Exception, match="github_default"):
        _ = hook.client


def test_enterprise_host_becomes_the_api_url(monkeypatch):
    conn = {"conn_type": "github", "host": "github.example.org", "password": TOKEN}
    monkeypatch.setenv("AIRFLOW_CONN_GITHUB_DEFAULT", json.dumps(conn))
    client = GitHubHook().client
    assert client.requester.base_url == "https://github.example.org/api/v3"


def test_connection_without_a_token_is_refused(monkeypatch):
    conn = {"conn_type": "github", "host": "http://127.0.0.1:9"}
    monkeypatch.setenv("AIRFLOW_CONN_GITHUB_DEFAULT", json.dumps(conn))
    with pytest.raises(GitHubError, match="token as its password"):
        _ = GitHubHook().client


def test_org_status_reports_each_stage_of_readiness(fake_github):
    fake_github.add_org("ready-org")
    fake_github.add_org("member-org", bot_role="member")
    fake_github.add_org("invited-org", bot_state="pending")
    fake_github.add_org("stranger-org", bot_role=None)
    hook = GitHubHook()
    assert hook.org_status("ready-org") is OrgStatus.READY
    assert hook.org_status("member-org") is OrgStatus.BOT_NOT_OWNER
    assert hook.org_status("invited-org") is OrgStatus.BOT_INVITED
    assert hook.org_status("stranger-org") is OrgStatus.BOT_NOT_MEMBER
    assert hook.org_status("no-such-org") is OrgStatus.MISSING


def test_the_bot_accepts_a_pending_invitation(fake_github):
    fake_github.add_org("invited-org", bot_state="pending")
    hook = GitHubHook()
    hook.accept_invitation("invited-org")
    assert hook.org_status("invited-org") is OrgStatus.READY
    ((_, _, body),) = fake_github.calls("PATCH", "/user/memberships/orgs/invited-org$")
    assert body == {"state": "active"}


def test_not_found_names_what_was_being_done(fake_github):
    with pytest.raises(GitHubNotFound, match=r"reading repository nobody/nothing: Not Found"):
        GitHubHook().repository("nobody/nothing")


def test_ensure_team_creates_once_and_survives_a_concurrent_create(fake_github):
    fake_github.add_org("openscience-org")
    hook = GitHubHook()
    team, created = hook.ensure_team("openscience-org", "hub-admins", description="Admins")
    assert created
    assert team.slug == "hub-admins"
    again, created_again = hook.ensure_team("openscience-org", "hub-admins", description="Admins")
    assert (again.id, created_again) == (team.id, False)
    assert len(fake_github.calls("POST", "/teams$")) == 1

    # Another run created it between our lookup and our create: GitHub's 422 is not an error.
    fake_github.fail("GET", "/orgs/openscience-org/teams/hub-users$", 404, NOT_FOUND)
    fake_github.orgs["openscience-org"]["teams"]["hub-users"] = {
        "id": 999,
        "name": "hub-users",
        "slug": "hub-users",
        "description": "",
        "privacy": "closed",
        "members": {},
    }
    raced, created = hook.ensure_team("openscience-org", "hub-users", description="Users")
    assert (raced.id, created) == (999, False)


def test_add_to_team_invites_outsiders_and_is_repeatable(fake_github):
    fake_github.add_org("openscience-org")
    fake_github.add_user("adalovelace")
    fake_github.orgs["openscience-org"]["members"]["adalovelace"] = "member"
    fake_github.add_user("ghopper")
    hook = GitHubHook()
    team, _ = hook.ensure_team("openscience-org", "hub-admins", description="Admins")
    assert hook.add_to_team(team, "adalovelace", TeamRole.MAINTAINER) == "active"
    assert hook.add_to_team(team, "ghopper", TeamRole.MAINTAINER) == "pending"
    assert hook.add_to_team(team, "ghopper", TeamRole.MAINTAINER) == "pending"
    members = fake_github.orgs["openscience-org"]["teams"]["hub-admins"]["members"]
    assert members == {
        "adalovelace": {"role": "maintainer", "state": "active"},
        "ghopper": {"role": "maintainer", "state": "pending"},
    }
    with pytest.raises(GitHubNotFound, match="adding nobody-here to team hub-admins"):
        hook.add_to_team(team, "nobody-here", TeamRole.MEMBER)


def test_repo_from_template_is_created_once(fake_github):
    fake_github.add_org("openscience-org")
    fake_github.add_repo(
        "2i2c-org/hub-user-image-template", {"environment.yml": "deps\n"}, is_template=True
    )
    hook = GitHubHook()
    repo, created = hook.ensure_repo_from_template(
        "openscience-org", "hub-user-image", "2i2c-org/hub-user-image-template", description="x"
    )
    assert created
    assert repo.full_name == "openscience-org/hub-user-image"
    assert fake_github.repos["openscience-org/hub-user-image"].files_at("main") == {
        "environment.yml": "deps\n"
    }
    _, created_again = hook.ensure_repo_from_template(
        "openscience-org", "hub-user-image", "2i2c-org/hub-user-image-template", description="x"
    )
    assert created_again is False
    assert len(fake_github.calls("POST", "/generate$")) == 1


def test_repo_from_template_treats_422_already_exists_as_done(fake_github):
    fake_github.add_org("openscience-org")
    fake_github.add_repo("2i2c-org/community-docs-template", is_template=True)
    fake_github.add_repo("openscience-org/hub-docs")
    # The repository appears only after our lookup (another run created it).
    fake_github.fail("GET", "/repos/openscience-org/hub-docs$", 404, NOT_FOUND)
    repo, created = GitHubHook().ensure_repo_from_template(
        "openscience-org", "hub-docs", "2i2c-org/community-docs-template", description="docs"
    )
    assert (repo.full_name, created) == ("openscience-org/hub-docs", False)


def test_a_template_that_is_not_a_template_is_a_clear_error(fake_github):
    fake_github.add_org("openscience-org")
    fake_github.add_repo("binder-examples/requirements")
    with pytest.raises(GitHubError, match=r"is not a template repository.*HTTP 422"):
        GitHubHook().ensure_repo_from_template(
            "openscience-org", "hub-binder", "binder-examples/requirements", description="b"
        )


def test_issue_is_opened_once_by_title(fake_github):
    infra = fake_github.add_repo("2i2c-org/infrastructure")
    hook = GitHubHook()
    repo = hook.repository("2i2c-org/infrastructure")
    hook.ensure_label(repo, "engagement:openscience", color="0e8a16", description="d")
    hook.ensure_label(repo, "engagement:openscience", color="0e8a16", description="d")
    first, opened = hook.ensure_issue(
        repo, "[openscience] GPU", "body", label="engagement:openscience"
    )
    again, opened_again = hook.ensure_issue(
        repo, "[openscience] GPU", "body", label="engagement:openscience"
    )
    assert opened
    assert not opened_again
    assert again.number == first.number
    assert [i["title"] for i in infra.issues] == ["[openscience] GPU"]
    assert len(fake_github.calls("POST", "/labels$")) == 1


def test_actions_secret_is_encrypted_for_the_repository(fake_github):
    repo_state = fake_github.add_repo("openscience-org/hub-user-image")
    hook = GitHubHook()
    repo = hook.repository("openscience-org/hub-user-image")
    hook.set_actions_secret(repo, "QUAY_PASSWORD", "robot-token-value")
    (put,) = fake_github.calls("PUT", "/actions/secrets/QUAY_PASSWORD$")
    assert "robot-token-value" not in json.dumps(put[2])
    assert repo_state.decrypt("QUAY_PASSWORD") == "robot-token-value"


def test_rate_limit_waits_until_the_reset_then_retries(fake_github, sleeps):
    fake_github.add_org("openscience-org")
    status, body, headers = rate_limited(reset_in=20)
    fake_github.fail("GET", "/orgs/openscience-org$", status, body, headers)
    assert GitHubHook().org_status("openscience-org") is OrgStatus.READY
    assert len(fake_github.calls("GET", "^/orgs/openscience-org$")) == 2
    assert len(sleeps) == 1
    assert 18 <= sleeps[0] <= 22


def test_retry_after_is_honoured(fake_github, sleeps):
    fake_github.add_org("openscience-org")
    body = {"message": "You have exceeded a secondary rate limit.", "status": "403"}
    fake_github.fail("GET", "/orgs/openscience-org$", 403, body, {"Retry-After": "7"})
    assert GitHubHook().org_status("openscience-org") is OrgStatus.READY
    assert sleeps == [7]


def test_a_rate_limit_longer_than_the_bound_fails_fast_for_airflow_to_retry(fake_github, sleeps):
    fake_github.add_org("openscience-org")
    status, body, headers = rate_limited(reset_in=3600)
    fake_github.fail("GET", "/orgs/openscience-org$", status, body, headers)
    with pytest.raises(GitHubRateLimited, match=r"wait 3\d\d\d s, longer than this task waits"):
        GitHubHook().org_status("openscience-org")
    assert sleeps == []


def test_a_long_retry_after_is_bounded_too(fake_github, sleeps, monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_GITHUB_DEFAULT", github_connection(fake_github.url, max_rate_limit_wait=30)
    )
    fake_github.add_org("openscience-org")
    body = {"message": "You have exceeded a secondary rate limit.", "status": "403"}
    fake_github.fail("GET", "/orgs/openscience-org$", 403, body, {"Retry-After": "120"})
    with pytest.raises(GitHubRateLimited, match="wait 120 s"):
        GitHubHook().org_status("openscience-org")
    assert sleeps == []


def test_a_rate_limit_that_outlasts_the_retries_is_reported(fake_github, sleeps):
    fake_github.add_org("openscience-org")
    status, body, headers = rate_limited(reset_in=1)
    fake_github.fail("GET", "/orgs/openscience-org$", status, body, headers, times=10)
    with pytest.raises(GitHubRateLimited, match="rate limited after retries"):
        GitHubHook(retries=2).org_status("openscience-org")
    assert len(fake_github.calls("GET", "^/orgs/openscience-org$")) == 3


def test_the_token_is_never_in_an_error_or_the_log(fake_github, caplog):
    caplog.set_level("DEBUG")
    with pytest.raises(GitHubNotFound) as raised:
        GitHubHook().repository("nobody/nothing")
    assert TOKEN not in str(raised.value)
    assert TOKEN not in caplog.text
