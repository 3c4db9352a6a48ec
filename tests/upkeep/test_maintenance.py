"""Acting on an upkeep plan: milestones, history of versions, the issue, the notice, the check."""

from __future__ import annotations

import datetime as dt

import pytest

from engagements.messages.emails import EmailError, render_email
from engagements.settings import Settings
from engagements.upkeep import Policy
from engagements.upkeep.maintenance import (
    issue_title,
    jupyterhub_pin,
    kubernetes_due,
    maintenance_window,
    newest_chart,
    oldest_chart,
    pending_clusters,
    record_plan,
    render_issue,
    targets,
    unmet,
    upgrade_milestones,
    upgrades_done,
    with_history,
)

TODAY = dt.date(2026, 12, 7)
ACTIONS = [
    {
        "kind": "node_pool",
        "pool": "old",
        "from": "1.27",
        "to": "1.30",
        "reasons": ["skew"],
        "due": None,
    },
    {
        "kind": "control_plane",
        "from": "1.30",
        "to": "1.31",
        "reasons": ["end-of-support"],
        "due": "2026-12-20",
    },
    {
        "kind": "node_pool",
        "pool": "user",
        "from": "1.29",
        "to": "1.31",
        "reasons": ["skew"],
        "due": None,
    },
    {
        "kind": "chart",
        "from": "3.3.8",
        "to": "4.3.3",
        "reasons": ["chart-behind"],
        "major": True,
        "due": None,
    },
]


def test_an_upgrade_is_named_by_where_it_ends():
    assert targets(ACTIONS) == "1.31+chart-4.3.3"
    assert targets(ACTIONS[3:]) == "chart-4.3.3"
    assert targets(ACTIONS[:1]) == "1.30"
    assert upgrade_milestones("jetsci", ACTIONS) == {
        "kubernetes": "upgraded_jetsci_1.31",
        "chart": "upgraded_jetsci_chart-4.3.3",
    }
    assert upgrade_milestones("jetsci", ACTIONS[3:]) == {
        "kubernetes": None,
        "chart": "upgraded_jetsci_chart-4.3.3",
    }
    assert kubernetes_due(ACTIONS) == dt.date(2026, 12, 20)
    minors = [{"kind": "node_pool", "to": to, "due": None} for to in ("1.9", "1.10")]
    assert targets(minors) == "1.10"


def test_recording_a_plan_plans_its_milestones_and_keeps_an_announced_window(store):
    detail = record_plan(store, "openscience", ACTIONS, today=TODAY, batch=2, batches=3)
    assert detail["milestones"]["kubernetes"] == "upgraded_openscience_1.31"
    assert store.get_milestone("openscience", "upgraded_openscience_1.31").due == dt.date(
        2026, 12, 20
    )
    assert store.get_milestone("openscience", "upgraded_openscience_chart-4.3.3").due is None
    key = "upkeep-plan:1.31+chart-4.3.3"
    announced = ["2026-12-14", "2026-12-20", "2026-12-07"]
    store.update_action("openscience", key, {**detail, "window": announced})
    again = record_plan(store, "openscience", ACTIONS, today=TODAY, batch=1, batches=1)
    assert again["window"] == announced
    assert store.get_action("openscience", key).detail["batch"] == 1


def observed(version: str, pools: dict[str, tuple[str, str | None]], since: str | None = None):
    return {
        "name": "c",
        "provider": "aws",
        "control_plane": {"version": version, "since": since},
        "node_pools": [{"name": n, "version": v, "since": s} for n, (v, s) in pools.items()],
        "chart": "4.3.3",
    }


def test_first_observation_takes_what_the_provider_tells_else_today():
    entry = with_history(
        observed("1.31", {"a": ("1.31", "2026-02-01"), "b": ("1.30", None)}, "2025-05-05"),
        None,
        TODAY,
        {},
    )
    assert entry["control_plane"] == {"version": "1.31", "upgraded_on": "2025-05-05"}
    assert [p["upgraded_on"] for p in entry["node_pools"]] == ["2026-02-01", "2026-12-07"]


