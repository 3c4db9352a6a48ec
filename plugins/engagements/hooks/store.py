"""The configured engagement store: chosen by configuration when a task or command runs.

The choice needs the Airflow connection ``airtable_default`` (through the Airtable hook), so
it sits here, above the store package. Importing this module does nothing but define names:
DAG parsing never looks up a connection or opens a file.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from engagements.settings import Settings, load_settings
from engagements.store.base import EngagementStore, StoreError

if TYPE_CHECKING:
    from engagements.store.airtable import AirtableStore

BACKENDS = ("local", "airtable")


def get_store(settings: Settings | None = None) -> EngagementStore:
    """The configured store: chosen by configuration, never by editing code.

    ``ENGAGEMENTS_STORE=local|airtable`` forces a backend. Otherwise Airtable is used when the
    Airflow connection ``airtable_default`` exists, else the SQLite file of
    ``settings.sqlite_path``. A connection that exists but cannot be used, or that cannot be
    looked up, is a :class:`StoreError`: never a silent switch to the local file.
    """
    choice = os.environ.get("ENGAGEMENTS_STORE", "").strip().lower()
    if choice and choice not in BACKENDS:
        raise StoreError(
            f"ENGAGEMENTS_STORE: {choice!r} is not a store; use {' or '.join(BACKENDS)}"
            " (or leave it unset to choose by the airtable_default connection)"
        )
    if choice != "local":
        store = _airtable_store(required=choice == "airtable")
        if store is not None:
            return store
    from engagements.store.local import LocalStore

    return LocalStore((settings or load_settings()).sqlite_path)


def _airtable_store(*, required: bool) -> AirtableStore | None:
    """The Airtable store if its connection is defined; with ``required``, insist on it.

    Airflow is imported here, not at module level, to keep importing this package cheap.
    """
    from airflow.sdk.exceptions import AirflowNotFoundException

    from engagements.hooks.airtable import AirtableHook

    hook = AirtableHook()
    try:
        return hook.get_store()  # looks the connection up; a malformed one: StoreError
    except AirflowNotFoundException as exc:
        if required:
            raise StoreError(
                f"ENGAGEMENTS_STORE=airtable, but the Airflow connection"
                f" {hook.airtable_conn_id!r} is not defined"
            ) from exc
        return None
    except StoreError:
        raise
    except Exception as exc:  # no task context, no reachable metadata DB, ...
        raise StoreError(
            f"the Airflow connection {hook.airtable_conn_id!r} could not be looked up"
            f" ({type(exc).__name__}), so the store cannot be chosen; set"
            " ENGAGEMENTS_STORE=local to use the embedded store regardless"
        ) from exc
