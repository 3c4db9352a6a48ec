"""Waiting for the decommission's teardown change to be reviewed and merged."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import PokeReturnValue
from airflow.sdk.exceptions import AirflowFailException

from engagements.sensors.github import PullRequestMergedSensor
from engagements.tasks.decommission import END_FROM_PARAMS, DecommissionMixin

if TYPE_CHECKING:
    from airflow.sdk import Context


log = logging.getLogger(__name__)


class TeardownMergedSensor(DecommissionMixin, PullRequestMergedSensor):
    """Wait, in reschedule mode, until the teardown change is reviewed and merged.

    Waits on the branch recorded by ``open_teardown_pr`` (one per decommission). Re-reads the
    store on every poke: a renewal recorded while the change waits for review cancels the run
    and withdraws the change, before anyone can merge it.
    """

    template_fields: Sequence[str] = (*PullRequestMergedSensor.template_fields, "contract_end")

    def __init__(self, *, contract_end: str = END_FROM_PARAMS, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.contract_end = contract_end

    def poke(self, context: Context) -> PokeReturnValue | bool:
        self.checked()
        proposed = self.action("teardown-pr")
        if proposed is None:
            raise AirflowFailException("no teardown change is recorded: run open_teardown_pr")
        self.branch = proposed.detail["branch"]
        self.since = proposed.detail.get("base_commit")
        return super().poke(context)
