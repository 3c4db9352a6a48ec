"""The local git repository (embedded default), with real git."""

from __future__ import annotations

import pytest

from engagements.hooks.infra_repo import (
    ChangeState,
    EmptyChange,
    InfraRepository,
    InfraRepositoryError,
)
from engagements.hooks.infra_repo.local import LocalGitInfraRepository
from tests.hooks.infra_repo import BRANCH, FILES, git, tree


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


def test_base_head_is_where_a_change_proposed_now_starts(tmp_path):
    local = LocalGitInfraRepository(tmp_path / "infra")
    head = local.base_head()  # creates the repository with its first commit
    assert head == git(tmp_path / "infra", "rev-parse", "main")
    assert local.propose_change(BRANCH, FILES, "Onboard", "body").commit != head
    assert git(tmp_path / "infra", "rev-parse", f"{BRANCH}~1") == head
