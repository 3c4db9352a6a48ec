"""The upkeep's operators and sensors, each run on its own against the store it records into,
the fake GitHub, GKE and a hub health server on loopback, and the fleet file."""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from engagements.operators.upkeep import (
    MaintenanceNoticeOperator,
    ObserveChartReleaseOperator,
    ObserveClusterOperator,
    PlanUpkeepOperator,
    SelectUpkeepOperator,
    UpgradeIssueOperator,
)
from engagements.sensors.upkeep import PreviousBatchSensor, UpgradeVerifiedSensor
from engagements.settings import PROJECT_ROOT
from engagements.tasks.cluster_versions import (
    Connections,
    NotObservable,
    observe_chart,
    observe_kubernetes,
    read_fleet,
)
from engagements.upkeep import UpkeepSettings, load_upkeep_settings
from engagements.upkeep.maintenance import record_plan
from tests.cluster_apis import FakeGke
from tests.hooks.test_github import github_connection
from tests.upkeep.github import UpkeepGitHub

INFRA = "2i2c-org/infrastructure"
RUN = {"logical_date": dt.datetime(2026, 12, 7, 6, tzinfo=dt.UTC)}
FLEET = PROJECT_ROOT / "include" / "fleet.yaml"


@pytest.fixture
def embedded(tmp_path, monkeypatch, local_infra):
    """No connection; the example fleet file seeded; openscience Active."""
    fleet = tmp_path / "fleet.yaml"
    shutil.copy(FLEET, fleet)
    monkeypatch.setenv("ENGAGEMENTS_UPKEEP_FLEET_FILE", str(fleet))
    monkeypatch.setenv("ENGAGEMENTS_ARTIFACTS_DIR", str(tmp_path / "artifacts"))
    return fleet


@pytest.fixture
def active(store):
    store.update_engagement("openscience", status="Active")
    return store


def make(cls, store, **kwargs):
    kwargs.setdefault("community_id", "openscience")
    return fleetwide(cls, store, **kwargs)


def fleetwide(cls, store, **kwargs):
    op = cls(task_id=cls.__name__, **kwargs)
    op.store = store
    return op


def planned(store, actions=None) -> str:
    from engagements.upkeep import load_observation, plan

    actions = (
        actions or plan(load_observation(FLEET), dt.date(2026, 12, 7))["clusters"][0]["actions"]
    )
    record_plan(store, "openscience", actions, today=dt.date(2026, 12, 7), batch=1, batches=1)
    return "1.32+chart-4.3.3"


# Observing.


def test_observe_reads_the_fleet_file_without_connections_and_says_so(active, embedded, caplog):
    caplog.set_level(logging.INFO)
    detail = make(ObserveClusterOperator, active).execute(RUN)
    assert detail["cluster"]["node_pools"][0] == {
        "name": "core",
        "version": "1.30",
        "upgraded_on": "2026-01-10",
    }
    assert detail["offered"]["aws"]["1.31"] == "2026-11-26"
    assert f"kubernetes versions of openscience read from the fleet file {embedded}" in caplog.text
    assert active.get_action("openscience", "upkeep-observation").detail == detail


def test_a_cluster_neither_connected_nor_in_the_fleet_file_is_skipped(active, embedded):
    embedded.write_text(FLEET.read_text().replace("name: openscience", "name: other"))
    with pytest.raises(AirflowSkipException, match="no 'aws_default' connection, and the fleet"):
        make(ObserveClusterOperator, active).execute(RUN)


def test_a_broken_fleet_file_fails_naming_every_problem(embedded):
    embedded.write_text(FLEET.read_text().replace('"4.2.0"', "4.2").replace("aws: {", "mars: {"))
    with pytest.raises(AirflowFailException) as failed:
        read_fleet(load_upkeep_settings())
    message = str(failed.value)
    assert f"{embedded}: kubernetes.mars: unknown provider 'mars'" in message
    assert f"{embedded}: clusters[0].chart: 4.2 is not a chart version" in message


