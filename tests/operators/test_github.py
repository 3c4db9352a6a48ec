"""The GitHub and Quay deployment operators, run against a real git repository, the fake GitHub
on loopback and Quay's API shapes (``responses``), with the store they record into."""

from __future__ import annotations

import json
import subprocess

import pytest
import responses
import yaml
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from engagements.deployment import INFRA_HUBS_PR, INFRA_PR, QUAY_IMAGE
from engagements.hooks.github import GitHubNotFound
from engagements.infra.render import (
    example_cluster_outputs,
    render_cluster_change,
    render_hubs_change,
)
from engagements.infra.workflow import DEPLOY_WORKFLOW, with_cluster
from engagements.onboarding import effective_config, record_follow_ups
from engagements.operators.github import (
    CommunityGitHubOrgOperator,
    OpenFollowUpIssuesOperator,
    OpenHubsPullRequestOperator,
    OpenInfrastructurePullRequestOperator,
    pull_request_body,
)
from engagements.operators.provision import ClusterOutputsOperator
from engagements.operators.quay import QuayImageRepositoryOperator
from engagements.settings import PROJECT_ROOT
from engagements.store.base import upsert_action
from tests.hooks.test_github import FakeGitHub, github_connection

INFRA = "2i2c-org/infrastructure"
QUAY = "https://quay.test/api/v1"
ROBOT_TOKEN = "ROBOTTOKEN-never-stored-0123456789"
CHECKOUT = PROJECT_ROOT / "tests" / "data" / "2i2c-infrastructure"


@pytest.fixture
def fake_github(monkeypatch):
    with FakeGitHub() as fake:
        monkeypatch.setenv("AIRFLOW_CONN_GITHUB_DEFAULT", github_connection(fake.url))
        monkeypatch.setenv("ENGAGEMENTS_INFRA_REPO", INFRA)
        fake.add_repo(INFRA, {"README.md": "# infrastructure\n"})
        yield fake


@pytest.fixture
def community_org(fake_github):
    fake_github.add_org("openscience-org")
    fake_github.add_user("adalovelace")
    fake_github.add_user("ghopper")
    fake_github.orgs["openscience-org"]["members"]["adalovelace"] = "admin"
    for template in (
        "2i2c-org/hub-user-image-template",
        "binder-examples/requirements",
        "2i2c-org/community-docs-template",
    ):
        fake_github.add_repo(template, {"README.md": f"# {template}\n"}, is_template=True)
    return fake_github


def make(cls, store, **kwargs):
    op = cls(task_id=cls.__name__, community_id="openscience", **kwargs)
    op.store = store
    return op


def git(path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(path), *args], capture_output=True, text=True, check=True
    ).stdout


# The infrastructure change.


def test_change_is_committed_to_a_branch_of_the_local_repository(store, local_infra):
    result = make(OpenInfrastructurePullRequestOperator, store).execute({})
    config = effective_config(store.get_engagement("openscience"))
    change = render_cluster_change(config)

    assert result["kind"] == "local_branch"
    assert result["branch"] == "onboard-openscience"
    listed = set(git(local_infra, "ls-tree", "-r", "--name-only", "onboard-openscience").split())
    assert listed == {"README.md", *change.files}
    for path, text in change.files.items():
        assert git(local_infra, "show", f"onboard-openscience:{path}") == text
    message = git(local_infra, "log", "-1", "--format=%B", "onboard-openscience")
    assert message.startswith("Deploy Open Science Collective (openscience): cluster")
    assert "Step 1 of 2" in message
    assert "### Reviewer checklist" in message

    detail = store.get_action("openscience", INFRA_PR).detail
    assert detail["commit"] == result["commit"]
    assert detail["hubs"] == {}  # cluster.yaml has hubs: [] until the second change
    assert detail["plan"]["cluster_name"] == "openscience"
    assert detail["follow_ups"] == list(change.follow_ups)


def test_rerunning_the_change_commits_nothing_new(store, local_infra):
    first = make(OpenInfrastructurePullRequestOperator, store).execute({})
    again = make(OpenInfrastructurePullRequestOperator, store).execute({})
    assert again["commit"] == first["commit"]
    assert again["committed"] is False
    assert git(local_infra, "rev-list", "--count", "onboard-openscience").strip() == "2"
    assert [a.key for a in store.list_actions("openscience", kind="pull_request")] == [INFRA_PR]


