"""What the store says was deployed: evidence per part, never a skipped or planned step."""

from __future__ import annotations

from engagements import deployment
from engagements.deployment import deployment_status


def test_each_step_records_under_its_own_key():
    keys = [
        deployment.INFRA_PR,
        deployment.INFRA_HUBS_PR,
        deployment.CLUSTER_OUTPUTS,
        deployment.CLUSTER_VERIFIED,
        deployment.HUBS_HEALTHY,
        deployment.GITHUB_ORG,
        deployment.QUAY_IMAGE,
        deployment.ROLLOUT_OUTCOME,
    ]
    assert len(set(keys)) == len(keys)
    assert set(deployment.STEP_TASKS) <= set(keys)


def test_every_repository_the_org_step_creates_has_a_role(example_config):
    from engagements.hooks.infra_repo import load_deployment_settings

    created = deployment.community_repositories(example_config, load_deployment_settings())
    assert {name for name, _, _ in created} == set(deployment.REPOSITORY_ROLES)


def test_nothing_recorded_is_nothing_deployed(store, example_config):
    status = deployment_status(store, "openscience", example_config.hub_urls)
    assert status.done == []
    assert not status.hubs_deployed
    assert [p.name for p in status.hubs] == ["Community hub", "Workshop hub", "BinderHub"]


def test_each_part_needs_its_own_evidence(store, example_config):
    store.record_action("openscience", "cluster-verified", "infrastructure", {"via": "eks"})
    store.record_action(
        "openscience", "hubs-healthy", "health_check", {"prod": "https://x/hub/health"}
    )
    store.record_action("openscience", "quay-image", "container_registry", {"state": "planned"})
    status = deployment_status(store, "openscience", example_config.hub_urls)
    assert (status.cluster.done, status.cluster.evidence) == (True, "checked through eks")
    assert [(h.name, h.done) for h in status.hubs] == [
        ("Community hub", True),
        ("Workshop hub", False),
        ("BinderHub", False),
    ]
    assert (status.quay.done, status.quay.evidence) == (False, "planned only")


def test_an_engineers_confirmation_covers_cluster_and_hubs_only(store, example_config):
    store.record_milestone("openscience", "infrastructure_deployed", by="Eve")
    status = deployment_status(store, "openscience", example_config.hub_urls)
    assert status.hubs_deployed
    assert status.hubs[0].evidence.startswith("confirmed by Eve on ")
    assert not any(p.done for p in (*status.github, status.quay))


def test_requests_carry_the_issue_that_tracks_them(store, example_config):
    from engagements.onboarding import record_follow_ups

    requirements = ["A shared  bucket", "GPU"]
    store.record_action("openscience", "rollout-outcome", "meeting", {"requirements": requirements})
    (key, _) = record_follow_ups(store, "openscience", requirements)
    detail = store.get_action("openscience", key).detail
    store.update_action("openscience", key, {**detail, "url": "https://github.com/o/r/issues/1"})
    status = deployment_status(store, "openscience", example_config.hub_urls)
    assert [(r.title, r.issue_url) for r in status.requests] == [
        ("A shared  bucket", "https://github.com/o/r/issues/1"),
        ("GPU", ""),
    ]
