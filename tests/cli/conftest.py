"""In-process runs of the command line through ``main`` (the same edge as the installed
command), against an embedded store of the test's own."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from engagements.cli import main
from engagements.store.local import LocalStore

AZURE_ACCOUNT = "0b1f6471-1bf0-4dda-aec3-cb9272f09590"


@pytest.fixture
def store_path(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "engagements.sqlite"
    monkeypatch.setenv("ENGAGEMENTS_STORE", "local")
    monkeypatch.setenv("ENGAGEMENTS_STORE_PATH", str(path))
    return path


@pytest.fixture
def cli(store_path, capsys):
    """``engagements <args>``: (exit code, stdout, stderr lines)."""

    def run(*args: str) -> tuple[int, str, list[str]]:
        code = main(list(args))
        out, err = capsys.readouterr()
        assert "Traceback" not in err
        return code, out, err.splitlines()

    return run


@pytest.fixture
def seeded(cli, example_path, store_path):
    assert cli("seed", str(example_path))[0] == 0
    return LocalStore(store_path)


@pytest.fixture
def azure(cli, tmp_path, example_dict):
    example_dict["community_id"] = "marinelab"
    example_dict["cloud"].update(provider="azure", region="eastus", account=AZURE_ACCOUNT)
    path = tmp_path / "marinelab.yaml"
    path.write_text(yaml.safe_dump(example_dict))
    assert cli("seed", str(path))[0] == 0
    return cli
