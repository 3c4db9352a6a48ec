"""The JSON shape of the portfolio's endpoints."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from engagements.billing import Month
from engagements.checkin import Quarter
from engagements.portfolio import PortfolioRow


def as_json(value: Any) -> Any:
    """Dataclasses, dates and decimals as JSON values (decimals as text: money stays exact)."""
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Decimal | Month | Quarter):
        return str(value)
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, PortfolioRow):
        return row_json(value)
    if isinstance(value, Mapping):
        return {str(k): as_json(v) for k, v in value.items()}
    if isinstance(value, Iterable):
        return [as_json(v) for v in value]
    return {name: as_json(getattr(value, name)) for name in value.__dataclass_fields__}


def row_json(row: PortfolioRow, base: str = "/") -> dict[str, Any]:
    """A portfolio row; each run with ``grid_url``, its page in Airflow's UI under ``base``."""
    data = {
        name: as_json(getattr(row, name)) for name in row.__dataclass_fields__ if name != "pending"
    }
    for run, out in zip(row.runs, data["runs"], strict=True):
        out["grid_url"] = run.grid_path(base)
    return data
