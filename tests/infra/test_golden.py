"""Golden files: the whole change for one AWS and one GCP community, reviewed as committed.

``UPDATE_GOLDEN=1 pytest tests/infra/test_golden.py`` rewrites them; review the diff.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from engagements.config import CommunityConfig
from engagements.infra import RenderedChange, write_change
from engagements.infra.validate import validate_change

from .conftest import REFERENCE, needs_reference, on, render_change, render_steps

GOLDEN = Path(__file__).parent / "golden"


def aws_community(example: CommunityConfig) -> CommunityConfig:
    """The example community as it is: AWS, GitHub login, shared-password workshop, open binder."""
    return example


def gcp_community(example: CommunityConfig) -> CommunityConfig:
    """On GCP paid by 2i2c, on its own domain, with GPUs, Dask, CILogon and a logged-in binder."""
    return on(
        example,
        "gcp",
        {
            "cloud.zone": "us-central1-c",
            "cloud.billing": "2i2c",
            "cloud.gpu": True,
            "domain": "jupyter.openscience.org",
            "hubs.community.auth": "cilogon",
            "hubs.community.dask_gateway": True,
            "hubs.workshop.auth": "github",
            "hubs.binder.authenticated": True,
            "branding.logo_url": "https://openscience.example.org/logo.png",
            "storage.home_quota_gb": 20,
        },
    )


CASES = {"aws-openscience": aws_community, "gcp-openscience": gcp_community}


def summary(changes: dict[str, RenderedChange]) -> str:
    data = {
        step: {
            "notes": list(change.notes),
            "follow_ups": list(change.follow_ups),
            "reviewer_checklist": list(change.reviewer_checklist),
            "plan": change.plan,
        }
        for step, change in changes.items()
    }
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


@pytest.mark.parametrize("name", list(CASES))
def test_golden(example, name):
    """Both pull requests, as trees: ``1-cluster/`` and ``2-hubs/`` (example outputs)."""
    cluster, hubs = render_steps(CASES[name](example))
    changes = {"1-cluster": cluster, "2-hubs": hubs}
    folder = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        shutil.rmtree(folder, ignore_errors=True)
        for step, change in changes.items():
            write_change(change, folder / step)
        (folder / "change.json").write_text(summary(changes), encoding="utf-8")
    for step, change in changes.items():
        on_disk = sorted(
            p.relative_to(folder / step).as_posix()
            for p in (folder / step).rglob("*")
            if p.is_file()
        )
        assert on_disk == list(change.files), "files added or removed; UPDATE_GOLDEN=1 to accept"
        for path, text in change.files.items():
            assert (folder / step / path).read_text(encoding="utf-8") == text, path
    assert (folder / "change.json").read_text(encoding="utf-8") == summary(changes)


@needs_reference
@pytest.mark.parametrize("name", list(CASES))
def test_golden_changes_validate(example, name):
    assert validate_change(render_change(CASES[name](example)), REFERENCE).problems == ()
