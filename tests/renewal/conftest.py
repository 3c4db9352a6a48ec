"""Fixtures for renewal tests: an isolated store holding the example community."""

from __future__ import annotations

import datetime as dt

import pytest

from engagements.config import CommunityConfig, load_config
from engagements.renewal import apply_renewal
from engagements.settings import PROJECT_ROOT
from engagements.store.base import EngagementStatus
from engagements.store.local import LocalStore

EXAMPLE = PROJECT_ROOT / "include" / "communities" / "openscience.yaml"
END = dt.date(2027, 11, 30)


@pytest.fixture
def config() -> CommunityConfig:
    return load_config(EXAMPLE)


@pytest.fixture
def store(tmp_path, monkeypatch) -> LocalStore:
    path = tmp_path / "engagements.sqlite"
    monkeypatch.setenv("ENGAGEMENTS_STORE", "local")
    monkeypatch.setenv("ENGAGEMENTS_STORE_PATH", str(path))
    return LocalStore(path)


def add_engagement(
    store: LocalStore,
    config: CommunityConfig,
    community_id: str,
    *,
    end: dt.date = END,
    status: EngagementStatus = EngagementStatus.ACTIVE,
) -> None:
    data = config.to_dict()
    data["community_id"] = community_id
    data["contract"]["end"] = end.isoformat()
    store.upsert_engagement(community_id, f"{community_id} community", data, status=status)


@pytest.fixture
def active(store, config) -> LocalStore:
    add_engagement(store, config, "openscience")
    return store


def renew(store: LocalStore) -> None:
    """BD renews the example community, ending on END, for a year to 2028-11-30."""
    apply_renewal(
        store,
        "openscience",
        decided_end=END,
        new_end=dt.date(2028, 11, 30),
        new_start=None,
        decided_by="bd",
    )
