"""Fixtures for the check-in tests: the example community, Active, in an embedded store."""

from __future__ import annotations

import pytest

from engagements.onboarding import register
from engagements.store.local import LocalStore


@pytest.fixture
def store(tmp_path, example_config) -> LocalStore:
    store = LocalStore(tmp_path / "store.sqlite")
    register(store, example_config, run_id="r", run_state=lambda _: None)
    store.update_engagement("openscience", status="Active")
    return store