def test_the_chart_is_read_from_the_local_repository_when_it_holds_basehub(
    example_config, embedded, local_infra
):
    from engagements.hooks.infra_repo import load_deployment_settings
    from engagements.hooks.infra_repo.local import LocalGitInfraRepository

    repo = LocalGitInfraRepository(local_infra)
    repo.ensure()
    chart = "dependencies:\n- name: jupyterhub\n  version: 4.3.1\n"
    repo.propose_change("upkeep", {"helm-charts/basehub/Chart.yaml": chart}, "pin", "")
    settings, deployment = load_upkeep_settings(), load_deployment_settings()
    fleet = read_fleet(settings)
    # Not merged yet: the base branch has no Chart.yaml, so the fleet file answers.
    assert observe_chart(example_config, settings, deployment, fleet, Connections())[0] == "4.2.0"
    subprocess.run(["git", "-C", str(local_infra), "merge", "--quiet", "upkeep"], check=True)
    version, source = observe_chart(example_config, settings, deployment, fleet, Connections())
    assert (version, source) == (
        "4.3.1",
        f"helm-charts/basehub/Chart.yaml and config/clusters/openscience/cluster.yaml in {local_infra}",
    )


def test_gke_minors_without_a_known_end_of_support_are_left_out_with_a_warning(
    example_config, monkeypatch, caplog
):
    gke = FakeGke()
    config = example_config.with_decisions(
        {"cloud.provider": "gcp", "cloud.region": "us-central1", "cloud.account": "open-sci-1"}
    )
    gke.add_cluster(
        "open-sci-1", "us-central1", "openscience", "1.33.2-gke.1", {"pool": "1.33.2-gke.1"}
    )
    gke.valid_versions["projects/open-sci-1/locations/us-central1"] = [
        "1.33.2-gke.1",
        "1.34.0-gke.2",
    ]
    gke.end_of_support["1.33"] = "2027-06-30"
    monkeypatch.setenv("AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT", gke.connection("open-sci-1"))
    try:
        _, offered, _ = observe_kubernetes(config, load_upkeep_settings(), None, Connections())
        assert offered == {"1.33": "2027-06-30"}
        assert "GKE offers 1.34 without an end of standard support" in caplog.text
        monkeypatch.setenv(
            "ENGAGEMENTS_UPKEEP_KUBERNETES_VERSIONS", '{"gcp": {"1.34": "2027-10-31"}}'
        )
        _, offered, _ = observe_kubernetes(config, load_upkeep_settings(), None, Connections())
        assert offered == {"1.33": "2027-06-30", "1.34": "2027-10-31"}
    finally:
        gke.close()


def test_azure_needs_its_offered_versions_as_a_setting(example_config, monkeypatch):
    config = example_config.with_decisions(
        {
            "cloud.provider": "azure",
            "cloud.region": "eastus",
            "cloud.account": "0b5c1a77-3f2e-4f51-9d0c-1a2b3c4d5e6f",
        }
    )
    monkeypatch.setenv("AIRFLOW_CONN_KUBERNETES_OPENSCIENCE", '{"conn_type": "kubernetes"}')
    with pytest.raises(NotObservable, match="names no versions azure offers"):
        observe_kubernetes(config, load_upkeep_settings(), None, Connections())


@pytest.fixture
def github(monkeypatch):
    with UpkeepGitHub() as fake:
        monkeypatch.setenv("AIRFLOW_CONN_GITHUB_DEFAULT", github_connection(fake.url))
        monkeypatch.setenv("ENGAGEMENTS_INFRA_REPO", INFRA)
        fake.add_repo(INFRA)
        fake.add_repo("jupyterhub/zero-to-jupyterhub-k8s")
        yield fake


def test_the_newest_chart_release_skips_drafts_and_pre_releases(store, github):
    repo = "jupyterhub/zero-to-jupyterhub-k8s"
    for tag, flags in (
        ("4.2.0", {}),
        ("4.10.1", {"draft": True}),
        ("4.3.3", {}),
        ("5.0.0-alpha.1", {"prerelease": True}),
        ("3.3.9", {}),
    ):
        github.add_release(repo, tag, **flags)
    result = fleetwide(ObserveChartReleaseOperator, store).execute(RUN)
    assert result == {"jupyterhub_chart": "4.3.3", "source": f"GitHub releases of {repo}"}


def test_without_github_the_newest_chart_comes_from_the_fleet_file(store, embedded):
    result = fleetwide(ObserveChartReleaseOperator, store).execute(RUN)
    assert result["jupyterhub_chart"] == "4.3.3"
    embedded.unlink()
    with pytest.raises(AirflowSkipException, match="no fleet file"):
        fleetwide(ObserveChartReleaseOperator, store).execute(RUN)


# Selecting and planning.


