"""What each pull request asks its reviewer: secrets to add, costs, outputs, what follows."""

from __future__ import annotations

from engagements.infra import example_cluster_outputs
from engagements.infra.layout import Layout
from engagements.infra.outputs import EXAMPLE_NOTE, required_outputs
from engagements.infra.workflow import DEPLOY_WORKFLOW

from .conftest import CHECKOUT, on, render_steps

WORKFLOW = (CHECKOUT / DEPLOY_WORKFLOW).read_text(encoding="utf-8")


def test_the_cluster_checklist_names_the_costs_and_leaves_the_credentials_to_the_hubs(example):
    cluster, hubs = render_steps(example, workflow=WORKFLOW)
    checklist = "\n".join(cluster.reviewer_checklist)
    (costs,) = [item for item in cluster.reviewer_checklist if item.startswith("Costs")]
    assert "the contract estimates 1,500 USD a month" in costs
    assert "billed to the community" in costs
    assert "always running r8i-flex.large x1 (core)" in costs
    assert "from zero as users start servers: user nodes r5.xlarge" in costs
    assert "3 EBS gp3 home disks of 10 GiB" in costs
    assert "`hubs: []`" in checklist
    assert "failure_openscience:" in checklist
    assert "(in this change)" in checklist
    # The deployer's key exists only once terraform has run: the hubs' change asks for it.
    assert not [f for f in cluster.follow_ups if "deployer-credentials" in f]
    (credentials,) = [f for f in hubs.follow_ups if "deployer-credentials" in f]
    assert "terraform output -raw continuous_deployer_creds" in credentials
    assert [f.split(":")[0] for f in cluster.follow_ups] == [
        "config/clusters/openscience/enc-support.secret.values.yaml",
        "eksctl/ssh-keys/secret/openscience.key",
    ]


def test_cost_traps_are_named_where_they_are_set(example):
    gcp, _ = render_steps(on(example, "gcp"))
    assert "`filestores = {}`: no Filestore" in "\n".join(gcp.reviewer_checklist)
    jetstream, _ = render_steps(on(example, "jetstream2"))
    (costs,) = [i for i in jetstream.reviewer_checklist if i.startswith("Costs")]
    assert "m3.medium x1" in costs  # Magnum keeps one user node running
    assert "from zero" not in costs


def test_the_hubs_checklist_names_every_output_and_its_value(example):
    outputs = example_cluster_outputs(example)
    _, hubs = render_steps(example)
    first = hubs.reviewer_checklist[0]
    assert first.startswith("Outputs of the applied cluster, from the tests' example outputs: ")
    for output in required_outputs(Layout(example)):
        name, _, hub = output.key.partition(".")
        assert f"{output.key} `{outputs[name][hub]}` ({output.source})" in first
    # Example outputs are said first, before the checklist.
    assert hubs.notes[0] == EXAMPLE_NOTE
    real = {name: values for name, values in outputs.items() if name != "_note"}
    _, applied = render_steps(example, outputs=real)
    assert EXAMPLE_NOTE not in applied.notes


def test_the_hubs_checklist_says_what_follows_the_merge_and_what_costs(example):
    config = example.with_decisions({"cloud.gpu": True})
    _, hubs = render_steps(config, workflow=WORKFLOW)
    checklist = "\n".join(hubs.reviewer_checklist)
    assert (
        "Every secret file listed below exists and is sops-encrypted before merging." in checklist
    )
    assert "`deployer grafana new-token openscience`" in checklist
    assert "deploy-grafana-dashboards.yaml" in checklist
    assert "anyone may start sessions (1 CPU, 2 GB each)" in checklist
    assert "one g4dn.xlarge node for each user" in checklist
    assert "failure_openscience_staging:" in checklist
    assert "(in this change)" in checklist
    assert "Image tags (scipy, datascience, pangeo, rocker)" in checklist
    assert "DNS: the *.openscience.2i2c.cloud record of the cluster's change" in checklist


def test_no_placeholder_or_stale_wording_in_either_checklist(example):
    for config in (example, on(example, "azure"), on(example, "gcp", {"domain": "hub.os.org"})):
        for change in render_steps(config, workflow=WORKFLOW):
            for item in (*change.reviewer_checklist, *change.follow_ups):
                assert "PENDING" not in item
                assert "follow-up secret" not in item
                assert "as listed in the plan" not in item


def test_entries_already_in_the_workflow_leave_it_out_of_the_change(example):
    """A change re-rendered after its merge is the change that was merged."""
    cluster, hubs = render_steps(example, workflow=WORKFLOW)
    merged = hubs.files[DEPLOY_WORKFLOW]
    again, again_hubs = render_steps(example, workflow=merged)
    assert DEPLOY_WORKFLOW not in again.files
    assert DEPLOY_WORKFLOW not in again_hubs.files
    assert "(already there)" in "\n".join(again.reviewer_checklist)
    assert again.files == {p: t for p, t in cluster.files.items() if p != DEPLOY_WORKFLOW}
