"""Fixtures for the infrastructure-change tests: the example community and the reference."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import pytest
from pydantic import BaseModel

from engagements.config import CommunityConfig, load_config
from engagements.infra import (
    RenderedChange,
    combined,
    example_cluster_outputs,
    render_cluster_change,
    render_hubs_change,
)
from engagements.infra.reference import ReferenceError, Tools, find_tools
from engagements.settings import PROJECT_ROOT

EXAMPLE = PROJECT_ROOT / "include" / "communities" / "openscience.yaml"
REFERENCE = Path(__file__).resolve().parents[2].parent / "shared/reference/2i2c-infrastructure"
CHECKOUT = PROJECT_ROOT / "tests" / "data" / "2i2c-infrastructure"
"""The vendored, pinned copy of the infrastructure repository (tests/data/.../README.md)."""
SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEngagementTestsNodeAccessKey000000000 eng@2i2c.org"
needs_reference = pytest.mark.skipif(
    not (REFERENCE / "cluster.schema.yaml").is_file(),
    reason=f"the infrastructure repository's schemas are not at {REFERENCE}",
)
CLOUDS: dict[str, dict[str, Any]] = {
    "aws": {"cloud.region": "us-west-2", "cloud.account": "123456789012"},
    "gcp": {"cloud.region": "us-central1", "cloud.account": "openscience-collective"},
    "azure": {
        "cloud.region": "westus2",
        "cloud.account": "4f1c8c0e-6b2a-4d1e-9c3a-0e5b7d2a9f11",
        "cloud.tenant_id": "0b8e2d1c-7a3f-4e5d-9c1b-2f4a6e8d0c13",
    },
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


def render_steps(
    config: CommunityConfig, outputs: dict[str, Any] | None = None, workflow: str | None = None
) -> tuple[RenderedChange, RenderedChange]:
    """Both changes, the hubs' with ``outputs`` (default: the example outputs)."""
    cluster = render_cluster_change(config, ssh_public_key=SSH_KEY, deploy_workflow=workflow)
    hubs = render_hubs_change(
        config,
        example_cluster_outputs(config) if outputs is None else outputs,
        outputs_source="the tests' example outputs",
        ssh_public_key=SSH_KEY,
        deploy_workflow=cluster.files.get(".github/workflows/deploy-hubs.yaml", workflow),
        example=outputs is None,
    )
    return cluster, hubs


def render_change(config: CommunityConfig) -> RenderedChange:
    """The repository after both changes (example outputs): what the value tests look at."""
    return combined(*render_steps(config))


@pytest.fixture(scope="module")
def tools() -> Tools:
    """The validation tools of ``make reference``."""
    try:
        return find_tools()
    except ReferenceError as exc:  # `make test` installs them; a bare pytest may not have
        pytest.skip(str(exc))