def test_scheduled_runs_take_the_active_engagements_and_a_hand_run_one(active, example_config):
    other = example_config.with_decisions({"community_id": "onboarding"})
    active.upsert_engagement("onboarding", other.name, other.to_dict())
    select = make(SelectUpkeepOperator, active, community_id="")
    assert select.execute(RUN) == [{"community_id": "openscience"}]
    with pytest.raises(AirflowSkipException, match="onboarding is Closed-Won"):
        make(SelectUpkeepOperator, active, community_id="onboarding").execute(RUN)
    with pytest.raises(AirflowFailException, match="no engagement for 'nobody'"):
        make(SelectUpkeepOperator, active, community_id="nobody").execute(RUN)


def test_the_plan_step_batches_and_records_each_cluster(active, embedded, example_config):
    from engagements.upkeep import cluster_document, load_observation

    fleet = load_observation(FLEET)
    base = cluster_document(fleet.clusters[0])
    observations = []
    for name, canary in (("openscience", False), ("bsci", True), ("csci", False)):
        entry = {**base, "name": name, **({"canary": True} if canary else {})}
        offered = {"1.31": "2026-11-26", "1.32": "2027-03-23", "1.33": "2027-07-29"}
        if name == "csci":
            offered = {"1.31": "2026-11-20", "1.34": "2027-12-02"}
        observations.append({"cluster": entry, "offered": {"aws": offered}, "sources": {}})
    for name in ("bsci", "csci"):
        config = example_config.with_decisions({"community_id": name})
        active.upsert_engagement(name, config.name, config.to_dict(), status="Active")
    op = fleetwide(
        PlanUpkeepOperator,
        active,
        selected=[{"community_id": c} for c in ("openscience", "bsci", "csci", "dsci")],
        observations=observations,
        release={"jupyterhub_chart": "4.3.3"},
    )
    op.upkeep_settings = UpkeepSettings(upkeep_batch_size="1")
    entries = op.execute(RUN)
    assert [(e["community_id"], e["after"]) for e in entries] == [
        ("bsci", []),
        ("csci", [["bsci", "1.32+chart-4.3.3"]]),
        ("openscience", [["csci", "1.32+chart-4.3.3"]]),
    ]
    assert entries[0]["kubernetes_milestone"] == "upgraded_bsci_1.32"
    document = op.document(observations)
    assert document["kubernetes"]["aws"]["1.31"] == "2026-11-20"  # the earliest answer
    written = json.loads((embedded.parent / "artifacts/upkeep/2026-12-07/plan.json").read_text())
    assert written["batches"] == [["bsci"], ["csci"], ["openscience"]]
    record = active.get_action("csci", "upkeep-plan:1.32+chart-4.3.3").detail
    assert (record["batch"], record["batches"]) == (2, 3)


# Acting.


def test_without_github_the_issue_is_recorded_and_the_step_skips_with_it(active, local_infra):
    key = planned(active)
    with pytest.raises(AirflowSkipException) as skipped:
        make(UpgradeIssueOperator, active, plan=key).execute(RUN)
    assert "Platform upkeep: upgrade openscience to Kubernetes 1.32" in str(skipped.value)
    assert "- [ ] Control plane: 1.31 → 1.32" in str(skipped.value)
    issue = active.get_action("openscience", f"upkeep-issue:{key}").detail
    assert (issue["state"], issue["label"]) == ("planned", "upkeep:openscience")


def test_the_issue_is_opened_once_then_found_and_updated(active, github):
    key = planned(active)
    first = make(UpgradeIssueOperator, active, plan=key).execute(RUN)
    again = make(UpgradeIssueOperator, active, plan=key).execute(RUN)
    assert first == again
    assert first["state"] == "opened"
    assert len(github.calls("POST", rf"/repos/{INFRA}/issues$")) == 1
    assert github.calls("PATCH", rf"/repos/{INFRA}/issues/\d+$") == []
    plan = active.get_action("openscience", f"upkeep-plan:{key}").detail
    window = ["2026-12-14", "2026-12-20", "2026-12-07"]
    active.update_action("openscience", f"upkeep-plan:{key}", {**plan, "window": window})
    make(UpgradeIssueOperator, active, plan=key).execute(RUN)
    (edit,) = github.calls("PATCH", rf"/repos/{INFRA}/issues/\d+$")
    assert "2026-12-14 to 2026-12-20" in edit[2]["body"]
    assert github.repos[INFRA].labels == {"upkeep:openscience"}


