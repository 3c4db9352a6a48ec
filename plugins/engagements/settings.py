"""Runtime settings: internal addresses, links and folders.

Read when a task or command runs, never at DAG parse time. Each setting comes from the
Airflow Variable ``engagements_<name>`` when running inside Airflow, else from the
environment variable ``ENGAGEMENTS_<NAME>``, else from the default below.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


class SettingError(ValueError):
    """A setting has a value the pipelines cannot use; the message names the setting."""


PROJECT_ROOT = Path(__file__).resolve().parents[2]
MAX_SECONDS = 86_400
"""The longest interval a setting in seconds may have: a day."""


def default_home() -> str:
    """Where files live by default: Airflow's home, else ``.airflow`` in the project."""
    return os.environ.get("AIRFLOW_HOME", str(PROJECT_ROOT / ".airflow"))


@dataclass(frozen=True)
class Settings:
    sender: str = "2i2c Product and Services Team <engagements@2i2c.org>"
    bd_email: str = "bd@2i2c.org"
    support_email: str = "support@2i2c.org"
    scheduling_link: str = "https://cal.com/2i2c/technical-meeting"
    rollout_scheduling_link: str = "https://cal.com/2i2c/rollout-meeting"
    forum_url: str = "https://discourse.2i2c.org"
    images_guide_url: str = "https://docs.2i2c.org/admin/howto/environment/"
    checkin_scheduling_link: str = "https://cal.com/2i2c/quarterly-check-in"
    cost_alert_threshold_pct: str = "20"
    aws_cluster_tag: str = "2i2c.org/cluster-name"
    aws_shared_accounts: str = ""
    gcp_billing_project: str = "{account}"
    gcp_billing_table: str = ""
    artifacts_dir: str = ""
    store_path: str = ""
    archive_image: str = "public.ecr.aws/aws-cli/aws-cli:2.27.0"
    """Image of the home-directory archive job: needs sh, tar, gzip, md5sum, du and aws."""
    archive_command: str = ""
    """Shell script of the archive job; empty uses the built-in one (see operators/decommission)."""
    archive_region: str = "us-west-2"
    """Region of the archive buckets of communities whose cluster is not on AWS."""
    archive_service_account: str = ""
    """Service account of the archive job in each hub namespace, bound to a cloud identity
    that may write the archive buckets (IRSA on EKS)."""
    archive_credentials_secret: str = ""
    """Kubernetes Secret in each hub namespace with ``AWS_ACCESS_KEY_ID`` and
    ``AWS_SECRET_ACCESS_KEY`` for the archive job (clusters without an AWS identity)."""
    teardown_command: str = ""
    """Shell script of the destroy step; empty runs the provider's runbook commands."""
    milestone_poll_interval: str = "30"
    """Seconds between two reads of newly recorded milestones by the triggerer, for every
    deferred milestone wait at once (one store request each time); see README "Scaling"."""
    poke_interval: str = "7200"
    """Seconds between two checks of a reschedule-mode sensor (the merge, hub health, cost
    entry, and milestone waits built with ``deferrable=False``)."""

    @property
    def milestone_poll_seconds(self) -> int:
        return self.seconds("milestone_poll_interval")

    @property
    def poke_seconds(self) -> int:
        return self.seconds("poke_interval")

    def seconds(self, name: str) -> int:
        """A setting that is a whole number of seconds from 1 to a day; SettingError names it."""
        value = getattr(self, name)
        text = str(value).strip()
        if not (text.isascii() and text.isdigit() and 1 <= int(text) <= MAX_SECONDS):
            raise SettingError(
                f"engagements_{name} (ENGAGEMENTS_{name.upper()}): {value!r} is not a whole"
                f" number of seconds from 1 to {MAX_SECONDS}"
            )
        return int(text)

    @property
    def artifacts_path(self) -> Path:
        return Path(self.artifacts_dir or Path(default_home()) / "artifacts")

    @property
    def sqlite_path(self) -> Path:
        return Path(self.store_path or Path(default_home()) / "engagements.sqlite")


def resolve_settings(cls: type[T], *, use_variables: bool = False) -> T:
    """Fill a settings dataclass: Variable ``engagements_<name>``, then the environment."""
    values: dict[str, str] = {}
    for f in fields(cls):
        value = None
        if use_variables:
            from airflow.sdk import Variable

            value = Variable.get(f"engagements_{f.name}", default=None)
        if value is None:
            value = os.environ.get(f"ENGAGEMENTS_{f.name.upper()}")
        if value is not None:
            values[f.name] = value
    return cls(**values)


def load_settings(*, use_variables: bool = False) -> Settings:
    """Resolve every setting; ``use_variables`` is set by tasks running inside Airflow."""
    return resolve_settings(Settings, use_variables=use_variables)
