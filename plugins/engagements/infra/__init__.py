"""The infrastructure-repository changes for a community: render, write, validate.

Pure functions, no Airflow: operators open the rendered changes as pull requests (the
cluster first, the hubs once the cluster is applied), the CLI's ``engagements render-infra``
writes both to a folder.
"""

from __future__ import annotations

from engagements.infra.render import (
    CLUSTER,
    HUBS,
    InfraError,
    RenderedChange,
    check_decisions,
    combined,
    example_cluster_outputs,
    render_cluster_change,
    render_hubs_change,
    write_change,
)

__all__ = [
    "CLUSTER",
    "HUBS",
    "InfraError",
    "RenderedChange",
    "check_decisions",
    "combined",
    "example_cluster_outputs",
    "render_cluster_change",
    "render_hubs_change",
    "write_change",
]
