"""End-to-end under the LocalExecutor (the executor of ``airflow standalone`` and many single
machine deployments): PostgreSQL and real processes as in ``scripts/topology.sh`` with
``TOPOLOGY_EXECUTOR=LocalExecutor``, the scheduler running every task, the triggerer holding
every deferred wait.

One quarterly check-in over eight communities whose meeting milestones are recorded in the
store the moment their waits are seen running or deferred (apache/airflow#72716, see
``tests/topology/race.py``), one wait marked success through the REST API as the UI does, and
every outcome form answered: the run succeeds. Every process is stopped at the end.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from engagements.store.local import LocalStore
from tests.topology.harness import Api, Topology
from tests.topology.race import run_checkins_recording_at_deferral, seed_active, state_mismatches

pytestmark = [pytest.mark.topology, pytest.mark.e2e]


@pytest.fixture(scope="module")
def topology() -> Iterator[Topology]:
    with Topology(executor="LocalExecutor").running() as topology:
        yield topology


@pytest.fixture(scope="module")
def api(topology: Topology) -> Iterator[Api]:
    api = topology.client()
    yield api
    api.close()


def test_recorded_at_deferral_and_marked_success_under_the_local_executor(
    topology: Topology, api: Api
) -> None:
    communities = seed_active(topology, 8)
    result = run_checkins_recording_at_deferral(topology, api, communities, mark_last=True)

    print(  # the figures of the proof, in the test output (pytest -s)
        f"LocalExecutor: {len(result.recorded)} recorded at deferral {result.recorded}; "
        f"states {result.states()}; retried {result.retried()}; "
        f"scheduler state mismatches {state_mismatches(topology)}"
    )
    assert result.run["state"] == "success", result.states()
    assert set(result.recorded) == set(communities[:-1])
    assert "deferred" in set(result.recorded.values()) <= {"running", "deferred"}
    assert not {"failed", "upstream_failed"} & set(result.states())
    # The wait marked success: the pipeline's `record` task recorded the milestone, naming the
    # Airflow user from the API server's event log of that state change.
    assert result.marked == communities[-1]
    store = LocalStore(topology.store_path)
    (held,) = [m for m in store.list_milestones(result.marked) if m.milestone.startswith("checkin")]
    assert held.done_by == "admin (Airflow user)"
