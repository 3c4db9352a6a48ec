"""The upkeep planner, rule by rule (the contract of ``engagements upkeep plan``)."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest

from engagements.upkeep import (
    Observation,
    ObservationError,
    Policy,
    SettingError,
    UpkeepSettings,
    parse_observation,
    plan,
)

TODAY = dt.date(2026, 12, 4)
AWS = {"1.31": "2026-11-26", "1.32": "2027-03-23", "1.33": "2027-07-29", "1.34": "2027-12-02"}
RECENT = "2026-11-01"


def cluster(name: str = "openscience", version: str = "1.33", **changes: Any) -> dict[str, Any]:
    entry = {
        "name": name,
        "provider": "aws",
        "control_plane": {"version": version, "upgraded_on": RECENT},
        "node_pools": [{"name": "core", "version": version, "upgraded_on": RECENT}],
        "chart": "4.3.3",
    }
    entry.update(changes)
    return entry


def document(*clusters: dict[str, Any], **changes: Any) -> dict[str, Any]:
    doc = {
        "kubernetes": {"aws": dict(AWS), "gcp": {"1.32": "2027-02-28", "1.33": "2027-06-30"}},
        "jupyterhub_chart": "4.3.3",
        "clusters": list(clusters) or [cluster()],
    }
    doc.update(changes)
    return doc


def actions_of(doc: dict[str, Any], today: dt.date = TODAY, **policy: int) -> list[dict]:
    return plan(parse_observation(doc), today, Policy(**policy))["clusters"][0]["actions"]


def problems(doc: Any) -> list[tuple[str, str]]:
    with pytest.raises(ObservationError) as refused:
        parse_observation(doc)
    return refused.value.problems


def test_the_issue_example(example_observation):
    assert plan(example_observation, TODAY) == {
        "today": "2026-12-04",
        "clusters": [
            {
                "name": "openscience",
                "actions": [
                    {
                        "kind": "control_plane",
                        "from": "1.31",
                        "to": "1.32",
                        "reasons": ["cadence", "end-of-support", "outside-window"],
                        "due": "2026-11-26",
                    },
                    {
                        "kind": "node_pool",
                        "pool": "core",
                        "from": "1.30",
                        "to": "1.32",
                        "reasons": ["skew"],
                        "due": None,
                    },
                    {
                        "kind": "chart",
                        "from": "4.2.0",
                        "to": "4.3.3",
                        "reasons": ["chart-behind"],
                        "major": False,
                        "due": None,
                    },
                ],
            }
        ],
        "batches": [["openscience"]],
    }


def test_a_current_cluster_has_nothing_to_do():
    result = plan(parse_observation(document()), TODAY)
    assert result["clusters"] == [{"name": "openscience", "actions": []}]
    assert result["batches"] == []


# Rule 1: outside the window of the newest offered minors.


@pytest.mark.parametrize(
    ("version", "outside"), [("1.31", True), ("1.32", False), ("1.34", False), ("1.29", True)]
)
def test_outside_window(version, outside):
    doc = document(cluster(version=version, node_pools=[]))
    doc["kubernetes"]["aws"] = {
        "1.31": "2028-01-01",
        **{k: "2028-06-01" for k in AWS if k > "1.31"},
    }
    actions = actions_of(doc)
    assert ("outside-window" in (actions[0]["reasons"] if actions else [])) is outside


def test_outside_window_counts_minors_not_offered_any_more():
    doc = document(cluster(version="1.28", node_pools=[]))
    (action,) = actions_of(doc)
    assert action == {
        "kind": "control_plane",
        "from": "1.28",
        "to": "1.29",
        "reasons": ["outside-window"],
        "due": None,
    }


def test_window_size_is_a_setting():
    doc = document(cluster(version="1.32", node_pools=[]))
    assert actions_of(doc) == []
    assert actions_of(doc, supported_minors=2)[0]["reasons"] == ["outside-window"]


def test_minors_compare_as_numbers():
    doc = document(
        cluster(version="1.9", node_pools=[]),
        kubernetes={"aws": {"1.9": "2028-01-01", "1.10": "2028-06-01", "1.11": "2028-09-01"}},
    )
    assert actions_of(doc) == []  # 1.9 is the third newest of 1.9, 1.10, 1.11
    doc["kubernetes"]["aws"]["1.12"] = "2029-01-01"
    assert actions_of(doc)[0]["to"] == "1.10"


# Rule 2: end of standard support.


@pytest.mark.parametrize(
    ("end", "applies"),
    [
        ("2027-03-03", True),  # 89 days after today
        ("2027-03-04", False),  # 90 days: not less than 90
        ("2026-12-04", True),  # today
        ("2026-01-01", True),  # passed
    ],
)
def test_end_of_support(end, applies):
    doc = document(cluster(version="1.33", node_pools=[]))
    doc["kubernetes"]["aws"]["1.33"] = end
    actions = actions_of(doc)
    if applies:
        assert actions[0]["reasons"] == ["end-of-support"]
        assert actions[0]["due"] == end
    else:
        assert actions == []


def test_end_of_support_needs_the_minor_offered():
    doc = document(cluster(version="1.35", node_pools=[]))
    assert actions_of(doc) == []


def test_end_of_support_days_is_a_setting():
    doc = document(cluster(version="1.33", node_pools=[]))
    doc["kubernetes"]["aws"]["1.33"] = "2027-06-01"  # 179 days
    assert actions_of(doc) == []
    assert actions_of(doc, end_of_support_days=180)[0]["due"] == "2027-06-01"


# Rule 3: cadence of the control plane.


@pytest.mark.parametrize(("upgraded_on", "applies"), [("2026-06-03", True), ("2026-06-04", False)])
def test_control_plane_cadence(upgraded_on, applies):
    doc = document(
        cluster(
            version="1.33",
            node_pools=[],
            control_plane={"version": "1.33", "upgraded_on": upgraded_on},
        )
    )
    actions = actions_of(doc)  # 2026-06-03 is 184 days before today, 2026-06-04 183
    assert (actions[0]["reasons"] if actions else []) == (["cadence"] if applies else [])


def test_control_plane_cadence_needs_a_newer_minor():
    old = {"version": "1.34", "upgraded_on": "2025-01-01"}
    assert actions_of(document(cluster(version="1.34", node_pools=[], control_plane=old))) == []


# Rule 4: one minor a time, every reason, due only with end-of-support.


def test_control_plane_moves_one_minor_even_when_that_minor_is_not_offered():
    doc = document(cluster(version="1.20", node_pools=[]))
    doc["kubernetes"]["aws"] = {"1.33": "2028-01-01", "1.34": "2028-06-01", "1.35": "2028-09-01"}
    assert actions_of(doc)[0]["to"] == "1.21"


def test_reasons_are_sorted_and_due_only_with_end_of_support():
    doc = document(
        cluster(
            version="1.32",
            node_pools=[],
            control_plane={"version": "1.32", "upgraded_on": "2025-01-01"},
        )
    )
    action = actions_of(doc, supported_minors=2)[0]
    assert action["reasons"] == ["cadence", "outside-window"]
    assert action["due"] is None


# Rule 5: node pools against the control plane's target.


def pool(name: str, version: str, upgraded_on: str = RECENT) -> dict[str, str]:
    return {"name": name, "version": version, "upgraded_on": upgraded_on}


def test_pools_follow_the_target_of_an_upgraded_control_plane():
    doc = document(
        cluster(
            version="1.31", node_pools=[pool("a", "1.30"), pool("b", "1.31"), pool("c", "1.32")]
        )
    )
    actions = actions_of(doc)
    assert [a["kind"] for a in actions] == ["control_plane", "node_pool"]
    assert actions[1] == {
        "kind": "node_pool",
        "pool": "a",
        "from": "1.30",
        "to": "1.32",
        "reasons": ["skew"],
        "due": None,
    }


def test_pools_follow_a_control_plane_that_stays():
    doc = document(cluster(version="1.33", node_pools=[pool("a", "1.31"), pool("b", "1.32")]))
    assert actions_of(doc) == [
        {
            "kind": "node_pool",
            "pool": "a",
            "from": "1.31",
            "to": "1.33",
            "reasons": ["skew"],
            "due": None,
        }
    ]


@pytest.mark.parametrize(
    ("upgraded_on", "version", "expected"),
    [
        ("2025-12-03", "1.32", ["cadence"]),  # 366 days, one behind
        ("2025-12-04", "1.32", []),  # 365 days
        ("2024-01-01", "1.33", []),  # old but at the target
        ("2024-01-01", "1.34", []),  # ahead of the target
        ("2024-01-01", "1.31", ["cadence", "skew"]),
    ],
)
def test_pool_cadence_and_skew(upgraded_on, version, expected):
    doc = document(cluster(version="1.33", node_pools=[pool("a", version, upgraded_on)]))
    actions = actions_of(doc)
    assert (actions[0]["reasons"] if actions else []) == expected


def test_pool_skew_minors_is_a_setting():
    doc = document(cluster(version="1.33", node_pools=[pool("a", "1.32")]))
    assert actions_of(doc) == []
    assert actions_of(doc, node_pool_skew_minors=1)[0]["reasons"] == ["skew"]


# Rule 6: the order of the work.


def test_pools_three_behind_go_before_the_control_plane():
    old = "2024-01-01"
    doc = document(
        cluster(
            version="1.31",
            node_pools=[pool("a", "1.28", old), pool("b", "1.29"), pool("c", "1.27")],
            chart="4.2.0",
        )
    )
    actions = actions_of(doc)
    assert [(a["kind"], a.get("pool"), a["from"], a["to"], a["reasons"]) for a in actions] == [
        ("node_pool", "a", "1.28", "1.31", ["cadence", "skew"]),
        ("node_pool", "c", "1.27", "1.31", ["skew"]),
        ("control_plane", None, "1.31", "1.32", ["end-of-support", "outside-window"]),
        ("node_pool", "b", "1.29", "1.32", ["skew"]),
        ("chart", None, "4.2.0", "4.3.3", ["chart-behind"]),
    ]


def test_pools_three_behind_without_a_control_plane_upgrade_stay_in_input_order():
    doc = document(cluster(version="1.33", node_pools=[pool("a", "1.33"), pool("b", "1.30")]))
    assert [(a["pool"], a["to"]) for a in actions_of(doc)] == [("b", "1.33")]


# Rule 7: the chart.


@pytest.mark.parametrize(
    ("chart", "latest", "expected"),
    [
        ("4.2.0", "4.3.3", False),
        ("3.3.8", "4.0.0", True),
        ("4.3.3", "4.3.3", None),
        ("4.10.0", "4.9.9", None),  # numeric, not text, comparison
        ("4.9.9", "4.10.0", False),
        ("5.0.0", "4.3.3", None),
    ],
)
def test_chart_behind(chart, latest, expected):
    doc = document(cluster(chart=chart), jupyterhub_chart=latest)
    actions = actions_of(doc)
    if expected is None:
        assert actions == []
    else:
        assert actions == [
            {
                "kind": "chart",
                "from": chart,
                "to": latest,
                "reasons": ["chart-behind"],
                "major": expected,
                "due": None,
            }
        ]


# Rules 8 and 9: every cluster, and the batches.


def test_every_cluster_in_input_order_and_batches_canaries_first():
    names = ["zeta", "alpha", "mid", "beta", "quiet", "gamma", "canb", "cana"]
    clusters = [cluster(name, version="1.31") for name in names]
    clusters[names.index("quiet")] = cluster("quiet")
    for canary in ("canb", "cana"):
        clusters[names.index(canary)]["canary"] = True
    result = plan(parse_observation(document(*clusters)), TODAY, Policy(batch_size=2))
    assert [c["name"] for c in result["clusters"]] == names
    assert next(c for c in result["clusters"] if c["name"] == "quiet")["actions"] == []
    assert result["batches"] == [["cana", "canb"], ["alpha", "beta"], ["gamma", "mid"], ["zeta"]]


def test_canaries_form_one_batch_whatever_its_size_and_no_batch_is_empty():
    clusters = [cluster(f"c{i}", version="1.31", canary=True) for i in range(3)]
    result = plan(parse_observation(document(*clusters)), TODAY, Policy(batch_size=1))
    assert result["batches"] == [["c0", "c1", "c2"]]
    quiet = plan(parse_observation(document(cluster(canary=True))), TODAY, Policy(batch_size=1))
    assert quiet["batches"] == []


# Rule 10: bad input, every problem at once.


def test_every_problem_is_reported_with_its_path():
    doc = document(
        cluster("a", provider="openstack"),
        cluster("a", version="1.33"),
        cluster("c", provider="azure"),
        cluster("d", chart="4.3", node_pools=[pool("x", "1.33"), pool("x", "1.33")]),
    )
    doc["clusters"][1]["control_plane"]["version"] = 1.31
    doc["clusters"][1]["control_plane"]["upgraded_on"] = "2026-02-30"
    doc["kubernetes"]["mars"] = {"1.31": "2027-01-01"}
    doc["kubernetes"]["gcp"]["1.34"] = "someday"
    doc["kubernetes"]["gcp"][1.35] = "2028-01-01"
    assert problems(doc) == [
        ("kubernetes.gcp[1.34]", "'someday' is not a date (YYYY-MM-DD)"),
        ("kubernetes.gcp[1.35]", '1.35 is a number; write the version as a quoted string, e.g. "1.31"'),
        ("kubernetes.mars", "unknown provider 'mars'; expected one of aws, gcp, azure, jetstream2"),
        ("clusters[0].provider", "unknown provider 'openstack'; expected one of aws, gcp, azure, jetstream2"),
        ("clusters[1].name", "duplicate cluster name 'a' (also clusters[0])"),
        ("clusters[1].control_plane.version", '1.31 is a number; write the version as a quoted string, e.g. "1.31"'),
        ("clusters[1].control_plane.upgraded_on", "'2026-02-30' is not a possible date: day is out of range for month"),
        ("clusters[2].provider", "provider 'azure' has no entry under kubernetes"),
        ("clusters[3].node_pools[1].name", "duplicate node pool name 'x' in this cluster"),
        ("clusters[3].chart", "'4.3' is not a chart version MAJOR.MINOR.PATCH"),
    ]  # fmt: skip


def test_missing_required_keys():
    assert problems({}) == [
        ("kubernetes", "missing required key"),
        ("jupyterhub_chart", "missing required key"),
        ("clusters", "missing required key"),
    ]
    doc = document({"node_pools": [{"name": "core"}], "control_plane": {}})
    assert problems(doc) == [
        ("clusters[0].name", "missing required key"),
        ("clusters[0].provider", "missing required key"),
        ("clusters[0].chart", "missing required key"),
        ("clusters[0].control_plane.version", "missing required key"),
        ("clusters[0].control_plane.upgraded_on", "missing required key"),
        ("clusters[0].node_pools[0].version", "missing required key"),
        ("clusters[0].node_pools[0].upgraded_on", "missing required key"),
    ]
    assert problems(document({k: v for k, v in cluster().items() if k != "control_plane"})) == [
        ("clusters[0].control_plane", "missing required key")
    ]


def test_node_pools_may_be_empty_or_absent():
    without = {k: v for k, v in cluster().items() if k != "node_pools"}
    assert parse_observation(document(without)).clusters[0].node_pools == ()
    for empty in ([], None):
        assert parse_observation(document(cluster(node_pools=empty))).clusters[0].node_pools == ()
    assert problems(document(cluster(node_pools="core"))) == [
        ("clusters[0].node_pools", "expected a list of node pools")
    ]


def test_a_broken_provider_entry_is_reported_once():
    doc = document()
    doc["kubernetes"]["aws"] = ["1.31"]
    assert problems(doc) == [
        (
            "kubernetes.aws",
            "expected a mapping of each offered minor version to its end of standard support",
        )
    ]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("1.31.2", "'1.31.2' is not a Kubernetes minor version such as \"1.31\""),
        ("v1.31", "'v1.31' is not a Kubernetes minor version such as \"1.31\""),
        ("2.0", "'2.0' is not a Kubernetes minor version such as \"1.31\""),
        ("1.031", "'1.031' is not a Kubernetes minor version such as \"1.31\""),
        (131, '131 is a number; write the version as a quoted string, e.g. "1.31"'),
    ],
)
def test_versions_must_be_quoted_minor_strings(value, reason):
    doc = document()
    doc["clusters"][0]["control_plane"]["version"] = value
    assert problems(doc) == [("clusters[0].control_plane.version", reason)]


@pytest.mark.parametrize("chart", ["4.3", "v4.3.3", "4.3.3-beta.1", "04.3.3", 4.3])
def test_charts_must_be_major_minor_patch(chart):
    assert problems(document(jupyterhub_chart=chart)) == [
        ("jupyterhub_chart", f"{chart!r} is not a chart version MAJOR.MINOR.PATCH")
    ]


def test_unknown_keys_and_wrong_shapes_are_named():
    doc = document(cluster(canery=True, canary="yes"), extra=1)
    assert problems(doc) == [
        ("extra", "unknown key"),
        ("clusters[0].canery", "unknown key"),
        ("clusters[0].canary", "'yes' is not true or false"),
    ]
    assert problems([]) == [("(top level)", "expected a mapping")]
    assert problems(document(clusters={"a": 1}, kubernetes={"aws": {}})) == [
        (
            "kubernetes.aws",
            "expected a mapping of each offered minor version to its end of standard support",
        ),
        ("clusters", "expected a list of clusters"),
    ]


def test_policy_settings_are_whole_numbers():
    assert Policy.from_settings(UpkeepSettings()) == Policy()
    custom = Policy.from_settings(
        UpkeepSettings(upkeep_batch_size="2", upkeep_end_of_support_days="0")
    )
    assert (custom.batch_size, custom.end_of_support_days) == (2, 0)
    for name, value in (
        ("batch_size", "0"),
        ("supported_minors", "three"),
        ("node_pool_cadence_days", "-1"),
    ):
        with pytest.raises(SettingError, match=f"engagements_upkeep_{name}: '{value}'"):
            Policy.from_settings(UpkeepSettings(**{f"upkeep_{name}": value}))


@pytest.fixture
def example_observation() -> Observation:
    from engagements.settings import PROJECT_ROOT
    from engagements.upkeep import load_observation

    return load_observation(PROJECT_ROOT / "include" / "fleet.yaml")


def test_parsing_does_not_change_the_document():
    doc = document()
    before = copy.deepcopy(doc)
    parse_observation(doc)
    assert doc == before
