"""End-to-end: the platform upkeep of a fleet of four clusters on four providers, two batches.

Each provider is met where the pipeline talks to it: EKS in moto (its DescribeClusterVersions
at the boto boundary, see ``tests/cluster_apis.py``), GKE's REST API and two Kubernetes API
servers (Azure, Jetstream2) faked over HTTP on loopback, GitHub (the infrastructure repository
with basehub's Chart.yaml and each cluster's cluster.yaml, and the chart's releases) faked
over HTTP, the hubs' ``/hub/health`` on a loopback server, email through the SMTP outbox.

- ``awssci`` (AWS, the canary): control plane 1.31 past its end of support, node group
  ``core`` two minors behind, a hub on chart 4.2.0;
- ``gcpsci`` (GCP): 1.31 no longer offered by GKE, a node pool 1.30;
- ``azuresci`` (Azure): current Kubernetes, a hub on chart 4.1.0;
- ``jetsci`` (Jetstream2): 1.30 with a worker pool at 1.27, which goes first.

An engineer (a thread, as a person at the UI would) waits until the canary's milestone and
the second batch's gates are all waiting, checks that nothing of the second batch happened,
clears the canary's notice and issue tasks (they re-run: nothing new), then upgrades the canary
in the fakes and records its milestones; then does the same for the second batch.

The milestone waits run here as reschedule-mode sensors (``deferrable=False``): the engineer
acts while the canary's wait and the second batch's gates are all waiting, which in
``dag.test()`` (one task at a time, a deferred wait's trigger run inline) only reschedule-mode
waits allow. Deferred waits run end to end in ``test_onboarding_e2e.py`` and ``tests/topology/``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any

import pytest

from tests.cluster_apis import FakeGke, eks_cluster_versions
from tests.dags.e2e import WaitWatcher, cli, own_environment, parse_dag
from tests.decommission.conftest import kept_logger_levels
from tests.hooks.test_github import github_connection
from tests.kubernetes_api import KubernetesApi, connection, node
from tests.upkeep.github import UpkeepGitHub

pytestmark = pytest.mark.e2e

DAG_ID = "engagement_platform_upkeep"
RUN = dt.datetime(2026, 12, 7, 6, tzinfo=dt.UTC)
REGION = "us-west-2"
INFRA = "2i2c-org/infrastructure"
CHART_REPO = "jupyterhub/zero-to-jupyterhub-k8s"
PROJECT = "gcpsci-project"
ZONE = "us-central1-b"
BATCH_2 = ("azuresci", "gcpsci", "jetsci")
TARGETS = {
    "awssci": "1.32+chart-4.3.3",
    "gcpsci": "1.32",
    "azuresci": "chart-4.3.3",
    "jetsci": "1.31",
}
WAITS = {
    "awssci": [("kubernetes", "upgraded_awssci_1.32"), ("chart", "upgraded_awssci_chart-4.3.3")],
    "gcpsci": [("kubernetes", "upgraded_gcpsci_1.32")],
    "azuresci": [("chart", "upgraded_azuresci_chart-4.3.3")],
    "jetsci": [("kubernetes", "upgraded_jetsci_1.31")],
}
OFFERED = {
    "gcp": {"1.32": "2027-04-30", "1.33": "2027-06-30", "1.34": "2027-10-31"},
    "azure": {"1.32": "2027-06-30", "1.33": "2027-10-31", "1.34": "2028-02-28"},
    "jetstream2": {"1.31": "2027-04-30", "1.32": "2027-08-31", "1.33": "2027-12-31"},
}


def chart_yaml(jupyterhub: str) -> str:
    return (
        "apiVersion: v2\nname: basehub\nversion: 0.1.0\ndependencies:\n"
        f"- name: jupyterhub\n  version: {jupyterhub}\n  repository: https://hub.jupyter.org/helm-chart/\n"
        "- name: dask-gateway\n  version: 2026.3.0\n"
    )


def cluster_yaml(cluster: str, override: str | None) -> str:
    hub = f"- name: staging\n  domain: staging.{cluster}.2i2c.cloud\n  helm_chart: basehub\n"
    if override:
        hub += f"  chart_override: {override}\n"
    return f"name: {cluster}\nprovider: aws\nhubs:\n{hub}"


class HubHealth:
    """Every hub answers 200 on ``/<domain>/hub/health``; the domains asked are kept."""

    def __init__(self) -> None:
        self.asked: list[str] = []
        health = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                health.asked.append(self.path.split("/")[1])
                self.send_response(200 if self.path.endswith("/hub/health") else 404)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    with kept_logger_levels():
        yield from _world(tmp_path_factory)


def _world(tmp_path_factory):
    from moto import mock_aws

    home = tmp_path_factory.mktemp("upkeep")
    gke, azure, jet, hubs = FakeGke(), KubernetesApi(), KubernetesApi(), HubHealth()
    with UpkeepGitHub() as github, mock_aws():
        github.add_repo(
            INFRA,
            {
                "helm-charts/basehub/Chart.yaml": chart_yaml("4.3.3"),
                "config/clusters/awssci/cluster.yaml": cluster_yaml("awssci", "hub-chart.yaml"),
                "config/clusters/awssci/hub-chart.yaml": chart_yaml("4.2.0"),
                "config/clusters/azuresci/cluster.yaml": cluster_yaml("azuresci", "old.yaml"),
                "config/clusters/azuresci/old.yaml": chart_yaml("4.1.0"),
                "config/clusters/gcpsci/cluster.yaml": cluster_yaml("gcpsci", None),
            },
        )
        github.add_repo(CHART_REPO)
        for tag, flags in (
            ("3.3.8", {}),
            ("4.3.3", {}),
            ("4.4.0-beta.1", {"prerelease": True}),
            ("3.3.9", {}),
            ("4.4.0", {"draft": True}),
        ):
            github.add_release(CHART_REPO, tag, **flags)
        values = {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AIRFLOW_CONN_AWS_DEFAULT": json.dumps({"conn_type": "aws"}),
            "AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT": gke.connection(PROJECT),
            "AIRFLOW_CONN_KUBERNETES_AZURESCI": connection(azure.url),
            "AIRFLOW_CONN_KUBERNETES_JETSCI": connection(jet.url),
            "AIRFLOW_CONN_GITHUB_DEFAULT": github_connection(github.url),
            "ENGAGEMENTS_INFRA_REPO": INFRA,
            "ENGAGEMENTS_UPKEEP_KUBERNETES_VERSIONS": json.dumps(OFFERED),
            "ENGAGEMENTS_UPKEEP_CANARY_CLUSTERS": "awssci",
            "ENGAGEMENTS_UPKEEP_HEALTH_URL": f"{hubs.url}/{{domain}}/hub/health",
            "ENGAGEMENTS_UPKEEP_FLEET_FILE": str(home / "no-fleet-here.yaml"),
        }
        with (
            own_environment(home, DAG_ID, values),
            eks_cluster_versions(
                {
                    "1.31": dt.date(2026, 11, 26),
                    "1.32": dt.date(2027, 3, 23),
                    "1.33": dt.date(2027, 7, 29),
                    "1.34": dt.date(2027, 12, 2),
                }
            ),
        ):
            _clusters(gke, azure, jet)
            yield SimpleNamespace(
                home=home, github=github, gke=gke, azure=azure, jet=jet, hubs=hubs
            )
    for server in (gke, azure, jet, hubs):
        server.close()


def _clusters(gke: FakeGke, azure: KubernetesApi, jet: KubernetesApi) -> None:
    import boto3

    eks = boto3.client("eks", region_name=REGION)
    role = "arn:aws:iam::123456789012:role/eks"
    eks.create_cluster(
        name="awssci", version="1.31", roleArn=role, resourcesVpcConfig={"subnetIds": ["s-1"]}
    )
    for pool, version in (("core", "1.30"), ("user", "1.31")):
        eks.create_nodegroup(
            clusterName="awssci",
            nodegroupName=pool,
            version=version,
            subnets=["s-1"],
            nodeRole=role,
        )
    gke.add_cluster(
        PROJECT,
        ZONE,
        "gcpsci",
        "1.31.9-gke.1044000",
        {"core-pool": "1.31.9-gke.1044000", "user-pool": "1.30.14-gke.1001000"},
    )
    gke.valid_versions[f"projects/{PROJECT}/locations/{ZONE}"] = [
        "1.32.9-gke.1010000",
        "1.33.5-gke.1080000",
        "1.34.1-gke.1431000",
    ]
    gke.end_of_support["1.31"] = "2026-12-20"
    azure.git_version = "v1.33.3"
    azure.nodes = [
        node("aks-nodepool1-0", "v1.33.3", {"kubernetes.azure.com/agentpool": "nodepool1"}),
    ]
    jet.git_version = "v1.30.8"
    jet.nodes = [
        node("cp-0", "v1.30.8", {"node-role.kubernetes.io/control-plane": ""}, "2026-10-01T00:00:00Z"),
        node("w-0", "v1.27.16", {"capi.stackhpc.com/node-group": "default-worker"}, "2025-06-01T00:00:00Z"),
        node("u-0", "v1.30.8", {"capi.stackhpc.com/node-group": "user-m3"}, "2026-10-02T00:00:00Z"),
    ]  # fmt: skip


def upgrade(world: SimpleNamespace, cluster: str) -> None:
    """What the engineer does following the issue, as each provider then reports it."""
    if cluster == "awssci":
        import boto3
        from moto.eks.models import eks_backends

        eks_backends["123456789012"][REGION].clusters["awssci"].version = "1.32"
        eks = boto3.client("eks", region_name=REGION)
        eks.create_nodegroup(  # a new pool rolled out, the old one removed
            clusterName="awssci",
            nodegroupName="core-132",
            version="1.32",
            subnets=["s-1"],
            nodeRole="arn:aws:iam::123456789012:role/eks",
        )
        eks.delete_nodegroup(clusterName="awssci", nodegroupName="core")
        world.github.commit(
            INFRA, {"config/clusters/awssci/hub-chart.yaml": chart_yaml("4.3.3")}, "awssci chart"
        )
    elif cluster == "gcpsci":
        world.gke.upgrade(PROJECT, ZONE, "gcpsci", "1.32.9-gke.1010000")
    elif cluster == "azuresci":
        world.github.commit(
            INFRA, {"config/clusters/azuresci/old.yaml": chart_yaml("4.3.3")}, "azuresci chart"
        )
    else:
        world.jet.git_version = "v1.31.9"
        world.jet.nodes = [
            node(n, "v1.31.9", labels, "2026-12-10T00:00:00Z")
            for n, labels in (
                ("cp-1", {"node-role.kubernetes.io/control-plane": ""}),
                ("w-1", {"capi.stackhpc.com/node-group": "default-worker"}),
                ("u-1", {"capi.stackhpc.com/node-group": "user-m3"}),
            )
        ]


class Engineer(threading.Thread):
    """Works through the run as described in the module docstring, watching the task states."""

    def __init__(self, world: SimpleNamespace, outbox: Any) -> None:
        super().__init__(daemon=True)
        self.world = world
        self.outbox = outbox
        self.stop = threading.Event()
        self.phase = "canary waits"
        self.seen_before_canary_done: dict[str, Any] = {}
        self.marks: list[subprocess.CompletedProcess] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                self.step(self.states())
                self.stop.wait(0.5)
        except BaseException as exc:  # reported by the test, not lost in the thread
            self.error = exc
            self.stop.set()

    def states(self) -> dict[tuple[str, str], tuple[str | None, int]]:
        from airflow import settings
        from airflow.models.taskinstance import TaskInstance

        with settings.Session() as session:
            rows = session.query(
                TaskInstance.task_id,
                TaskInstance.rendered_map_index,
                TaskInstance.state,
                TaskInstance.try_number,
            ).filter(TaskInstance.dag_id == DAG_ID)
            return {(t, m): (s, n) for t, m, s, n in rows}

    def step(self, states: dict[tuple[str, str], tuple[str | None, int]]) -> None:
        def waiting(task: str, cluster: str) -> bool:
            return states.get((f"upgrade.{task}", cluster), (None, 0))[0] == "up_for_reschedule"

        if self.phase == "canary waits":
            gates = all(waiting("previous_batch", c) for c in BATCH_2)
            if waiting("kubernetes_upgraded.wait", "awssci") and gates:
                self.seen_before_canary_done = {
                    "issues": sorted(i["title"] for i in self.world.github.repos[INFRA].issues),
                    "notices": sorted(self.notices()),
                }
                self.clear("awssci", ("upgrade.notify_community", "upgrade.upgrade_issue"))
                self.phase = "canary tasks cleared"
        elif self.phase == "canary tasks cleared":
            again = [
                states[(task, "awssci")]
                for task in ("upgrade.notify_community", "upgrade.upgrade_issue")
            ]
            if all(state == "success" and tries >= 2 for state, tries in again):
                self.finish("awssci")
                self.phase = "second batch"
        elif self.phase == "second batch" and all(
            waiting(f"{kind}_upgraded.wait", c) for c in BATCH_2 for kind, _ in WAITS[c]
        ):
            for cluster in BATCH_2:
                self.finish(cluster)
            self.phase = "done"
            self.stop.set()

    def notices(self) -> list[str]:
        return [
            m["Message-ID"].split(".")[1]
            for m in self.outbox.messages()
            if m["Message-ID"].startswith("<upkeep-notice.")
        ]

    def clear(self, cluster: str, task_ids: tuple[str, ...]) -> None:
        """What "Clear" on these tasks in the UI does."""
        from airflow import settings
        from airflow.models.taskinstance import TaskInstance, clear_task_instances

        with settings.Session() as session:
            tis = (
                session.query(TaskInstance)
                .filter(
                    TaskInstance.dag_id == DAG_ID,
                    TaskInstance.task_id.in_(task_ids),
                    TaskInstance.rendered_map_index == cluster,
                )
                .all()
            )
            assert len(tis) == len(task_ids)
            clear_task_instances(tis, session, dag_run_state=False)
            session.commit()

    def finish(self, cluster: str) -> None:
        upgrade(self.world, cluster)
        for _, milestone in WAITS[cluster]:
            self.marks.append(cli("milestone", "mark", cluster, milestone, "--note", "upgraded"))


class NothingWaits(WaitWatcher):
    """Fails any task that waits: after the upgrades, a re-run must find nothing to wait for
    (and the test must end rather than wait for a person who is not there)."""

    def __init__(self) -> None:
        super().__init__(DAG_ID)
        self.waited: set[str] = set()

    def on_waiting(self, task_ids: set[str]) -> None:
        from airflow import settings
        from airflow.models.taskinstance import TaskInstance

        self.waited |= task_ids
        with settings.Session() as session:
            session.query(TaskInstance).filter(
                TaskInstance.dag_id == DAG_ID, TaskInstance.state == "up_for_reschedule"
            ).update({"state": "failed"}, synchronize_session=False)
            session.commit()


@pytest.fixture(scope="module")
def store(world):
    from engagements.config import load_config
    from engagements.hooks.store import get_store
    from tests.conftest import EXAMPLE

    store = get_store()
    example = load_config(EXAMPLE)
    for cluster, cloud in {
        "awssci": {},
        "gcpsci": {
            "cloud.provider": "gcp",
            "cloud.region": "us-central1",
            "cloud.zone": ZONE,
            "cloud.account": PROJECT,
        },
        "azuresci": {
            "cloud.provider": "azure",
            "cloud.region": "eastus",
            "cloud.account": "0b5c1a77-3f2e-4f51-9d0c-1a2b3c4d5e6f",
        },
        "jetsci": {
            "cloud.provider": "jetstream2",
            "cloud.region": "IU",
            "cloud.account": "CIS230095",
        },
    }.items():
        config = example.with_decisions({"community_id": cluster, **cloud})
        store.upsert_engagement(cluster, config.name, config.to_dict(), status="Active")
    store.upsert_engagement(
        "quiet", "Quiet", example.with_decisions({"community_id": "quiet"}).to_dict()
    )
    return store


@pytest.fixture(scope="module")
def finished(airflow_db, outbox, world, store):
    from engagements.sensors.milestone import MilestoneSensor

    dag = parse_dag(DAG_ID)
    for task in dag.tasks:  # see the module's docstring
        if isinstance(task, MilestoneSensor):
            task.deferrable = False
    engineer = Engineer(world, outbox)
    engineer.start()
    try:
        run = dag.test(logical_date=RUN, run_after=RUN)
    finally:
        engineer.stop.set()
        engineer.join(10)
    if engineer.error:
        raise engineer.error
    assert engineer.phase == "done", engineer.phase
    assert [m.returncode for m in engineer.marks] == [0] * 5, [m.stderr for m in engineer.marks]
    return SimpleNamespace(run=run, engineer=engineer)


def states_by_cluster(run) -> dict[str, dict[str, str]]:
    """Cluster -> task -> state of the ``upgrade`` groups (a task skipped before it ran has no
    rendered map index: its cluster is that of the group's gate, which always runs)."""
    tis = [ti for ti in run.get_task_instances() if ti.task_id.startswith("upgrade.")]
    names = {ti.map_index: ti.rendered_map_index for ti in tis if ti.task_id.endswith("_batch")}
    table: dict[str, dict[str, str]] = {}
    for ti in tis:
        table.setdefault(names[ti.map_index], {})[ti.task_id.removeprefix("upgrade.")] = ti.state
    return table


def test_the_run_upgrades_every_cluster_with_work(finished):
    assert finished.run.state == "success"
    states = states_by_cluster(finished.run)
    assert set(states) == set(TARGETS)
    for cluster, waits in WAITS.items():
        assert states[cluster]["verify"] == "success", cluster
        assert states[cluster]["upgrade_issue"] == "success", cluster
        kinds = {kind for kind, _ in waits}
        for kind in ("kubernetes", "chart"):
            expected = "success" if kind in kinds else "skipped"
            assert states[cluster][f"{kind}_upgraded.wait"] == expected, (cluster, kind)


def test_each_cluster_was_observed_through_its_provider(finished, store):
    sources = {
        c: store.get_action(c, "upkeep-observation").detail["sources"]["kubernetes"]
        for c in TARGETS
    }
    assert sources["awssci"] == "EKS cluster awssci in us-west-2 (connection aws_default)"
    assert sources["gcpsci"].startswith(f"GKE cluster gcpsci in {PROJECT}/{ZONE}")
    assert sources["azuresci"].startswith("the Kubernetes API of azuresci")
    assert sources["jetsci"].startswith("the Kubernetes API of jetsci")
    chart = store.get_action("azuresci", "upkeep-observation").detail["sources"]["chart"]
    assert chart == (
        f"helm-charts/basehub/Chart.yaml and config/clusters/azuresci/cluster.yaml in {INFRA}"
    )


def test_the_plan_matches_the_cli_on_the_written_observation(finished, world, run):
    folder = world.home / "artifacts" / "upkeep" / "2026-12-07"
    result = run("upkeep", "plan", str(folder / "observation.yaml"), "--today", "2026-12-07")
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan == json.loads((folder / "plan.json").read_text())
    assert plan["batches"] == [["awssci"], ["azuresci", "gcpsci", "jetsci"]]
    actions = {c["name"]: c["actions"] for c in plan["clusters"]}
    assert [(a["kind"], a.get("pool"), a["to"], a["reasons"]) for a in actions["jetsci"]] == [
        ("node_pool", "default-worker", "1.30", ["cadence", "skew"]),
        ("control_plane", None, "1.31", ["outside-window"]),
    ]
    assert [(a["kind"], a.get("pool"), a["to"], a["reasons"]) for a in actions["gcpsci"]] == [
        ("control_plane", None, "1.32", ["cadence", "end-of-support", "outside-window"]),
        ("node_pool", "user-pool", "1.32", ["skew"]),
    ]
    assert actions["gcpsci"][0]["due"] == "2026-12-20"
    assert [a["kind"] for a in actions["azuresci"]] == ["chart"]
    assert actions["azuresci"][0]["from"] == "4.1.0"


def test_the_second_batch_waited_for_the_first(finished):
    seen = finished.engineer.seen_before_canary_done
    assert seen["issues"] == [
        "Platform upkeep: upgrade awssci to Kubernetes 1.32 and JupyterHub chart 4.3.3"
    ]
    assert seen["notices"] == ["awssci"]


def test_one_issue_per_cluster_opened_once_with_its_checklist(finished, world):
    issues = world.github.repos[INFRA].issues
    assert sorted(i["title"] for i in issues) == [
        "Platform upkeep: upgrade awssci to Kubernetes 1.32 and JupyterHub chart 4.3.3",
        "Platform upkeep: upgrade azuresci to JupyterHub chart 4.3.3",
        "Platform upkeep: upgrade gcpsci to Kubernetes 1.32",
        "Platform upkeep: upgrade jetsci to Kubernetes 1.31",
    ]
    assert len(world.github.calls("POST", rf"/repos/{INFRA}/issues$")) == 4
    jetsci = next(i for i in issues if "jetsci" in i["title"])
    assert jetsci["labels"] == ["upkeep:jetsci"]
    body = jetsci["body"]
    assert body.index("Node pool `default-worker`: 1.27 → 1.30") < body.index(
        "Control plane: 1.30 → 1.31"
    )
    assert "batch 2 of 2" in body
    assert re.search(r"\d{4}-\d{2}-\d{2} to \d{4}-\d{2}-\d{2}, announced", body)


def test_one_notice_per_cluster_a_week_ahead(finished, outbox):
    notices = [m for m in outbox.messages() if m["Message-ID"].startswith("<upkeep-notice.")]
    assert sorted(m["Message-ID"].split(".")[1] for m in notices) == sorted(TARGETS)
    start = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=7)
    for message in notices:
        assert f"{start.day} {start:%B %Y}" in str(message["Subject"])
        assert message["Cc"] == "ada@openscience.example.org"


