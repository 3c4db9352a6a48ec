"""The infrastructure repository on GitHub, against a fake GitHub API."""

from __future__ import annotations

import pytest

from engagements.hooks.github import GitHubError, GitHubHook
from engagements.hooks.infra_repo import ChangeState, EmptyChange
from engagements.hooks.infra_repo.github import GitHubInfraRepository
from tests.hooks.infra_repo import BRANCH, FILES
from tests.hooks.test_github import NOT_FOUND


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


def test_base_head_is_the_base_branch_head(fake_github, infra):
    assert github_repo().base_head() == infra.refs["main"]