def test_the_notice_is_sent_once_with_a_window_a_week_ahead(active):
    key = planned(active)
    sent = []
    notice = make(MaintenanceNoticeOperator, active, plan=key)
    notice.deliver = sent.append
    first = notice.execute(RUN)
    second = notice.execute(RUN)
    today = dt.datetime.now(dt.UTC).date()
    start = today + dt.timedelta(days=7)
    assert first["window"] == [
        start.isoformat(),
        (start + dt.timedelta(days=6)).isoformat(),
        today.isoformat(),
    ]
    assert second == {"window": first["window"], "message_id": None}
    assert len(sent) == 1
    assert sent[0]["Message-ID"] == first["message_id"]


def test_a_window_recorded_but_never_announced_moves_when_it_comes_too_close(active):
    key = planned(active)
    plan = active.get_action("openscience", f"upkeep-plan:{key}").detail
    stale = ["2026-01-05", "2026-01-11", "2025-12-29"]
    active.update_action("openscience", f"upkeep-plan:{key}", {**plan, "window": stale})
    notice = make(MaintenanceNoticeOperator, active, plan=key)
    notice.deliver = lambda message: None
    window = notice.execute(RUN)["window"]
    assert window[0] == (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=7)).isoformat()


# Waiting.


def test_the_batch_gate_opens_when_the_previous_batch_is_verified(active):
    gate = make(PreviousBatchSensor, active, after=[["openscience", "1.32"]])
    assert gate.poke({}) is False
    active.record_action(
        "openscience", "upkeep-result:1.32", "upkeep_result", {"state": "verified"}
    )
    assert gate.poke({}) is True
    assert make(PreviousBatchSensor, active, after=[]).poke({}) is True


class Hubs:
    """Hubs answering ``/<domain>/hub/health`` with ``status``."""

    def __init__(self) -> None:
        self.status = 503
        hubs = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                self.send_response(hubs.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_verification_waits_for_the_versions_and_healthy_hubs(active, embedded, monkeypatch):
    key = planned(active)
    hubs = Hubs()
    monkeypatch.setenv("ENGAGEMENTS_UPKEEP_HEALTH_URL", f"{hubs.url}/{{domain}}/hub/health")
    monkeypatch.setenv("ENGAGEMENTS_HUB_HEALTH", "always")
    verify = make(UpgradeVerifiedSensor, active, plan=key)
    try:
        assert verify.poke({}) is False  # nothing upgraded yet
        assert verify.last_check["hubs"]["prod"] == "HTTP 503 Service Unavailable"
        text = embedded.read_text()
        text = text.replace(
            '{version: "1.31", upgraded_on: 2026-06-01}',
            '{version: "1.32", upgraded_on: 2026-12-10}',
        )
        text = text.replace('version: "1.30"', 'version: "1.32"').replace('"4.2.0"', '"4.3.3"')
        embedded.write_text(text)
        assert verify.poke({}) is False  # the versions are there, the hubs are not healthy
        assert active.get_action("openscience", f"upkeep-result:{key}") is None
        hubs.status = 200
        done = verify.poke({})
    finally:
        hubs.server.shutdown()
        hubs.server.server_close()
    assert done.is_done
    result = active.get_action("openscience", f"upkeep-result:{key}").detail
    assert result["state"] == "verified"
    assert result["hubs"] == dict.fromkeys(("staging", "prod", "workshop", "binder"), "healthy")


def upgraded(fleet) -> None:
    """The fleet file as the cloud would report openscience after its upgrade."""
    text = fleet.read_text()
    text = text.replace(
        '{version: "1.31", upgraded_on: 2026-06-01}', '{version: "1.32", upgraded_on: 2026-12-10}'
    )
    fleet.write_text(
        text.replace('version: "1.30"', 'version: "1.32"').replace('"4.2.0"', '"4.3.3"')
    )


def test_hub_health_is_not_checked_when_the_setting_says_never(active, embedded, monkeypatch):
    key = planned(active)
    upgraded(embedded)
    monkeypatch.setenv("ENGAGEMENTS_HUB_HEALTH", "never")
    done = make(UpgradeVerifiedSensor, active, plan=key).poke({})
    assert done.xcom_value["hubs"] == {"not checked": "engagements_hub_health is never"}
    assert done.xcom_value["state"] == "verified"