def test_milestones_recorded_and_upgrades_verified_with_healthy_hubs(finished, store, world):
    for cluster, key in TARGETS.items():
        result = store.get_action(cluster, f"upkeep-result:{key}").detail
        assert result["state"] == "verified", cluster
        assert set(result["hubs"].values()) == {"healthy"}, cluster
        for _, milestone in WAITS[cluster]:
            assert store.get_milestone(cluster, milestone).done, milestone
    assert {f"hub.binder.{c}.2i2c.cloud" for c in TARGETS} <= set(world.hubs.asked)


def test_the_overdue_canary_upgrade_emailed_support_once(finished, outbox):
    today = dt.datetime.now(dt.UTC).date()
    expected = {"upgraded_awssci_1.32"} | (
        {"upgraded_gcpsci_1.32"} if today > dt.date(2026, 12, 20) else set()
    )
    overdue = [m for m in outbox.messages() if m["Message-ID"].startswith("<milestone-overdue.")]
    assert len(overdue) == len(expected)
    assert {m["To"] for m in overdue} == {"support@2i2c.org"}


def test_a_rerun_opens_and_sends_nothing(finished, outbox, world, store):
    from airflow import settings
    from airflow.models.dagrun import DagRun

    sent = len(outbox.messages())
    issues = len(world.github.repos[INFRA].issues)
    records = {c: [(a.key, a.kind) for a in store.list_actions(c)] for c in TARGETS}
    with settings.Session() as session:
        row = session.query(DagRun).filter_by(dag_id=DAG_ID, run_id=finished.run.run_id).one()
        row.state = "running"
        session.commit()
    guard = NothingWaits()
    guard.start()
    try:
        rerun = parse_dag(DAG_ID).test(logical_date=RUN, run_after=RUN)
    finally:
        guard.stop.set()
        guard.join(10)
    assert guard.waited == set()
    assert rerun.state == "success"
    assert len(outbox.messages()) == sent
    assert len(world.github.repos[INFRA].issues) == issues
    assert {c: [(a.key, a.kind) for a in store.list_actions(c)] for c in TARGETS} == records
