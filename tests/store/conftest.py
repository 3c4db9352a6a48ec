"""Fixtures for the store tests: both backends behind one ``store`` fixture, and the fake
Airtable server they are checked against."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from engagements.store.airtable import AirtableStore
from engagements.store.base import EngagementStore
from engagements.store.local import LocalStore

from .fake_airtable import FakeAirtable

TOKEN = "patTESTtoken0123456789.abcdefSECRET"
BASE_ID = "appTESTbase012345"


@pytest.fixture
def fake_airtable() -> Iterator[FakeAirtable]:
    with FakeAirtable(TOKEN, BASE_ID) as fake:
        yield fake


@pytest.fixture
def airtable_store(fake_airtable: FakeAirtable) -> AirtableStore:
    """Talks HTTP to the fake; no backoff so retry tests are fast."""
    return AirtableStore.from_credentials(
        TOKEN, BASE_ID, endpoint_url=fake_airtable.url, backoff=0, timeout=(2.0, 5.0)
    )


@pytest.fixture(params=["local", "airtable"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> EngagementStore:
    if request.param == "local":
        return LocalStore(tmp_path / "engagements.sqlite")
    return request.getfixturevalue("airtable_store")