def test_a_deployment_already_in_main_is_not_proposed_as_an_empty_change(store, local_infra):
    """Nothing to review is an error: an empty branch would read as merged, hence deployed."""
    from engagements.hooks.infra_repo.local import LocalGitInfraRepository

    repo = LocalGitInfraRepository(local_infra)
    files = render_cluster_change(effective_config(store.get_engagement("openscience"))).files
    repo.propose_change("by-hand", files, "Deployed by hand", "")
    git(local_infra, "merge", "--quiet", "by-hand")
    with pytest.raises(AirflowFailException, match="onboard-openscience holds nothing"):
        make(OpenInfrastructurePullRequestOperator, store).execute({})
    assert "onboard-openscience" not in git(local_infra, "branch", "--list")
    assert store.get_action("openscience", INFRA_PR) is None


def test_refused_decisions_fail_before_anything_is_proposed(store, local_infra):
    store.update_engagement("openscience", decisions={"cloud.account": None})
    with pytest.raises(AirflowFailException, match=r"cloud\.account: missing"):
        make(OpenInfrastructurePullRequestOperator, store).execute({})
    assert not local_infra.exists()
    assert store.get_action("openscience", INFRA_PR) is None


def test_pull_request_body_lists_the_checklist_and_the_secrets_to_add(example_config):
    change = render_hubs_change(
        example_config,
        example_cluster_outputs(example_config),
        outputs_source="examples",
        example=True,
    )
    body = pull_request_body(example_config, change)
    for item in change.reviewer_checklist:
        assert f"- [ ] {item}" in body
    secrets = body.split("### Secrets to add before merging")[1].split("###")[0]
    for item in change.follow_ups:
        assert f"- [ ] {item}" in secrets
    assert (
        "- binder: https://binder.openscience.2i2c.cloud "
        "(its JupyterHub https://hub.binder.openscience.2i2c.cloud)"
    ) in body
    assert f"{len(change.files)} files" in body
    assert "> **Note**: EXAMPLE outputs" in body


def test_pull_request_is_opened_on_github_once(store, fake_github):
    first = make(OpenInfrastructurePullRequestOperator, store).execute({})
    infra = fake_github.repos[INFRA]
    (pull,) = infra.pulls
    assert first["kind"] == "pull_request"
    assert first["url_or_path"] == f"https://github.com/{INFRA}/pull/{pull['number']}"
    assert "### Reviewer checklist" in pull["body"]
    assert "config/clusters/openscience/cluster.yaml" in infra.files_at("onboard-openscience")

    writes = len([r for r in fake_github.requests if r[0] != "GET"])
    again = make(OpenInfrastructurePullRequestOperator, store).execute({})
    assert (again["number"], again["committed"]) == (first["number"], False)
    assert len([r for r in fake_github.requests if r[0] != "GET"]) == writes
    assert store.get_action("openscience", INFRA_PR).detail["number"] == pull["number"]


# The community's GitHub organization.


def test_org_work_creates_teams_adds_representatives_and_template_repositories(
    store, community_org
):
    detail = make(CommunityGitHubOrgOperator, store).execute({})
    org = community_org.orgs["openscience-org"]
    assert set(org["teams"]) == {"hub-admins", "hub-users"}
    assert org["teams"]["hub-admins"]["members"] == {
        "adalovelace": {"role": "maintainer", "state": "active"},
        "ghopper": {"role": "maintainer", "state": "pending"},
    }
    assert set(org["teams"]["hub-users"]["members"]) == {"adalovelace", "ghopper"}
    assert detail["representatives"] == {"adalovelace": "active", "ghopper": "pending"}
    for name in ("hub-user-image", "hub-binder-examples", "hub-docs"):
        assert f"openscience-org/{name}" in community_org.repos
    assert store.get_action("openscience", "github-org").detail == detail

    creates = len(community_org.calls("POST", r"/(teams|generate)$"))
    assert creates == 5
    make(CommunityGitHubOrgOperator, store).execute({})
    assert len(community_org.calls("POST", r"/(teams|generate)$")) == creates


def test_a_missing_template_names_it(store, community_org):
    del community_org.repos["2i2c-org/community-docs-template"]
    with pytest.raises(GitHubNotFound, match="2i2c-org/community-docs-template"):
        make(CommunityGitHubOrgOperator, store).execute({})


def test_template_names_come_from_settings(store, community_org, monkeypatch):
    community_org.add_repo("openscience-org/our-docs-template", is_template=True)
    monkeypatch.setenv("ENGAGEMENTS_DOCS_REPO_TEMPLATE", "openscience-org/our-docs-template")
    make(CommunityGitHubOrgOperator, store).execute({})
    (generate,) = community_org.calls("POST", "/our-docs-template/generate$")
    assert generate[2]["name"] == "hub-docs"


