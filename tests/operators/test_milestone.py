"""The ``record`` task after a milestone's wait: who marked it, as Airflow's event log says."""

from __future__ import annotations

from typing import Any

from engagements.operators.milestone import ConfirmMilestoneOperator
from engagements.xcoms import MARKED_BY_XCOM


class FakeTaskInstance:
    """XCom pulls as the Task SDK answers them, from what the API server's listener stored."""

    def __init__(self, xcoms: dict[tuple[str, str], Any], map_index: int = -1) -> None:
        self.xcoms = xcoms
        self.map_index = map_index
        self.pulled: list[tuple[str, str, Any]] = []

    def xcom_pull(self, task_ids: str, key: str, map_indexes: Any = None) -> Any:
        self.pulled.append((task_ids, key, map_indexes))
        return self.xcoms.get((task_ids, key))


def record(store, xcoms: dict, map_index: int = -1) -> tuple[dict, FakeTaskInstance]:
    op = ConfirmMilestoneOperator(
        task_id="record",
        milestone="rollout_meeting_held",
        community_id="openscience",
        wait_task_id="rollout_meeting_held.wait",
    )
    op.store = store
    ti = FakeTaskInstance(xcoms, map_index)
    return op.execute({"run_id": "manual__1", "ti": ti}), ti


def test_the_airflow_user_who_marked_the_wait_is_recorded(store):
    marked = {"user": "bea", "at": "2026-12-01T10:00:00+00:00", "event": "patch_task_instance"}
    result, ti = record(store, {("rollout_meeting_held.wait", MARKED_BY_XCOM): marked})
    milestone = store.get_milestone("openscience", "rollout_meeting_held")
    assert milestone.done
    assert milestone.done_by == "bea (Airflow user)"
    assert "marked rollout_meeting_held.wait success in Airflow at 2026-12-01T10" in milestone.note
    assert result["done_by"] == "bea (Airflow user)"
    assert ti.pulled == [("rollout_meeting_held.wait", MARKED_BY_XCOM, None)]
    again, _ = record(store, {})
    assert again == result  # already recorded: nothing changes


def test_when_it_cannot_be_known_the_record_says_so(store):
    why = "Airflow's event log has no entry naming who set this task's state (a group change)"
    record(store, {("rollout_meeting_held.wait", MARKED_BY_XCOM): {"user": None, "why": why}})
    milestone = store.get_milestone("openscience", "rollout_meeting_held")
    assert milestone.done_by == "unknown Airflow user"
    assert why in milestone.note


def test_without_the_listener_nobody_is_named(store):
    record(store, {})
    milestone = store.get_milestone("openscience", "rollout_meeting_held")
    assert milestone.done_by == "unknown Airflow user"
    assert "without the engagement listeners plugin" in milestone.note


def test_a_mapped_record_reads_its_own_wait(store):
    _, ti = record(store, {}, map_index=3)
    assert ti.pulled == [("rollout_meeting_held.wait", MARKED_BY_XCOM, 3)]


def test_recorded_by_someone_else_first_is_kept(store):
    store.record_milestone("openscience", "rollout_meeting_held", by="Jo (engagements CLI)")
    result, ti = record(store, {("rollout_meeting_held.wait", MARKED_BY_XCOM): {"user": "bea"}})
    assert result["done_by"] == "Jo (engagements CLI)"
    assert ti.pulled == []
