"""XCom keys shared by the tasks and Airflow's listeners (:mod:`engagements.listeners`), which
hand the tasks what only Airflow's own processes know."""

from __future__ import annotations

MARKED_BY_XCOM = "marked_success_by"
"""Who marked a milestone's wait success in the UI or over REST (written by the API server)."""
RUN_NOTE_XCOM = "run_note"
"""A task's rule or reason for its run's note (written as the note when the run finishes)."""