def test_later_observations_keep_the_day_until_the_version_changes():
    previous = {
        "observed_on": "2026-11-30",
        "cluster": with_history(
            observed("1.31", {"a": ("1.31", None), "b": ("1.30", None)}, "2025-05-05"),
            None,
            dt.date(2026, 11, 30),
            {},
        ),
    }
    now = observed(
        "1.32",
        {"a": ("1.31", None), "b": ("1.32", "2026-12-02"), "c": ("1.32", "2025-01-01")},
        "2025-05-05",  # EKS's creation time, older than the change: not the upgrade's day
    )
    entry = with_history(now, previous, TODAY, {"1.32": dt.date(2026, 12, 3)})
    assert entry["control_plane"]["upgraded_on"] == "2026-12-03"  # its milestone's day
    days = {p["name"]: p["upgraded_on"] for p in entry["node_pools"]}
    assert days["a"] == "2026-11-30"  # unchanged since the first sight
    assert days["b"] == "2026-12-03"  # upgraded to a minor whose milestone was recorded
    entry = with_history(now, previous, TODAY, {})
    days = {p["name"]: p["upgraded_on"] for p in entry["node_pools"]}
    assert days["b"] == "2026-12-02"  # created after the last observation
    assert days["c"] == "2026-12-07"  # a creation time before it proves nothing: today
    assert entry["control_plane"]["upgraded_on"] == "2026-12-07"


def test_upgrades_done_reads_the_clusters_kubernetes_milestones(store):
    store.plan_milestone("openscience", "upgraded_openscience_1.32", None)
    store.plan_milestone("openscience", "upgraded_openscience_chart-4.3.3", None)
    store.plan_milestone("openscience", "upgraded_openscience_1.33", None)
    for key in ("upgraded_openscience_1.32", "upgraded_openscience_chart-4.3.3"):
        store.record_milestone(
            "openscience", key, by="t", at=dt.datetime(2026, 12, 3, 9, tzinfo=dt.UTC)
        )
    done = upgrades_done(store.list_milestones("openscience"), "openscience")
    assert done == {"1.32": dt.date(2026, 12, 3)}


def test_charts_read_and_compared_as_versions():
    chart = "dependencies:\n- name: dask-gateway\n  version: 1.0.0\n- name: jupyterhub\n  version: 4.3.3\n"
    assert jupyterhub_pin(chart) == "4.3.3"
    assert jupyterhub_pin("name: basehub\n") is None
    assert newest_chart(["3.3.9", "v4.10.0", "4.9.1", "5.0.0-beta.1", "latest"]) == "4.10.0"
    assert newest_chart(["nightly"]) is None
    assert oldest_chart(["4.3.3", "4.10.0", "4.2.0"]) == "4.2.0"


def test_the_window_starts_the_notice_days_ahead():
    assert maintenance_window(TODAY, 7, 7) == (dt.date(2026, 12, 14), dt.date(2026, 12, 20))
    assert maintenance_window(TODAY, 0, 1) == (TODAY, TODAY)


def test_an_upgrade_is_done_when_every_action_shows_it():
    entry = {
        "control_plane": {"version": "1.30"},
        "node_pools": [{"name": "user", "version": "1.31"}],
        "chart": "4.3.3",
    }
    assert unmet(ACTIONS, entry) == ["control plane at 1.30, not yet 1.31"]
    entry["control_plane"]["version"] = "1.31"
    assert unmet(ACTIONS, entry) == []  # "old" was replaced by a new pool
    entry["node_pools"].append({"name": "old", "version": "1.27"})
    entry["chart"] = "4.2.0"
    assert unmet(ACTIONS, entry) == [
        "node pool old at 1.27, not yet 1.30",
        "chart at 4.2.0, not yet 4.3.3",
    ]


