"""Fixtures for the check-in tests: the example community, Active, in an embedded store."""

from __future__ import annotations

import pytest

from engagements.store.local import LocalStore


@pytest.fixture
def store(store: LocalStore) -> LocalStore:
    """The example community, onboarded: Active."""
    store.update_engagement("openscience", status="Active")
    return store
