"""What every decommission step shares, operator or sensor: its end date, its action log, the
guards that re-read the store before anything is done, and the cancellation when a renewal was
recorded."""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from engagements.store.base import EngagementStatus, upsert_action
from engagements.tasks import EngagementMixin

if TYPE_CHECKING:
    from engagements.config import CommunityConfig
    from engagements.store.base import ActionRecord, Engagement

log = logging.getLogger(__name__)


END_FROM_PARAMS = "{{ params['end_date'] }}"


def today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


class DecommissionMixin(EngagementMixin):
    """The decommission's end date, action log, guards and cancellation."""

    contract_end: str
    """The contract end this decommission is for (the run's ``end_date``), templated."""

    @property
    def end(self) -> dt.date:
        try:
            return dt.date.fromisoformat(str(self.contract_end))
        except ValueError:
            raise AirflowFailException(f"end_date {self.contract_end!r} is not a date") from None

    def key(self, step: str) -> str:
        from engagements.decommission.dates import action_key

        return action_key(step, self.end)

    def action(self, step: str) -> ActionRecord | None:
        return self.store.get_action(self.community_id, self.key(step))

    def record(self, step: str, kind: str, detail: dict[str, Any]) -> None:
        """Record the step; a re-run replaces the detail of the same step."""
        upsert_action(self.store, self.community_id, self.key(step), kind, detail)

    def ensure_not_cancelled(self) -> None:
        cancelled = self.action("cancelled")
        if cancelled is not None:
            raise AirflowSkipException(f"cancelled: {cancelled.detail.get('reason')}")

    def checked(
        self, statuses: frozenset[EngagementStatus] | None = None
    ) -> tuple[Engagement, CommunityConfig]:
        """The engagement, re-read now, if this decommission may go on; else cancel or stop."""
        from engagements.decommission.dates import (
            DecommissionCancelled,
            DecommissionRefused,
            check_identity,
            check_still_ending,
        )

        self.ensure_not_cancelled()
        engagement, config = self.engagement()
        try:
            check_identity(self.community_id, engagement, config)
            check_still_ending(engagement, self.end, config.contract.end, statuses=statuses)
        except DecommissionCancelled as exc:
            self.cancel(config, exc)
        except DecommissionRefused as exc:
            raise AirflowFailException(str(exc)) from None
        return engagement, config

    def cancel(self, config: CommunityConfig, exc: Exception) -> None:
        """Record the cancellation; tell the community if it was told of the decommission.

        A teardown change still under review is withdrawn. One already merged cannot be, so
        the task fails, naming the change to revert. After the destroy step nothing is
        cancelled: the task fails saying so, for a person to restore the community.
        """
        from engagements.decommission.dates import NoticeStage, notice_key

        destroyed = self.action("destroy") or self.action("cluster-gone")
        if destroyed is not None:
            raise AirflowFailException(
                f"{exc}, but the cluster was already destroyed (recorded "
                f"{destroyed.created_at:%Y-%m-%d}): nothing is cancelled and the community is "
                "not told so. Restoring it is a new deployment from the backup."
            )
        told = [
            stage.value
            for stage in NoticeStage
            if self.store.get_action(self.community_id, f"email:{notice_key(stage, self.end)}")
        ]
        if told:
            self.send(
                "decommission-cancelled",
                config,
                key=f"decommission-cancelled:{self.end.isoformat()}",
                extra={"end_date": self.end, "new_end": getattr(exc, "new_end", None)},
            )
        detail: dict[str, Any] = {"reason": str(exc), "notices_sent": told}
        self.record("cancelled", "decommission", detail | {"teardown_change": None})
        log.warning("%s", exc)
        change = self._withdraw_teardown(exc)
        if change is not None:
            self.record("cancelled", "decommission", detail | {"teardown_change": change})
        if change is not None and change["state"] != "withdrawn":
            raise AirflowFailException(f"cancelled: {exc}. {change['todo']} Nothing was destroyed.")
        raise AirflowSkipException(f"cancelled: {exc}")

    def _withdraw_teardown(self, exc: Exception) -> dict[str, str] | None:
        """Take back the teardown change if there is one; what became of it, and what to do."""
        from engagements.hooks.github import GitHubError
        from engagements.hooks.infra_repo import (
            ChangeState,
            InfraRepositoryError,
            get_infra_repository,
            load_deployment_settings,
        )

        proposed = self.action("teardown-pr")
        if proposed is None:
            return None
        branch = proposed.detail["branch"]
        try:
            repo = get_infra_repository(load_deployment_settings(use_variables=True))
            where = repo.describe(branch)
            state = repo.withdraw_change(branch, f"the decommission was cancelled: {exc}")
        except (GitHubError, InfraRepositoryError) as err:
            todo = f"The teardown change {branch} could not be withdrawn ({err}): close it by hand."
            return {"branch": branch, "state": "not withdrawn", "todo": todo}
        log.warning("Teardown change %s is now %s", branch, state.value)
        if state is ChangeState.MERGED:
            todo = (
                f"The teardown change was already merged ({where}): revert it to bring the "
                "cluster's configuration back."
            )
            return {"branch": branch, "state": "merged", "where": where, "todo": todo}
        return {"branch": branch, "state": "withdrawn", "where": where}

    def archive_plan(self, config: CommunityConfig) -> dict[str, str]:
        """Hub -> archive bucket."""
        from engagements.decommission.archive import archive_bucket, hubs_with_homes

        return {hub: archive_bucket(config.cluster_name, hub) for hub in hubs_with_homes(config)}

    def archive_date(self) -> dt.date | None:
        backup = self.action("backup")
        return dt.date.fromisoformat(backup.detail["archive_date"]) if backup else None