def test_a_batch_is_pending_until_each_result_is_verified(store):
    after = [("openscience", "1.32")]
    assert pending_clusters(store, after) == ["openscience (1.32)"]
    store.record_action("openscience", "upkeep-result:1.32", "upkeep_result", {"state": "failed"})
    assert pending_clusters(store, after) == ["openscience (1.32)"]
    store.update_action("openscience", "upkeep-result:1.32", {"state": "verified"})
    assert pending_clusters(store, after) == []


def test_the_issue_lists_the_work_in_order_with_reasons_and_dues():
    plan = {
        "planned_on": "2026-12-07",
        "actions": ACTIONS,
        "milestones": upgrade_milestones("jetsci", ACTIONS),
        "batch": 1,
        "batches": 2,
        "window": None,
    }
    assert issue_title("jetsci", ACTIONS) == (
        "Platform upkeep: upgrade jetsci to Kubernetes 1.31 and JupyterHub chart 4.3.3"
    )
    body = render_issue(
        cluster="jetsci",
        name="Jet Science",
        provider="jetstream2",
        plan=plan,
        policy=Policy(),
        hubs=[("prod", "jetsci.2i2c.cloud")],
    )
    lines = [line for line in body.splitlines() if line.startswith("- [ ]")]
    assert lines == [
        "- [ ] Node pool `old`: 1.27 → 1.30",
        "- [ ] Control plane: 1.30 → 1.31 — **due 2026-12-20**",
        "- [ ] Node pool `user`: 1.29 → 1.31",
        "- [ ] JupyterHub chart (basehub's `jupyterhub` dependency): 3.3.8 → 4.3.3, a major "
        "upgrade: read the chart's changelog",
    ]
    assert "its standard support ends on 2026-12-20 (within 90 days" in body
    assert "Not announced yet" in body
    assert "`engagements milestone mark jetsci upgraded_jetsci_chart-4.3.3`" in body
    assert "- prod: https://jetsci.2i2c.cloud" in body
    announced = render_issue(
        cluster="jetsci",
        name="Jet Science",
        provider="jetstream2",
        plan={**plan, "window": ["2026-12-14", "2026-12-20", "2026-12-07"]},
        policy=Policy(),
        hubs=[],
    )
    assert (
        "2026-12-14 to 2026-12-20, announced to the community's representatives on 2026-12-07"
        in announced
    )


def notice(config, **extra):
    values = {
        "actions": ACTIONS,
        "window_start": dt.date(2026, 12, 14),
        "window_end": dt.date(2026, 12, 20),
    } | extra
    return render_email("upkeep-notice", config, Settings(), extra=values, key="upkeep-notice:x")


def test_the_notice_says_what_changes_when_and_what_users_notice(example_config):
    email = notice(example_config)
    text = " ".join(email.text.split())
    assert "between Monday 14 December 2026 and Sunday 20 December 2026" in text
    assert (
        "the cluster's node pool old (the machines hubs run on), from Kubernetes 1.27 to 1.30"
        in text
    )
    assert (
        "JupyterHub (the Helm chart your hubs run), from 3.3.8 to 4.3.3 (a new major version)"
        in text
    )
    assert "new major version of JupyterHub" in text
    assert "save their work" in text
    assert "Standard support for the current Kubernetes version" in text
    assert "https://workshop.openscience.2i2c.cloud" in text
    chart_only = " ".join(notice(example_config, actions=ACTIONS[3:4]).text.split())
    assert "save their work" not in chart_only
    assert "Standard support" not in chart_only


def test_the_notice_goes_to_the_lead_alone_when_no_one_else_represents(example_config):
    lead = example_config.technical_lead
    only = example_config.with_decisions({"representatives": [lead.model_dump(mode="json")]})
    email = notice(only)
    assert (email.to, email.cc) == ((lead.email,), ())


def test_a_window_ending_before_it_starts_is_refused(example_config):
    with pytest.raises(EmailError, match="the window ends"):
        notice(example_config, window_end=dt.date(2026, 12, 1))
