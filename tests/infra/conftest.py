"""Fixtures for the infrastructure-change tests: the example community and the reference."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import pytest
from pydantic import BaseModel

from engagements.config import CommunityConfig, load_config
from engagements.settings import PROJECT_ROOT

EXAMPLE = PROJECT_ROOT / "include" / "communities" / "openscience.yaml"
REFERENCE = Path(__file__).resolve().parents[2].parent / "shared/reference/2i2c-infrastructure"
needs_reference = pytest.mark.skipif(
    not (REFERENCE / "cluster.schema.yaml").is_file(),
    reason=f"the infrastructure repository's schemas are not at {REFERENCE}",
)
CLOUDS: dict[str, dict[str, Any]] = {
    "aws": {"cloud.region": "us-west-2", "cloud.account": "123456789012"},
    "gcp": {"cloud.region": "us-central1", "cloud.account": "openscience-collective"},
    "azure": {"cloud.region": "westus2", "cloud.account": "4f1c8c0e-6b2a-4d1e-9c3a-0e5b7d2a9f11"},
    "jetstream2": {"cloud.region": "IU", "cloud.account": "CIS230045"},
}


@pytest.fixture(scope="session")
def example() -> CommunityConfig:
    return load_config(EXAMPLE)


def on(
    config: CommunityConfig, provider: str, decisions: dict[str, Any] | None = None
) -> CommunityConfig:
    """The example community moved to ``provider``, with more dotted-key decisions."""
    return config.with_decisions(
        {"cloud.provider": provider, **CLOUDS[provider], **(decisions or {})}
    )


M = TypeVar("M", bound=BaseModel)


def unvalidated(config: M, dotted: str, value: Any) -> M:
    """``config`` with one value set past validation, as a caller could build it."""
    head, _, rest = dotted.partition(".")
    if not rest:
        return config.model_copy(update={head: value})
    return config.model_copy(update={head: unvalidated(getattr(config, head), rest, value)})
