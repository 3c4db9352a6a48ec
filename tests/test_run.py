"""`make run` (scripts/run.sh and scripts/supervise.py) on free ports, in a copy of the checkout
(links to this one's dags, plugins, include, scripts and .venv; its own .airflow, outbox and
artifacts): a component that dies is restarted, a second run and a port in use are refused
with a clear message, and every way of stopping it stops everything it started: SIGTERM to
its process group, SIGKILL of the runner itself, Ctrl-C while it starts; a .airflow/ left
by a killed run or migrated by another Airflow version is named and put right.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.topology.harness import clean_environ, free_ports

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[1]
LINKED = ("dags", "plugins", "include", "scripts", ".venv")


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Iterator[tuple[Path, dict[str, str]]]:
    root = tmp_path_factory.mktemp("checkout")
    for name in LINKED:
        (root / name).symlink_to(ROOT / name)
    api, outbox, worker_logs, trigger_logs = free_ports(4)
    env = {
        **clean_environ(),
        "AIRFLOW_API_PORT": str(api),
        "ENGAGEMENTS_OUTBOX_PORT": str(outbox),
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(worker_logs),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(trigger_logs),
        "AIRFLOW__API__WORKERS": "1",
        "ENGAGEMENTS_STARTUP_TIMEOUT": "400",
    }
    yield root, env
    state = root / ".airflow" / "run.json"
    if state.exists():  # a failed test: stop whatever is still there
        for session in json.loads(state.read_text())["components"].values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(session, signal.SIGKILL)


class Runner:
    """One `bash scripts/run.sh` in its own process group, its output in a file."""

    def __init__(self, root: Path, env: dict[str, str], name: str) -> None:
        self.root = root
        self.output = root / f"{name}.out"
        with self.output.open("w") as out:
            self.process = subprocess.Popen(
                ["bash", str(root / "scripts" / "run.sh")],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def text(self) -> str:
        return self.output.read_text()

    def wait_for(self, needle: str, timeout: float = 420) -> None:
        deadline = time.monotonic() + timeout
        while needle not in self.text():
            assert self.process.poll() is None, f"run.sh exited:\n{self.text()}"
            assert time.monotonic() < deadline, f"no {needle!r} in:\n{self.text()}"
            time.sleep(0.5)

    def wait(self, timeout: float = 120) -> int:
        return self.process.wait(timeout)

    def state(self) -> dict:
        return json.loads((self.root / ".airflow" / "run.json").read_text())


def sessions_alive(sessions: list[int]) -> list[int]:
    """Live processes of these sessions (each component leads its own)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                fields = (entry / "stat").read_text().rpartition(")")[2].split()
                if fields[0] != "Z" and int(fields[3]) in sessions:
                    found.append(int(entry.name))
    return found


def port_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def assert_all_stopped(sessions: list[int], env: dict[str, str], timeout: float = 90) -> None:
    ports = [int(env[k]) for k in env if k.endswith("_PORT")]
    deadline = time.monotonic() + timeout
    while sessions_alive(sessions) or not all(port_free(p) for p in ports):
        assert time.monotonic() < deadline, (sessions_alive(sessions), ports)
        time.sleep(0.5)


def test_a_port_in_use_is_named_and_nothing_starts(checkout):
    root, env = checkout
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", int(env["ENGAGEMENTS_OUTBOX_PORT"])))
        holder.listen()
        runner = Runner(root, env, "busy")
        assert runner.wait() == 1
    port = env["ENGAGEMENTS_OUTBOX_PORT"]
    assert (
        f"[run] ERROR: port {port} (SMTP outbox) is already in use: stop whatever uses it"
        in runner.text()
    )
    assert "ENGAGEMENTS_OUTBOX_PORT=<port> make run" in runner.text()
    assert "starting" not in runner.text()


def test_make_run_restarts_a_dead_component_and_stops_everything_however_stopped(checkout):
    root, env = checkout
    first = Runner(root, env, "first")
    first.wait_for("Press Ctrl-C to stop everything.")
    sessions = list(first.state()["components"].values())

    second = Runner(root, env, "second")
    assert second.wait() == 1
    assert "`make run` is already running in this checkout" in second.text()
    assert f"`kill {first.process.pid}`" in second.text()

    scheduler = first.state()["components"]["scheduler"]
    os.kill(scheduler, signal.SIGKILL)
    first.wait_for("the scheduler exited (code -9")
    deadline = time.monotonic() + 120
    while first.state()["components"]["scheduler"] == scheduler or sessions_alive([scheduler]):
        assert time.monotonic() < deadline, first.text()
        time.sleep(0.5)
    restarted = first.state()["components"]["scheduler"]
    assert sessions_alive([restarted])
    sessions.append(restarted)

    os.killpg(first.process.pid, signal.SIGTERM)  # as a process supervisor stops a job
    assert first.wait() == 128 + signal.SIGTERM
    assert "[run] stopped" in first.text()
    assert_all_stopped(sessions, env)
    assert not (root / ".airflow" / "run.json").exists()

    killed = Runner(root, env, "killed")
    killed.wait_for("Press Ctrl-C to stop everything.")
    sessions = list(killed.state()["components"].values())
    killed.process.kill()  # SIGKILL: no chance to clean up
    killed.wait()
    assert_all_stopped(sessions, env)

    (root / ".airflow" / ".migrated").write_text("2.10.5\n")  # a .airflow of another version
    after = Runner(root, env, "after")
    after.wait_for("ended without stopping what it started")
    after.wait_for("was migrated by Airflow 2.10.5: migrating to")
    after.wait_for("starting the scheduler")
    sessions = list(after.state()["components"].values())
    os.killpg(after.process.pid, signal.SIGINT)  # Ctrl-C, while Airflow is starting
    assert after.wait() == 128 + signal.SIGINT
    assert_all_stopped(sessions, env)
