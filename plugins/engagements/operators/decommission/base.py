"""The decommission operators' base (with its end date, action log, guards and cancellation
from :mod:`engagements.tasks.decommission`), and the archive buckets of the AWS steps."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowSkipException

from engagements.hooks import connection_exists
from engagements.tasks import EngagementOperator
from engagements.tasks.decommission import END_FROM_PARAMS, DecommissionMixin

if TYPE_CHECKING:
    from engagements.hooks.archive import HomeArchiveHook
    from engagements.operators.decommission.buckets import ArchiveBuckets

log = logging.getLogger(__name__)


class DecommissionOperator(DecommissionMixin, EngagementOperator):
    template_fields: Sequence[str] = ("community_id", "contract_end")

    def __init__(self, *, contract_end: str = END_FROM_PARAMS, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.contract_end = contract_end


class AwsMixin:
    aws_conn_id: str

    @cached_property
    def archive_hook(self) -> HomeArchiveHook:
        from engagements.hooks.archive import HomeArchiveHook

        return HomeArchiveHook(aws_conn_id=self.aws_conn_id)

    @cached_property
    def archive_buckets(self) -> ArchiveBuckets:
        from engagements.operators.decommission.buckets import ArchiveBuckets

        return ArchiveBuckets(self.archive_hook)

    def require_aws(self, plan: str) -> None:
        if not connection_exists(self.aws_conn_id):
            raise AirflowSkipException(
                f"skipped: no AWS connection {self.aws_conn_id!r} configured — plan: {plan}"
            )
