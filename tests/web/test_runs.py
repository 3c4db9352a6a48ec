"""Lifecycle runs in progress, read from the metadata DB and linked to Airflow's grid."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from engagements.onboarding import register
from engagements.params import flatten_config


@pytest.fixture(scope="module")
def serialized_dags(api_app) -> None:
    """This project's DAGs in the metadata DB, as the dag-processor leaves them."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import BundleDagBag, sync_bag_to_db
    from airflow.utils.session import create_session

    manager = DagBundlesManager()
    with create_session() as session:
        manager.sync_bundles_to_db(session=session)
    for bundle in manager.get_all_dag_bundles():
        if not bundle.is_initialized:
            bundle.initialize()
        bag = BundleDagBag(dag_folder=bundle.path, bundle_path=bundle.path, bundle_name=bundle.name)
        assert not bag.import_errors, bag.import_errors
        sync_bag_to_db(bag, bundle.name, bundle.version)


@pytest.fixture
def trigger():
    """Start runs as users start them (Airflow's REST API); delete them afterwards, so that no
    other test meets them in the shared metadata DB."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    started: list[tuple[str, str]] = []

    def start(client, dag_id: str, conf: dict) -> str:
        run_id = start_run(client, dag_id, conf)
        started.append((dag_id, run_id))
        return run_id

    yield start
    with create_session() as session:
        for dag_id, run_id in started:
            session.delete(session.query(DagRun).filter_by(dag_id=dag_id, run_id=run_id).one())


def start_run(client, dag_id: str, conf: dict) -> str:
    response = client.post(
        f"/api/v2/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf}
    )
    assert response.status_code == 200, response.text
    return response.json()["dag_run_id"]


def set_state(dag_id: str, run_id: str, task_id: str, state: str, map_index: int = -1) -> None:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        ti = (
            session.query(TaskInstance)
            .filter_by(dag_id=dag_id, run_id=run_id, task_id=task_id, map_index=map_index)
            .one()
        )
        ti.state = state


def add_mapped_task(dag_id: str, run_id: str, task_id: str, community: str, index: int) -> None:
    """What the scheduler leaves once a mapped task of ``community`` ran and is waiting."""
    from airflow.models.dagrun import DagRun
    from airflow.models.serialized_dag import SerializedDagModel
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        run = session.query(DagRun).filter_by(dag_id=dag_id, run_id=run_id).one()
        dag = SerializedDagModel.get_dag(dag_id, session=session)
        ti = TaskInstance(
            dag.get_task(task_id),
            run_id=run_id,
            map_index=index,
            dag_version_id=run.created_dag_version_id,
        )
        ti.state = "up_for_reschedule"
        ti._rendered_map_index = community  # what rendering map_index_template stores
        session.add(ti)


@pytest.mark.usefixtures("serialized_dags")
def test_runs_in_progress_link_to_the_grid_and_name_what_waits(
    script, browser, web_store, example_config, trigger
) -> None:
    register(web_store, example_config, run_id="r", run_state=lambda _: None)
    admin = script("admin")
    onboarding = trigger(admin, "engagement_onboarding", flatten_config(example_config.to_dict()))
    set_state(
        "engagement_onboarding",
        onboarding,
        "rollout_coordinator_identified.wait",
        "up_for_reschedule",
    )
    checkin = trigger(admin, "engagement_quarterly_checkin", {})
    add_mapped_task(
        "engagement_quarterly_checkin", checkin, "checkin.checkin_held.wait", "openscience", 0
    )
    add_mapped_task(
        "engagement_quarterly_checkin", checkin, "checkin.checkin_held.wait", "elsewhere", 1
    )
    trigger(admin, "engagement_cost_watch", {})  # nothing of this run is for anyone yet

    row = script("viewer").get("/engagements/api/engagements").json()["engagements"][0]
    runs = {run["dag_id"]: run for run in row["runs"]}
    assert set(runs) == {"engagement_onboarding", "engagement_quarterly_checkin"}
    assert runs["engagement_onboarding"]["run_id"] == onboarding
    assert runs["engagement_onboarding"]["state"] == "queued"
    assert runs["engagement_onboarding"]["waiting"] == ["rollout_coordinator_identified.wait"]
    assert runs["engagement_onboarding"]["grid_url"] == (
        f"/dags/engagement_onboarding/runs/{quote(onboarding, safe='')}"
    )
    assert runs["engagement_quarterly_checkin"]["waiting"] == ["checkin.checkin_held.wait"]

    page = browser("viewer").get("/engagements/").text
    assert f'href="/dags/engagement_onboarding/runs/{quote(onboarding, safe="")}"' in page
    assert "waiting: rollout_coordinator_identified.wait" in page
    # The grid link leads to Airflow's own page for the run.
    grid = browser("viewer").get(runs["engagement_onboarding"]["grid_url"])
    assert grid.status_code == 200
