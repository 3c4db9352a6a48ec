"""The teardown approval: an engineer sees the verified manifests and the steps, and types the
community id to approve them."""

from __future__ import annotations

import datetime as dt
import logging
import re
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk import Param
from airflow.sdk.definitions.param import ParamsDict
from airflow.sdk.exceptions import AirflowFailException

from engagements.operators.decommission.base import AwsMixin
from engagements.operators.hitl import AskAgainMixin
from engagements.tasks import COMMUNITY_FROM_PARAMS, SMTP_CONN_ID
from engagements.tasks.decommission import END_FROM_PARAMS, DecommissionMixin

if TYPE_CHECKING:
    from airflow.sdk import Context

    from engagements.config import CommunityConfig
    from engagements.decommission.verification import Manifest
    from engagements.operators.decommission.buckets import ArchiveBuckets

log = logging.getLogger(__name__)


MANIFEST_ROWS = 200
"""Rows of the per-user table in the approval form; the full manifest is in the bucket."""


def _manifests(hook: ArchiveBuckets, detail: dict[str, Any]) -> list[Manifest]:
    """The verified manifests, read back from their buckets for the approval form."""
    from engagements.decommission.verification import manifest_from_dict

    manifests = []
    for summary in detail["hubs"].values():
        data = hook.read_manifest(summary["bucket"], dt.date.fromisoformat(summary["archive_date"]))
        if data is None:
            raise AirflowFailException(f"the manifest {summary['manifest']} cannot be read")
        manifests.append(manifest_from_dict(data))
    return manifests


def confirm_param(community_id: str | None) -> Param:
    """The approval's confirmation field: the community id, or empty (to reject)."""
    rule = {"pattern": f"^(?:{re.escape(community_id)})?$"} if community_id else {}
    return Param(
        "",
        type="string",
        description="Type the community id to confirm which community is torn down.",
        **rule,
    )


class TeardownApprovalOperator(AskAgainMixin, AwsMixin, DecommissionMixin, ApprovalOperator):
    """An engineer approves the teardown, seeing the verified backup manifest and the plan.

    The form asks for the community id to be typed: it must equal the run's. Reject skips the
    teardown; nothing is removed.
    """

    template_fields = (*ApprovalOperator.template_fields, "community_id", "contract_end")

    def __init__(
        self,
        *,
        community_id: str = COMMUNITY_FROM_PARAMS,
        contract_end: str = END_FROM_PARAMS,
        aws_conn_id: str = "aws_default",
        smtp_conn_id: str = SMTP_CONN_ID,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("subject", "Tear down {{ params['community_id'] }}?")
        kwargs["params"] = {"confirm_community_id": confirm_param(None)}
        super().__init__(**kwargs)
        self.community_id = community_id
        self.contract_end = contract_end
        self.aws_conn_id = aws_conn_id
        self.smtp_conn_id = smtp_conn_id

    def execute(self, context: Context):
        _, config = self.checked()
        self.prepare_form(config)
        self.params = ParamsDict({"confirm_community_id": confirm_param(config.community_id)})
        return super().execute(context)

    def prepare_form(self, config: CommunityConfig) -> None:
        """The form's body: the verified manifests read back from S3, and the teardown steps.

        The steps shown are recorded now (``approval-form``): the answer approves these,
        whatever the settings say by the time someone answers.
        """
        from engagements.decommission.teardown import teardown_steps
        from engagements.decommission.verification import manifest_markdown

        verified = self.action("backup-verified")
        if verified is None:
            raise AirflowFailException("the backup is not verified; there is nothing to approve")
        manifests = _manifests(self.archive_buckets, verified.detail)
        steps = teardown_steps(config, self.settings.teardown_command)
        self.record("approval-form", "approval", {"steps": steps.to_dict()})
        folder, *iac = steps.removes
        self.body = (
            f"Approve removing **{config.name}** (`{config.community_id}`): its cluster "
            f"`{steps.cluster}` ({steps.provider}) and hubs. The contract ended on "
            f"{self.end}.\n\n"
            "### Backup (verified)\n\n"
            + manifest_markdown(manifests, max_rows=MANIFEST_ROWS)
            + "\n### What happens on Approve\n\n"
            f"1. A pull request removes `{folder}` and "
            + ", ".join(f"`{p}`" for p in iac)
            + ".\n2. Once it is merged, the destroy step runs exactly these commands:\n\n```\n"
            + "\n".join(steps.commands)
            + "\n```\n3. The providers are asked whether the cluster is gone.\n\n"
            f"Digest of these steps: `{steps.digest}`. If the plan changes after you approve "
            "(the engagement's config or the teardown_command setting), nothing runs until it "
            "is approved again.\n\n"
            f"Type `{config.community_id}` in **confirm_community_id** to approve."
        )

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        from engagements.decommission.dates import DecommissionRefused
        from engagements.decommission.teardown import (
            check_unchanged,
            recorded_steps,
            teardown_steps,
        )

        if "error" in event:
            return super().execute_complete(context, event)  # raises the HITL error
        self.checked()  # a renewal recorded while the form waited cancels here
        self.checked_answer(context, event)  # options and fields, before anything is recorded
        chosen = event["chosen_options"]
        approved = self.APPROVE in chosen
        answer = (event.get("params_input") or {}).get("confirm_community_id") or ""
        if approved and answer.strip() != self.community_id:
            self.ask_again(
                context,
                f"confirm_community_id is {answer!r}, not {self.community_id!r}: the approval "
                "is refused and nothing was removed",
            )
        form = self.action("approval-form")
        detail: dict[str, Any] = {"approved": approved}
        if approved:  # what is approved is what the form showed, and only if still planned
            if form is None:
                self.ask_again(
                    context,
                    "the steps this form showed are not recorded (approval-form), so there is "
                    "nothing to approve; the form shows them again. Nothing was approved or "
                    "removed",
                )
            _, config = self.engagement()
            try:
                steps = recorded_steps(form.detail)
                check_unchanged(steps, teardown_steps(config, self.settings.teardown_command))
            except DecommissionRefused as exc:
                self.ask_again(context, f"not approved: {exc} The form shows the plan as it is now")
            detail["steps"] = steps.to_dict()
        elif form is not None:
            detail["steps"] = form.detail.get("steps")
        who = (event.get("responded_by_user") or {}).get("name") or "unknown"
        # Recorded first: a rejection skips the teardown, which ends this task at once.
        self.record(
            "approval",
            "approval",
            detail | {"by": who, "at": str(event.get("responded_at"))},
        )
        verdict = "APPROVED" if approved else "rejected"
        log.warning("Teardown of %s %s by %s", self.community_id, verdict, who)
        return super().execute_complete(context, event)
