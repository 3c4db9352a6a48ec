"""Airflow hook for the ``airtable`` connection, where the production engagement store lives.

The connection keeps the personal access token (scopes ``data.records:read`` and
``data.records:write`` on the base) as its password and ``{"base_id": "app..."}`` as extra;
an optional ``endpoint_url`` in extra points it at another server (a test fake, a proxy).
The connection is looked up on first use, never when the hook is built, and the token is
only ever handed to pyairtable, which sends it as a request header.
"""

from __future__ import annotations

import json
from functools import cached_property
from typing import TYPE_CHECKING

from airflow.sdk import BaseHook
from pyairtable import Api

from engagements.store.airtable import (
    DEFAULT_BACKOFF,
    DEFAULT_TIMEOUT,
    ENGAGEMENTS,
    AirtableStore,
    make_api,
)
from engagements.store.base import StoreError

if TYPE_CHECKING:
    from airflow.sdk import Connection

NEEDS = 'it needs the Airtable access token as password and {"base_id": "app..."} as extra'


class AirtableHook(BaseHook):
    """Builds the pyairtable client and the :class:`AirtableStore` from an Airflow connection.

    ``timeout`` (connect, read seconds per attempt), ``retries`` and ``backoff`` go to the
    client's retry strategy; tests pass ``backoff=0``.
    """

    conn_name_attr = "airtable_conn_id"
    default_conn_name = "airtable_default"
    conn_type = "airtable"
    hook_name = "Airtable"

    def __init__(
        self,
        airtable_conn_id: str = default_conn_name,
        *,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        retries: int = 5,
        backoff: float = DEFAULT_BACKOFF,
    ) -> None:
        super().__init__()
        self.airtable_conn_id = airtable_conn_id
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff

    @cached_property
    def _settings(self) -> tuple[str, str, str | None]:
        """Token, base id and endpoint from the connection (the Connection object is not kept:
        its repr shows the password)."""
        from airflow.sdk.exceptions import AirflowNotFoundException

        from engagements.hooks import lookup_problem

        try:
            conn = self.get_connection(self.airtable_conn_id)
        except AirflowNotFoundException:
            problem = lookup_problem(self.airtable_conn_id)
            if problem is None:
                raise
            raise StoreError(
                f"Airflow connection {self.airtable_conn_id!r} is malformed or unreadable"
                f" ({problem}): {NEEDS}; nothing was read or written"
            ) from None
        return self._credentials(conn)

    def _credentials(self, conn: Connection) -> tuple[str, str, str | None]:
        try:
            extra = json.loads(conn.extra) if conn.extra else {}
        except json.JSONDecodeError as exc:
            raise StoreError(
                f"Airflow connection {self.airtable_conn_id!r} is malformed (its extra is not"
                f" JSON: {exc.msg}): {NEEDS}; nothing was read or written"
            ) from None
        base_id = extra.get("base_id") if isinstance(extra, dict) else None
        if not conn.password or not base_id:
            raise StoreError(
                f"Airflow connection {self.airtable_conn_id!r} is malformed: {NEEDS};"
                " nothing was read or written"
            )
        return conn.password, base_id, extra.get("endpoint_url") or None

    @property
    def base_id(self) -> str:
        return self._settings[1]

    @cached_property
    def api(self) -> Api:
        token, _, endpoint_url = self._settings
        return make_api(
            token,
            endpoint_url=endpoint_url,
            timeout=self.timeout,
            retries=self.retries,
            backoff=self.backoff,
        )

    def get_conn(self) -> Api:
        return self.api

    def get_store(self) -> AirtableStore:
        return AirtableStore(self.api, self.base_id, conn_id=self.airtable_conn_id)

    async def aget_store(self) -> AirtableStore:
        """The store, with the connection looked up without blocking an event loop (triggers)."""
        conn = await self.aget_connection(self.airtable_conn_id)
        token, base_id, endpoint_url = self._credentials(conn)
        api = make_api(
            token,
            endpoint_url=endpoint_url,
            timeout=self.timeout,
            retries=self.retries,
            backoff=self.backoff,
        )
        return AirtableStore(api, base_id, conn_id=self.airtable_conn_id)

    def test_connection(self) -> tuple[bool, str]:
        """One lookup in the Engagements table checks the token, the base and the table."""
        try:
            self.get_store().get_engagement("connection-test")
        except StoreError as exc:
            return False, str(exc)
        return True, f"Airtable base {self.base_id}: {ENGAGEMENTS} table is readable"
