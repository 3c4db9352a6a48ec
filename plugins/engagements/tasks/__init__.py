"""What every operator and sensor of the package shares.

The community id they act on (templated, from the run's params by default), and the store,
settings and email delivery, built lazily when the task runs: nothing touches the store, a
Connection or a Variable before ``execute``.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator, BaseSensorOperator
from airflow.sdk.exceptions import AirflowFailException

from engagements.deployment import INFRA_PR, STEP_TASKS
from engagements.settings import SettingError, Settings

if TYPE_CHECKING:
    from email.message import EmailMessage

    from airflow.sdk import Context

    from engagements.config import CommunityConfig
    from engagements.store.base import ActionRecord, Engagement, EngagementStore

log = logging.getLogger(__name__)

COMMUNITY_FROM_PARAMS = "{{ params['community_id'] }}"
SMTP_CONN_ID = "smtp_default"
"""The connection every email of the lifecycles goes through, forms' reminders included."""


class EngagementMixin:
    """Store, settings and email delivery, built lazily when the task runs."""

    community_id: str
    smtp_conn_id: str = SMTP_CONN_ID

    @cached_property
    def store(self) -> EngagementStore:
        from engagements.hooks.store import get_store

        return get_store()

    @cached_property
    def settings(self) -> Settings:
        from engagements.settings import load_settings

        return load_settings(use_variables=True)

    def engagement(self) -> tuple[Engagement, CommunityConfig]:
        from engagements.onboarding import effective_config, load_engagement

        engagement = load_engagement(self.store, self.community_id)
        return engagement, effective_config(engagement)

    def deliver(self, message: EmailMessage) -> None:
        from engagements.hooks.smtp import EngagementSmtpHook

        EngagementSmtpHook(smtp_conn_id=self.smtp_conn_id).send_message(message)

    def send(self, kind: str, config: CommunityConfig, **kwargs: Any):
        from engagements.messages.emails import EmailKind
        from engagements.onboarding import send_once

        return send_once(self.store, config, self.settings, EmailKind(kind), self.deliver, **kwargs)

    def send_unrecorded(self, kind: str, config: CommunityConfig, **kwargs: Any) -> ActionRecord:
        """Send an email the caller knows is not sent yet; return the action recording it,
        for the caller to write with its other actions in one request."""
        from engagements.messages.emails import EmailKind
        from engagements.onboarding import deliver_email

        _, action = deliver_email(config, self.settings, EmailKind(kind), self.deliver, **kwargs)
        return action


def first_try(context: Context) -> bool:
    """Whether this is the task's first try: a retry or a cleared task reads the store again
    instead of trusting what a scan read for it before."""
    return getattr(context.get("ti"), "try_number", 1) <= 1


def note_on_run(context: Context, text: str) -> None:
    """Say ``text`` in the task log and on the run's note (written when the run finishes, by
    :mod:`engagements.listeners`: a task cannot set its run's note itself)."""
    from engagements.xcoms import RUN_NOTE_XCOM

    log.warning("%s", text)
    context["ti"].xcom_push(key=RUN_NOTE_XCOM, value=text)


def recorded_change(
    store: EngagementStore, community_id: str, key: str = INFRA_PR
) -> dict[str, Any]:
    """What the pull request task of ``key`` recorded; the later steps read it."""
    action = store.get_action(community_id, key)
    if action is None:
        raise AirflowFailException(
            f"No infrastructure change is recorded for {community_id} (action {key!r}); "
            f"run (or clear) the {STEP_TASKS.get(key, 'pull request')} task first"
        )
    return action.detail


class EngagementOperator(EngagementMixin, BaseOperator):
    """An operator on one engagement: the community id comes from the run's params unless
    given."""

    template_fields: Sequence[str] = ("community_id",)

    def __init__(
        self,
        *,
        community_id: str = COMMUNITY_FROM_PARAMS,
        smtp_conn_id: str = SMTP_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.community_id = community_id
        self.smtp_conn_id = smtp_conn_id


DEFAULT_POKE_INTERVAL = Settings().poke_seconds
"""What the UI shows for a reschedule-mode sensor; the interval used is the setting
``poke_interval`` (7,200 s unless set), read when the task runs."""
DEFAULT_TIMEOUT = dt.timedelta(days=90)
"""Generous hard limit: the sensor fails only if a milestone is three months late."""


class EngagementSensor(EngagementMixin, BaseSensorOperator):
    """A reschedule-mode sensor on one engagement: holds no worker slot between pokes.

    Without an explicit ``poke_interval`` it pokes every ``poke_interval`` setting seconds,
    read (and checked) when the task runs, never when the DAG file is parsed.
    """

    template_fields: Sequence[str] = ("community_id",)

    def __init__(
        self,
        *,
        community_id: str = COMMUNITY_FROM_PARAMS,
        smtp_conn_id: str = SMTP_CONN_ID,
        poke_interval: float | dt.timedelta | None = None,
        timeout: float | dt.timedelta = DEFAULT_TIMEOUT,
        mode: str = "reschedule",
        **kwargs: Any,
    ) -> None:
        if isinstance(timeout, dt.timedelta):
            timeout = timeout.total_seconds()
        self.poke_interval_from_settings = poke_interval is None
        super().__init__(
            poke_interval=DEFAULT_POKE_INTERVAL if poke_interval is None else poke_interval,
            timeout=timeout,
            mode=mode,
            **kwargs,
        )
        self.community_id = community_id
        self.smtp_conn_id = smtp_conn_id

    def execute(self, context: Context) -> Any:
        if self.poke_interval_from_settings:
            self.poke_interval = self.setting_seconds("poke_interval")
        return super().execute(context)

    def setting_seconds(self, name: str) -> int:
        """A setting in seconds; a bad value fails the task naming it (retrying cannot help)."""
        try:
            return self.settings.seconds(name)
        except SettingError as exc:
            raise AirflowFailException(f"{exc}; fix the setting, then clear this task") from None