def test_org_work_without_github_is_planned_only(store, local_infra):
    with pytest.raises(AirflowSkipException, match="team openscience-org/hub-admins"):
        make(CommunityGitHubOrgOperator, store).execute({})
    assert store.get_action("openscience", "github-org") is None


# Follow-up issues from the rollout meeting.


def test_follow_ups_become_issues_once_and_the_store_shows_them(store, fake_github):
    keys = record_follow_ups(store, "openscience", ["GPU for the summer school", "Shared bucket"])
    result = make(OpenFollowUpIssuesOperator, store).execute({})
    infra = fake_github.repos[INFRA]
    assert [i["title"] for i in infra.issues] == [
        "[openscience] GPU for the summer school",
        "[openscience] Shared bucket",
    ]
    assert all(i["labels"] == ["engagement:openscience"] for i in infra.issues)
    assert len(result["opened"]) == 2
    for key, issue in zip(keys, infra.issues, strict=True):
        detail = store.get_action("openscience", key).detail
        assert detail["state"] == "opened"
        assert detail["number"] == issue["number"]
        assert detail["url"] == f"https://github.com/{INFRA}/issues/{issue['number']}"

    make(OpenFollowUpIssuesOperator, store).execute({})
    assert len(infra.issues) == 2
    assert len(fake_github.calls("POST", "/issues$")) == 2


def test_an_issue_opened_before_a_lost_store_write_is_found_by_title(store, fake_github):
    (key,) = record_follow_ups(store, "openscience", ["GPU for the summer school"])
    make(OpenFollowUpIssuesOperator, store).execute({})
    lost = store.get_action("openscience", key).detail
    store.update_action("openscience", key, {k: lost[k] for k in ("title", "body", "state")})
    make(OpenFollowUpIssuesOperator, store).execute({})
    assert len(fake_github.repos[INFRA].issues) == 1
    assert store.get_action("openscience", key).detail["number"] == lost["number"]


def test_follow_ups_without_github_skip_and_the_store_says_why(store, local_infra):
    """Nothing opened is never green: skipped, and each follow-up is marked not opened."""
    (key,) = record_follow_ups(store, "openscience", ["GPU for the summer school"])
    with pytest.raises(AirflowSkipException) as skipped:
        make(OpenFollowUpIssuesOperator, store).execute({})
    assert "1 follow-up issue(s) not opened" in str(skipped.value)
    assert "[openscience] GPU for the summer school" in str(skipped.value)
    detail = store.get_action("openscience", key).detail
    assert detail["state"] == "not opened"
    assert "GitHub is not configured" in detail["not_opened_reason"]


def test_no_follow_up_to_open_is_a_skip_not_a_success(store, local_infra):
    with pytest.raises(AirflowSkipException, match="no follow-up issue is recorded"):
        make(OpenFollowUpIssuesOperator, store).execute({})


def test_follow_ups_not_opened_before_are_opened_once_github_is_there(store, fake_github):
    (key,) = record_follow_ups(store, "openscience", ["GPU for the summer school"])
    store.update_action(
        "openscience",
        key,
        {**store.get_action("openscience", key).detail, "state": "not opened",
         "not_opened_reason": "GitHub is not configured"},
    )  # fmt: skip
    make(OpenFollowUpIssuesOperator, store).execute({})
    detail = store.get_action("openscience", key).detail
    assert detail["state"] == "opened"
    assert "not_opened_reason" not in detail


# Quay: the image repository, its robot, and the robot's token in GitHub Actions.


@pytest.fixture
def quay(monkeypatch):
    conn = {"conn_type": "quay", "host": QUAY, "password": "quay-oauth"}
    monkeypatch.setenv("AIRFLOW_CONN_QUAY_DEFAULT", json.dumps(conn))
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_passthru("http://127.0.0.1")
        mock.post(f"{QUAY}/repository", status=201, json={"namespace": "2i2c", "name": "x"})
        robot = f"{QUAY}/organization/2i2c/robots/openscience_image_builder"
        mock.get(robot, status=404, json={"error_message": "Not Found", "status": 404})
        mock.put(
            robot,
            status=201,
            json={"name": "2i2c+openscience_image_builder", "token": ROBOT_TOKEN},
        )
        mock.put(
            f"{QUAY}/repository/2i2c/openscience-image/permissions/user/2i2c%2Bopenscience_image_builder",
            status=200,
            json={"role": "write", "name": "2i2c+openscience_image_builder", "is_robot": True},
        )
        yield mock


