"""Where engagement records live: the store contract and its backends.

Importing this package does nothing but define names. The backend is chosen by
:func:`engagements.hooks.store.get_store`, with the hooks, since the choice needs the
Airflow connection.
"""

from __future__ import annotations

from engagements.store.base import (
    ActionRecord,
    Contact,
    Engagement,
    EngagementStatus,
    EngagementStore,
    MilestoneRecord,
    NotFound,
    StoreError,
    StoreUnavailable,
    check_fields,
)

__all__ = [
    "ActionRecord",
    "Contact",
    "Engagement",
    "EngagementStatus",
    "EngagementStore",
    "MilestoneRecord",
    "NotFound",
    "StoreError",
    "StoreUnavailable",
    "check_fields",
]
