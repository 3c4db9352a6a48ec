"""The plugin entry: cheap to import everywhere, registered with the api-server and the UI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"

LOAD = """
import json, sys
import airflow.plugins_manager  # what every Airflow component has loaded before plugins/
import airflow.listeners  # the listener hooks' marker (pluggy), loaded by every component
from airflow._shared.plugins_manager.plugins_manager import _load_plugins_from_plugin_directory

events = []
def audit(event, args):
    if event in ("open", "socket.connect", "sqlite3.connect", "subprocess.Popen", "os.listdir"):
        events.append([event, str(args[0])])
before = set(sys.modules)
sys.addaudithook(audit)
plugins, errors = _load_plugins_from_plugin_directory(sys.argv[1])
loaded = sorted(set(sys.modules) - before)
print(json.dumps({
    "plugins": [p.name for p in plugins],
    "errors": errors,
    "modules": loaded,
    "events": events,
}))
"""


def test_loading_the_plugin_imports_and_reads_nothing_of_the_app(tmp_path: Path) -> None:
    """The dag-processor, scheduler and workers load plugins/ too: they must pay nothing."""
    result = subprocess.run(
        [sys.executable, "-c", LOAD, str(PLUGINS)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["errors"] == {}
    assert "engagements_portfolio" in out["plugins"]
    heavy = {"fastapi", "starlette", "jinja2", "sqlalchemy", "engagements", "pyairtable"}
    assert not {m.split(".")[0] for m in out["modules"]} & heavy, out["modules"]
    # Only the plugin folder's own files are opened: no store, no config, no network.
    outside = [e for e in out["events"] if e[0] != "open" or not e[1].startswith(str(PLUGINS))]
    assert outside == []


def test_the_api_server_mounts_the_app_and_the_ui_lists_the_page(script) -> None:
    plugins = script("viewer").get("/api/v2/plugins").json()["plugins"]
    plugin = next(p for p in plugins if p["name"] == "engagements_portfolio")
    assert plugin["fastapi_apps"][0]["url_prefix"] == "/engagements"
    view = plugin["external_views"][0]
    assert (view["name"], view["href"], view["url_route"]) == (
        "Engagements",
        "/engagements/",
        "engagements",
    )
    # The UI's page for it (an iframe of /engagements/ inside Airflow's navigation).
    assert script("viewer").get("/plugin/engagements").status_code == 200
