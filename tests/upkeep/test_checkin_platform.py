"""The quarterly check-in report shows the cluster's versions and its open upgrades."""

from __future__ import annotations

import datetime as dt
import html
import re

from engagements.checkin import Quarter, build_report, render_report
from engagements.upkeep.maintenance import OBSERVATION, OBSERVATION_KIND


def report(store, config):
    return build_report(
        config,
        Quarter(2027, 1),
        dt.date(2027, 1, 1),
        actions=store.list_actions("openscience"),
        milestones=store.list_milestones("openscience"),
        costs=None,
        cost_source=None,
        cost_note="no cost source",
    )


def texts(report) -> list[str]:
    markdown, page = render_report(report)
    return [markdown, " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())]


def test_without_an_observation_the_report_says_none_is_recorded(store, example_config):
    for text in texts(report(store, example_config)):
        assert "No versions recorded yet: the weekly platform upkeep records them." in text
        assert "No upgrade is open." in text


def test_the_last_observation_and_the_open_upgrades_are_shown(store, example_config):
    store.record_action(
        "openscience",
        OBSERVATION,
        OBSERVATION_KIND,
        {
            "observed_on": "2026-12-07",
            "cluster": {
                "name": "openscience",
                "provider": "aws",
                "control_plane": {"version": "1.31", "upgraded_on": "2026-06-01"},
                "node_pools": [{"name": "core", "version": "1.30", "upgraded_on": "2026-01-10"}],
                "chart": "4.2.0",
            },
        },
    )
    store.plan_milestone("openscience", "upgraded_openscience_1.32", dt.date(2026, 11, 26))
    store.plan_milestone("openscience", "upgraded_openscience_chart-4.3.3", None)
    store.record_milestone("openscience", "upgraded_openscience_chart-4.3.3", by="ada")
    built = report(store, example_config)
    assert [m.key for m in built.open_upgrades] == ["upgraded_openscience_1.32"]
    assert "upgraded_openscience_1.32" not in {m.key for m in built.open_milestones}
    for text in texts(built):
        assert "Versions seen by the platform upkeep on 2026-12-07" in text
        assert "Kubernetes control plane: 1.31 (since 2026-06-01)" in text
        assert "Node pool core: 1.30 (since 2026-01-10)" in text
        assert "JupyterHub chart: 4.2.0" in text
        assert (
            "Planned upgrade: Cluster openscience upgraded to Kubernetes 1.32, due 2026-11-26, "
            "OVERDUE" in text
        )
        assert "chart-4.3.3" not in text
