"""The infrastructure-repository change for a community: render, write, validate.

Pure functions, no Airflow: operators open the rendered change as a pull request, the CLI's
``engagements render-infra`` writes it to a folder.
"""

from __future__ import annotations

from engagements.infra.render import (
    InfraError,
    RenderedChange,
    check_decisions,
    render_change,
    write_change,
)

__all__ = [
    "InfraError",
    "RenderedChange",
    "check_decisions",
    "render_change",
    "write_change",
]
