"""Fixtures for the message tests: the example community and default settings."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from engagements.config import CommunityConfig, load_config
from engagements.settings import PROJECT_ROOT, Settings

EXAMPLE = PROJECT_ROOT / "include" / "communities" / "openscience.yaml"


@pytest.fixture
def config() -> CommunityConfig:
    return load_config(EXAMPLE)


@pytest.fixture
def settings() -> Settings:
    return Settings()


@pytest.fixture
def make_config(config: CommunityConfig) -> Callable[..., CommunityConfig]:
    """The example community with some dotted keys changed, e.g. ``{"cloud.billing": "2i2c"}``."""

    def make(changes: dict[str, Any]) -> CommunityConfig:
        return config.with_decisions(changes)

    return make
