"""Tests of the ``engagements`` command line, per command module."""

from __future__ import annotations

import yaml


def write(tmp_path, data) -> str:
    path = tmp_path / "community.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)