def test_quay_robot_token_goes_to_actions_secrets_and_nowhere_else(
    store, community_org, quay, caplog
):
    caplog.set_level("DEBUG")
    make(CommunityGitHubOrgOperator, store).execute({})
    detail = make(QuayImageRepositoryOperator, store).execute({})
    assert detail["image"] == "quay.io/2i2c/openscience-image"
    assert detail["robot"] == "2i2c+openscience_image_builder"
    assert detail["secrets"] == "set in openscience-org/hub-user-image"
    image_repo = community_org.repos["openscience-org/hub-user-image"]
    assert image_repo.decrypt("QUAY_PASSWORD") == ROBOT_TOKEN
    assert image_repo.decrypt("QUAY_USERNAME") == "2i2c+openscience_image_builder"
    everything = json.dumps([a.detail for a in store.list_actions("openscience")])
    assert ROBOT_TOKEN not in everything
    assert ROBOT_TOKEN not in caplog.text


def test_quay_before_the_image_repository_exists_leaves_the_secrets_for_a_rerun(
    store, community_org, quay
):
    detail = make(QuayImageRepositoryOperator, store).execute({})
    assert detail["secrets"] == "not set: openscience-org/hub-user-image does not exist"
    assert store.get_action("openscience", QUAY_IMAGE).detail["state"] == "created"


