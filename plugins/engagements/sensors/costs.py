"""Waiting for a month's cloud cost that an engineer records by hand."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import PokeReturnValue

from engagements.sensors.milestone import MilestoneSensor

if TYPE_CHECKING:
    from airflow.sdk import Context


class CostEntrySensor(MilestoneSensor):
    """Wait for an engineer to record the month's cost, for providers without a billing API.

    For any other provider it is done at once. The milestone is planned with its deadline
    when the wait starts, and an overdue notice goes to support once.
    """

    template_fields: Sequence[str] = ("community_id", "milestone", "month")

    def __init__(self, *, month: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.month = month

    def before_check(self, context: Context) -> PokeReturnValue | None:
        from engagements.billing import Month
        from engagements.costs import ENTRY_PROVIDERS, cost_entry_due

        _, config = self.engagement()
        if config.cloud.provider not in ENTRY_PROVIDERS:
            return PokeReturnValue(is_done=True, xcom_value={"needed": False})
        if self.store.get_milestone(self.community_id, self.milestone) is None:
            due = cost_entry_due(Month.parse(self.month))
            self.store.plan_milestone(self.community_id, self.milestone, due)
        return None
