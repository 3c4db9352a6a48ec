"""Proposing the infrastructure change: real git for the local default, fake GitHub for PRs."""

from __future__ import annotations

import subprocess

import pytest

from engagements.hooks.github import GitHubError, GitHubHook
from engagements.hooks.infra_repo import (
    ChangeState,
    DeploymentSettings,
    EmptyChange,
    GitHubInfraRepository,
    InfraRepository,
    InfraRepositoryError,
    LocalGitInfraRepository,
    get_infra_repository,
    git_blob_sha,
    load_deployment_settings,
)
from tests.hooks.test_github import NOT_FOUND, FakeGitHub, github_connection

FILES = {
    "config/clusters/openscience/cluster.yaml": "name: openscience\nprovider: aws\n",
    "config/clusters/openscience/prod.values.yaml": "jupyterhub: {}\n",
    "terraform/aws/projects/openscience.tfvars": 'region = "us-west-2"\n',
}
BRANCH = "onboard-openscience"


def git(repo, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


def tree(repo, ref: str) -> dict[str, str]:
    paths = git(repo, "ls-tree", "-r", "--name-only", ref).splitlines()
    return {p: git(repo, "show", f"{ref}:{p}") + "\n" for p in paths}


# The local git repository (embedded default).


def test_first_proposal_creates_the_repository_and_a_branch_with_the_files(tmp_path):
    path = tmp_path / "infrastructure"
    repo = LocalGitInfraRepository(path)
    assert isinstance(repo, InfraRepository)
    proposal = repo.propose_change(BRANCH, FILES, "Onboard openscience", "Check:\n- [ ] a")

    assert proposal.kind == "local_branch"
    assert (proposal.url_or_path, proposal.branch, proposal.number) == (str(path), BRANCH, None)
    assert proposal.committed
    assert proposal.commit == git(path, "rev-parse", BRANCH)
    assert tree(path, BRANCH) == {"README.md": tree(path, "main")["README.md"], **FILES}
    assert list(tree(path, "main")) == ["README.md"]
    assert git(path, "log", "-1", "--format=%B", BRANCH) == "Onboard openscience\n\nCheck:\n- [ ] a"
    assert git(path, "log", "-1", "--format=%an <%ae>", BRANCH) == (
        "Engagement pipelines <engagements@2i2c.org>"
    )
    # The engineer's working tree (main, checked out) is untouched.
    assert git(path, "status", "--porcelain") == ""
    assert git(path, "branch", "--show-current") == "main"


def test_the_same_files_again_make_no_new_commit(tmp_path):
    repo = LocalGitInfraRepository(tmp_path / "infra")
    first = repo.propose_change(BRANCH, FILES, "Onboard", "body")
    again = repo.propose_change(BRANCH, FILES, "Onboard", "body")
    assert not again.committed
    assert again.commit == first.commit
    assert git(tmp_path / "infra", "rev-list", "--count", BRANCH) == "2"


def test_a_changed_file_and_a_deletion_are_one_commit_on_top(tmp_path):
    path = tmp_path / "infra"
    repo = LocalGitInfraRepository(path)
    first = repo.propose_change(BRANCH, FILES, "Onboard", "body")
    changed = {
        "config/clusters/openscience/prod.values.yaml": "jupyterhub: {hub: {}}\n",
        "terraform/aws/projects/openscience.tfvars": None,
        "config/clusters/openscience/never-existed.yaml": None,
    }
    second = repo.propose_change(BRANCH, changed, "Onboard (update)", "body")
    assert second.committed
    assert git(path, "rev-parse", f"{BRANCH}~1") == first.commit
    files = tree(path, BRANCH)
    assert files["config/clusters/openscience/prod.values.yaml"] == "jupyterhub: {hub: {}}\n"
    assert "terraform/aws/projects/openscience.tfvars" not in files


def test_merged_into_main_by_an_engineer_is_seen_as_merged(tmp_path):
    path = tmp_path / "infra"
    repo = LocalGitInfraRepository(path)
    assert repo.change_state(BRANCH) is ChangeState.MISSING
    repo.propose_change(BRANCH, FILES, "Onboard", "body")
    assert repo.change_state(BRANCH) is ChangeState.OPEN

    git(path, "-c", "user.name=Eng", "-c", "user.email=eng@2i2c.org", "merge", "--no-ff", "-q",
        "-m", "Merge", BRANCH)  # fmt: skip
    assert repo.change_state(BRANCH) is ChangeState.MERGED
    assert repo.change_state("some-other-branch") is ChangeState.MISSING

    # A re-run after the merge (and after the branch was deleted) changes nothing: the
    # recorded commit of the proposal is in main, so the branch comes back as it was.
    proposed = git(path, "rev-parse", BRANCH)
    git(path, "branch", "-q", "-D", BRANCH)
    again = repo.propose_change(BRANCH, FILES, "Onboard", "body", previous=proposed)
    assert (again.commit, again.committed) == (proposed, False)
    assert repo.change_state(BRANCH) is ChangeState.MERGED


def test_a_change_that_holds_nothing_is_never_proposed_nor_merged(tmp_path):
    """Files main already has make no branch; an empty branch is never "merged"."""
    path = tmp_path / "infra"
    repo = LocalGitInfraRepository(path)
    start = repo.base_head()
    readme = tree(path, "main")["README.md"]
    with pytest.raises(EmptyChange, match=f"{BRANCH} holds nothing"):
        repo.propose_change(BRANCH, {"README.md": readme, "gone.yaml": None}, "t", "b")
    assert repo.change_state(BRANCH) is ChangeState.MISSING
    # Without the recorded commit of an earlier proposal nothing is restored either.
    with pytest.raises(EmptyChange):
        repo.propose_change(BRANCH, {"README.md": readme}, "t", "b", previous="0" * 40)

    # A branch that points at a commit of main (made by hand, or left by a crash) holds no
    # change of its own since the commit it started from: empty, not merged.
    git(path, "branch", BRANCH, start)
    assert repo.change_state(BRANCH, since=start) is ChangeState.EMPTY
    assert repo.change_state(BRANCH) is ChangeState.MERGED  # what the ancestry alone says


def test_changed_paths_name_what_the_change_removes(tmp_path):
    path = tmp_path / "infra"
    repo = LocalGitInfraRepository(path)
    repo.propose_change("onboard", FILES, "Onboard", "body")
    git(path, "merge", "--quiet", "onboard")
    start = repo.base_head()
    removal = dict.fromkeys([*FILES, "config/clusters/openscience/never-there.yaml"])
    proposal = repo.propose_change("teardown", removal, "Remove", "body")
    assert repo.changed_paths("teardown", start) == dict.fromkeys(FILES, "removed")
    assert repo.change_state("teardown", since=start) is ChangeState.OPEN
    git(path, "merge", "--quiet", "teardown")
    assert repo.change_state("teardown", since=start) is ChangeState.MERGED
    assert repo.changed_paths("teardown", start) == dict.fromkeys(FILES, "removed")
    assert proposal.committed


def test_an_existing_repository_is_used_as_it_is(tmp_path):
    path = tmp_path / "existing"
    path.mkdir()
    git(path, "init", "-q", "--initial-branch=main")
    (path / "other.txt").write_text("kept\n")
    git(path, "add", "other.txt")
    git(path, "-c", "user.name=E", "-c", "user.email=e@x", "commit", "-q", "-m", "theirs")
    LocalGitInfraRepository(path).propose_change(BRANCH, FILES, "Onboard", "body")
    assert set(tree(path, BRANCH)) == {"other.txt", *FILES}
    assert not (path / "README.md").exists()


def test_a_folder_that_is_not_a_repository_is_not_taken_over(tmp_path):
    (tmp_path / "notes.txt").write_text("mine\n")
    with pytest.raises(InfraRepositoryError, match="is not a git repository"):
        LocalGitInfraRepository(tmp_path).propose_change(BRANCH, FILES, "t", "b")


@pytest.mark.parametrize("path", ["/etc/passwd", "../outside.yaml", "a/../../b", ".git/config"])
def test_paths_outside_the_repository_are_refused(tmp_path, path):
    with pytest.raises(InfraRepositoryError, match="not a relative file path"):
        LocalGitInfraRepository(tmp_path / "r").propose_change(BRANCH, {path: "x"}, "t", "b")


def test_a_bad_branch_name_is_refused(tmp_path):
    with pytest.raises(InfraRepositoryError, match="check-ref-format"):
        LocalGitInfraRepository(tmp_path / "r").propose_change("bad..name", FILES, "t", "b")


def test_git_blob_sha_matches_git(tmp_path):
    path = tmp_path / "f"
    path.write_text("name: openscience\n")
    expected = subprocess.run(
        ["git", "hash-object", str(path)], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert git_blob_sha("name: openscience\n") == expected


# The infrastructure repository on GitHub.


@pytest.fixture
def fake_github(monkeypatch):
    with FakeGitHub() as fake:
        monkeypatch.setenv("AIRFLOW_CONN_GITHUB_DEFAULT", github_connection(fake.url))
        yield fake


@pytest.fixture
def infra(fake_github):
    return fake_github.add_repo("2i2c-org/infrastructure", {"README.md": "# infrastructure\n"})


def github_repo() -> GitHubInfraRepository:
    return GitHubInfraRepository(GitHubHook(), "2i2c-org/infrastructure")


def test_pull_request_is_opened_from_a_new_branch(fake_github, infra):
    proposal = github_repo().propose_change(BRANCH, FILES, "Onboard openscience", "- [ ] check")
    assert proposal.kind == "pull_request"
    assert proposal.committed
    assert (
        proposal.url_or_path == f"https://github.com/2i2c-org/infrastructure/pull/{proposal.number}"
    )
    assert infra.files_at(BRANCH) == {"README.md": "# infrastructure\n", **FILES}
    assert infra.files_at("main") == {"README.md": "# infrastructure\n"}
    (pull,) = infra.pulls
    assert (pull["head"], pull["base"], pull["title"], pull["body"]) == (
        BRANCH,
        "main",
        "Onboard openscience",
        "- [ ] check",
    )
    assert infra.commits[proposal.commit]["parents"] == [infra.refs["main"]]
    assert len(fake_github.calls("POST", "/git/commits$")) == 1


def test_a_rerun_finds_the_branch_and_pull_request_and_changes_nothing(fake_github, infra):
    first = github_repo().propose_change(BRANCH, FILES, "Onboard", "body")
    writes = [r for r in fake_github.requests if r[0] != "GET"]
    again = github_repo().propose_change(BRANCH, FILES, "Onboard", "body")
    assert (again.number, again.commit, again.committed) == (first.number, first.commit, False)
    assert [r for r in fake_github.requests if r[0] != "GET"] == writes
    assert len(infra.pulls) == 1


def test_a_rerun_with_new_content_adds_a_commit_and_updates_the_pull_request(fake_github, infra):
    first = github_repo().propose_change(BRANCH, FILES, "Onboard", "body")
    changed = {
        "config/clusters/openscience/prod.values.yaml": "jupyterhub: {hub: {}}\n",
        "terraform/aws/projects/openscience.tfvars": None,
    }
    second = github_repo().propose_change(BRANCH, changed, "Onboard", "new checklist")
    assert second.committed
    assert second.number == first.number
    assert infra.commits[second.commit]["parents"] == [first.commit]
    files = infra.files_at(BRANCH)
    assert files["config/clusters/openscience/prod.values.yaml"] == "jupyterhub: {hub: {}}\n"
    assert "terraform/aws/projects/openscience.tfvars" not in files
    assert infra.pulls[0]["body"] == "new checklist"


def test_merge_is_seen_and_a_rerun_after_it_opens_nothing_new(fake_github, infra):
    repo = github_repo()
    assert repo.change_state(BRANCH) is ChangeState.MISSING
    proposal = repo.propose_change(BRANCH, FILES, "Onboard", "body")
    assert repo.change_state(BRANCH) is ChangeState.OPEN
    fake_github.merge("2i2c-org/infrastructure", proposal.number)
    assert repo.change_state(BRANCH) is ChangeState.MERGED

    del infra.refs[BRANCH]  # "Delete branch" after merging
    again = repo.propose_change(BRANCH, FILES, "Onboard", "body")
    assert (again.number, again.committed) == (proposal.number, False)
    assert len(infra.pulls) == 1
    assert repo.change_state(BRANCH) is ChangeState.MERGED


def test_a_closed_pull_request_is_reported_closed(fake_github, infra):
    proposal = github_repo().propose_change(BRANCH, FILES, "Onboard", "body")
    infra.pulls[0]["state"] = "closed"
    assert github_repo().change_state(BRANCH) is ChangeState.CLOSED
    # Clearing the task proposes the change again as a new pull request.
    again = github_repo().propose_change(BRANCH, FILES, "Onboard", "body")
    assert again.number != proposal.number
    assert github_repo().change_state(BRANCH) is ChangeState.OPEN


def test_a_branch_created_meanwhile_is_used(fake_github, infra):
    infra.refs[BRANCH] = infra.refs["main"]
    fake_github.fail("GET", f"/git/ref/heads/{BRANCH}$", 404, NOT_FOUND)
    proposal = github_repo().propose_change(BRANCH, FILES, "Onboard", "body")
    (create,) = fake_github.calls("POST", "/git/refs$")
    assert create[2]["ref"] == f"refs/heads/{BRANCH}"
    assert infra.files_at(BRANCH) == {"README.md": "# infrastructure\n", **FILES}
    assert proposal.committed


def test_a_pull_request_opened_meanwhile_is_used(fake_github, infra):
    first = github_repo().propose_change(BRANCH, FILES, "Onboard", "body")
    # Our lookup misses the pull request another run has just opened; GitHub's 422 says so.
    fake_github.fail("GET", "/pulls$", 200, [])
    again = github_repo().propose_change(BRANCH, FILES, "Onboard", "body")
    assert again.number == first.number
    assert len(infra.pulls) == 1
    assert len(fake_github.calls("POST", "/pulls$")) == 2


def test_a_push_by_someone_else_in_between_is_not_overwritten(fake_github, infra):
    github_repo().propose_change(BRANCH, FILES, "Onboard", "body")
    fake_github.fail(
        "PATCH",
        f"/git/refs/heads/{BRANCH}$",
        422,
        {"message": "Update is not a fast forward", "status": "422"},
    )
    with pytest.raises(GitHubError, match=r"Update is not a fast forward.*HTTP 422"):
        github_repo().propose_change(BRANCH, {"new.yaml": "x\n"}, "Onboard", "body")


def test_nothing_to_propose_when_main_already_has_the_files(fake_github):
    """An empty diff is an error, never a branch that compares "identical" and so "merged"."""
    infra = fake_github.add_repo("2i2c-org/infrastructure", dict(FILES))
    with pytest.raises(EmptyChange, match=f"{BRANCH} holds nothing: main of 2i2c-org"):
        github_repo().propose_change(BRANCH, FILES, "Onboard", "body")
    assert (infra.pulls, BRANCH in infra.refs) == ([], False)
    assert fake_github.calls("POST", "/git/refs$") == []
    assert github_repo().change_state(BRANCH) is ChangeState.MISSING


def test_a_branch_without_a_pull_request_is_never_merged_by_being_empty(fake_github, infra):
    """GitHub compares an empty branch "identical" (or "behind" once main moves on)."""
    start = infra.refs["main"]
    infra.refs[BRANCH] = start
    assert github_repo().change_state(BRANCH) is ChangeState.EMPTY
    infra.refs["main"] = infra.add_commit({"README.md": "# moved on\n"}, [start], "Other work")
    assert github_repo().change_state(BRANCH, since=start) is ChangeState.EMPTY
    # A commit of its own, not in main and without a pull request: still to be reviewed.
    infra.refs[BRANCH] = infra.add_commit({"x.yaml": "x\n"}, [start], "Change")
    assert github_repo().change_state(BRANCH, since=start) is ChangeState.OPEN
    # Pushed to main without a pull request: its own commit is in main.
    infra.refs["main"] = infra.add_commit({"x.yaml": "x\n"}, [infra.refs[BRANCH]], "Push")
    assert github_repo().change_state(BRANCH, since=start) is ChangeState.MERGED


def test_github_changed_paths_name_what_the_change_removes(fake_github):
    infra = fake_github.add_repo("2i2c-org/infrastructure", dict(FILES))
    start = infra.refs["main"]
    removal = dict.fromkeys([*FILES, "config/clusters/openscience/never-there.yaml"])
    proposal = github_repo().propose_change("teardown", removal, "Remove", "body")
    assert github_repo().changed_paths("teardown", start) == dict.fromkeys(FILES, "removed")
    fake_github.merge("2i2c-org/infrastructure", proposal.number)
    assert github_repo().change_state("teardown", since=start) is ChangeState.MERGED


def test_the_repository_default_branch_is_the_base(fake_github):
    infra = fake_github.add_repo("2i2c-org/infrastructure", default_branch="master")
    proposal = github_repo().propose_change(BRANCH, FILES, "Onboard", "body")
    assert infra.pulls[0]["base"] == "master"
    assert proposal.committed


# Choosing the backend by configuration.


def test_local_repository_without_a_github_connection(monkeypatch, tmp_path):
    monkeypatch.delenv("AIRFLOW_CONN_GITHUB_DEFAULT", raising=False)
    monkeypatch.setenv("ENGAGEMENTS_INFRA_REPO_PATH", str(tmp_path / "infra"))
    repo = get_infra_repository(load_deployment_settings())
    assert isinstance(repo, LocalGitInfraRepository)
    assert repo.path == tmp_path / "infra"


def test_default_local_path_is_under_airflow_home(monkeypatch, tmp_path):
    monkeypatch.delenv("AIRFLOW_CONN_GITHUB_DEFAULT", raising=False)
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    repo = get_infra_repository(DeploymentSettings())
    assert repo.path == tmp_path / "infrastructure"


def test_github_when_the_repository_is_named_and_the_connection_exists(fake_github, monkeypatch):
    monkeypatch.setenv("ENGAGEMENTS_INFRA_REPO", "2i2c-org/infrastructure")
    repo = get_infra_repository(load_deployment_settings())
    assert isinstance(repo, GitHubInfraRepository)
    assert repo.full_name == "2i2c-org/infrastructure"


def test_a_named_repository_without_its_connection_is_an_error(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_GITHUB_DEFAULT", raising=False)
    with pytest.raises(InfraRepositoryError, match="'github_default' is not defined"):
        get_infra_repository(DeploymentSettings(infra_repo="2i2c-org/infrastructure"))


def test_connection_without_a_named_repository_stays_local(fake_github, tmp_path, caplog):
    repo = get_infra_repository(DeploymentSettings(infra_repo_path=str(tmp_path)))
    assert isinstance(repo, LocalGitInfraRepository)
    assert "engagements_infra_repo is not set" in caplog.text


def test_local_change_under_review_is_withdrawn_and_a_merged_one_stays(tmp_path):
    path = tmp_path / "infra"
    repo = LocalGitInfraRepository(path)
    repo.propose_change(BRANCH, FILES, "Onboard", "body")
    assert repo.withdraw_change(BRANCH, "renewed") is ChangeState.MISSING
    assert BRANCH not in git(path, "branch", "--list")
    assert not set(FILES) & set(tree(path, "main"))  # nothing reached the base branch

    repo.propose_change(BRANCH, FILES, "Onboard", "body")
    git(path, "merge", "--quiet", BRANCH)
    assert repo.withdraw_change(BRANCH, "renewed") is ChangeState.MERGED
    assert BRANCH in git(path, "branch", "--list")


def test_github_change_under_review_is_closed_with_the_reason(fake_github, infra):
    repo = github_repo()
    repo.propose_change(BRANCH, FILES, "Decommission", "- [ ] check")
    assert repo.withdraw_change(BRANCH, "renewed until 2028") is ChangeState.CLOSED
    (pull,) = infra.pulls
    assert pull["state"] == "closed"
    assert pull["body"].endswith("**Withdrawn**: renewed until 2028")
    assert repo.change_state(BRANCH) is ChangeState.CLOSED
    writes = [r for r in fake_github.requests if r[0] != "GET"]
    assert repo.withdraw_change(BRANCH, "again") is ChangeState.CLOSED
    assert [r for r in fake_github.requests if r[0] != "GET"] == writes


def test_github_change_already_merged_cannot_be_withdrawn(fake_github, infra):
    repo = github_repo()
    proposal = repo.propose_change(BRANCH, FILES, "Decommission", "body")
    fake_github.merge("2i2c-org/infrastructure", proposal.number)
    assert repo.withdraw_change(BRANCH, "renewed") is ChangeState.MERGED
    assert "Withdrawn" not in infra.pulls[0]["body"]


def test_base_head_is_where_a_change_proposed_now_starts(tmp_path, fake_github, infra):
    local = LocalGitInfraRepository(tmp_path / "infra")
    head = local.base_head()  # creates the repository with its first commit
    assert head == git(tmp_path / "infra", "rev-parse", "main")
    assert local.propose_change(BRANCH, FILES, "Onboard", "body").commit != head
    assert git(tmp_path / "infra", "rev-parse", f"{BRANCH}~1") == head
    assert github_repo().base_head() == infra.refs["main"]