def test_quay_without_its_connection_is_recorded_as_planned(store, local_infra, monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_QUAY_DEFAULT", raising=False)
    with pytest.raises(AirflowSkipException, match=r"would create quay\.io/2i2c/openscience-image"):
        make(QuayImageRepositoryOperator, store).execute({})
    detail = store.get_action("openscience", QUAY_IMAGE).detail
    assert (detail["state"], detail["robot"]) == ("planned", "2i2c+openscience_image_builder")


# The hubs' change: proposed once the cluster's is merged, updated when the outputs change.

NFS = {"staging": "10.100.41.7", "prod": "10.100.203.19", "workshop": "10.100.7.250"}
VOLUMES = {
    "hub-nfs-home-dirs-staging": "vol-0a0000000000000a1",
    "hub-nfs-home-dirs-prod": "vol-0a0000000000000a2",
    "hub-nfs-home-dirs-workshop": "vol-0a0000000000000a3",
}
STAGING = "config/clusters/openscience/staging.values.yaml"


def server_ip(text: str) -> str:
    return yaml.safe_load(text)["nfs"]["pv"]["serverIP"]


def test_changed_outputs_update_the_hubs_branch_of_the_local_repository(
    store, local_infra, tmp_path, monkeypatch
):
    monkeypatch.setenv("ENGAGEMENTS_OUTPUTS_DIR", str(tmp_path / "cluster-outputs"))
    make(OpenInfrastructurePullRequestOperator, store).execute({})
    git(local_infra, "-c", "user.name=E", "-c", "user.email=e@x", "merge", "--no-ff",
        "-m", "Merge cluster", "onboard-openscience")  # fmt: skip
    make(ClusterOutputsOperator, store).execute({})
    first = make(OpenHubsPullRequestOperator, store).execute({})
    branch = "onboard-openscience-hubs"
    assert (first["branch"], first["committed"]) == (branch, True)
    # Proposed on top of the merged cluster, with the example outputs, saying so first.
    git(local_infra, "merge-base", "--is-ancestor", "onboard-openscience", branch)
    message = git(local_infra, "log", "-1", "--format=%B", branch)
    assert message.startswith("Deploy Open Science Collective (openscience): hubs")
    assert "> **Note**: EXAMPLE outputs" in message
    assert server_ip(git(local_infra, "show", f"{branch}:{STAGING}")) == "10.100.0.11"

    # The engineer writes the real outputs: a re-run updates the same branch.
    path = tmp_path / "cluster-outputs" / "openscience.yaml"
    volumes = {k.removeprefix("hub-nfs-home-dirs-"): v for k, v in VOLUMES.items()}
    path.write_text(yaml.safe_dump({"ebs_volume_id_map": volumes, "nfs_server_ip": NFS}))
    make(ClusterOutputsOperator, store).execute({})
    second = make(OpenHubsPullRequestOperator, store).execute({})
    assert (second["branch"], second["committed"]) == (branch, True)
    assert git(local_infra, "rev-parse", f"{branch}~1").strip() == first["commit"]
    assert server_ip(git(local_infra, "show", f"{branch}:{STAGING}")) == NFS["staging"]
    message = git(local_infra, "log", "-1", "--format=%B", branch)
    assert "EXAMPLE outputs" not in message
    assert f"nfs_server_ip.staging `{NFS['staging']}`" in message
    detail = store.get_action("openscience", INFRA_HUBS_PR).detail
    assert (detail["commit"], detail["example_outputs"]) == (second["commit"], False)

    # Unchanged outputs: nothing new; never a second branch or record.
    third = make(OpenHubsPullRequestOperator, store).execute({})
    assert (third["commit"], third["committed"]) == (second["commit"], False)
    branches = git(local_infra, "branch", "--format=%(refname:short)").split()
    assert sorted(branches) == ["main", "onboard-openscience", branch]
    assert [a.key for a in store.list_actions("openscience", kind="pull_request")] == [
        INFRA_PR,
        INFRA_HUBS_PR,
    ]


@pytest.fixture
def infra_with_workflow(fake_github):
    """The infrastructure repository with its deploy workflow, as on GitHub."""
    workflow = (CHECKOUT / DEPLOY_WORKFLOW).read_text(encoding="utf-8")
    fake_github.add_repo(INFRA, {"README.md": "# infrastructure\n", DEPLOY_WORKFLOW: workflow})
    return fake_github


def apply(store, nfs):
    """What provision_cluster records from the tooling pod's report."""
    upsert_action(
        store,
        "openscience",
        "provisioning",
        "infrastructure",
        {
            "state": "applied",
            "terraform_outputs": {"ebs_volume_id_map": {"value": VOLUMES}},
            "nfs_server_ip": nfs,
        },
    )


def writes(fake) -> int:
    return len([r for r in fake.requests if r[0] != "GET"])


def test_both_pull_requests_on_github_are_found_and_updated_never_duplicated(
    store, infra_with_workflow
):
    fake, pulls = infra_with_workflow, infra_with_workflow.repos[INFRA].pulls
    cluster = make(OpenInfrastructurePullRequestOperator, store).execute({})
    fake.merge(INFRA, cluster["number"])
    apply(store, NFS)
    make(ClusterOutputsOperator, store).execute({})
    hubs = make(OpenHubsPullRequestOperator, store).execute({})
    repo = fake.repos[INFRA]
    assert [p["head"] for p in pulls] == ["onboard-openscience", "onboard-openscience-hubs"]
    assert server_ip(repo.files_at("onboard-openscience-hubs")[STAGING]) == NFS["staging"]
    # Both entries of the deploy workflow: the cluster's (merged) and its staging hub's.
    workflow = repo.files_at("onboard-openscience-hubs")[DEPLOY_WORKFLOW]
    assert "failure_openscience:" in workflow
    assert "failure_openscience_staging:" in workflow

    # The cluster is applied again and an address changed: the same pull request is updated.
    apply(store, {**NFS, "staging": "10.100.99.99"})
    make(ClusterOutputsOperator, store).execute({})
    again = make(OpenHubsPullRequestOperator, store).execute({})
    assert (again["number"], again["committed"]) == (hubs["number"], True)
    assert len(pulls) == 2
    assert server_ip(repo.files_at("onboard-openscience-hubs")[STAGING]) == "10.100.99.99"
    assert hubs["commit"] in repo.ancestors(again["commit"])  # a commit on top, not a new branch
    assert "nfs_server_ip.staging `10.100.99.99`" in pulls[1]["body"]
    assert store.get_action("openscience", INFRA_HUBS_PR).detail["commit"] == again["commit"]

    # Unchanged: nothing is written at all.
    before = writes(fake)
    make(OpenInfrastructurePullRequestOperator, store).execute({})
    make(OpenHubsPullRequestOperator, store).execute({})
    assert writes(fake) == before

    # Both merged; later another cluster is added to the workflow on main. Re-running both
    # steps finds the merged changes and proposes neither again.
    fake.merge(INFRA, hubs["number"])
    main = repo.refs["main"]
    files = repo.files_at(main)
    files[DEPLOY_WORKFLOW] = with_cluster(files[DEPLOY_WORKFLOW], "othercluster")
    repo.refs["main"] = repo.add_commit(files, [main], "Add othercluster")
    heads = {b: repo.refs[b] for b in ("onboard-openscience", "onboard-openscience-hubs")}
    before = writes(fake)
    first = make(OpenInfrastructurePullRequestOperator, store).execute({})
    second = make(OpenHubsPullRequestOperator, store).execute({})
    assert (first["number"], second["number"]) == (cluster["number"], hubs["number"])
    assert not first["committed"]
    assert not second["committed"]
    assert writes(fake) == before
    assert {b: repo.refs[b] for b in heads} == heads
    assert len(pulls) == 2
