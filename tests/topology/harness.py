"""A private copy of the local Celery topology (``scripts/topology.sh``) and a REST client for it.

Used by the end-to-end test and by ``scripts/bench_topology.py``. :meth:`Topology.running`
starts the topology in its own folder on free loopback ports and stops every process it
started when the block ends, whatever happens (and at interpreter exit, and on SIGTERM): first
``topology.sh down`` (by the recorded process ids), then any process still carrying this
topology's folder in its environment is killed by its pid.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "topology.sh"
ADMIN = "admin"


def free_ports(count: int) -> list[int]:
    """Ports nothing listens on now (held open together, so they are distinct)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def clean_environ() -> dict[str, str]:
    """This process's environment without any Airflow or engagements setting."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "ENGAGEMENTS_"))}


class Topology:
    """One topology: its folder, ports and admin password."""

    def __init__(
        self,
        directory: Path | None = None,
        *,
        poke_interval: int = 2,
        poll_interval: int | None = None,
        executor: str = "CeleryExecutor",
    ) -> None:
        """``poke_interval``: reschedule-mode sensors; ``poll_interval``: the triggerer's read of
        recorded milestones (None: the production default); ``executor``: CeleryExecutor (the
        production topology) or LocalExecutor (the scheduler runs the tasks)."""
        if directory is None:
            directory = Path(tempfile.mkdtemp(prefix="engagements-topology-"))
            self.owns_directory = True
        else:
            directory.mkdir(parents=True, exist_ok=True)
            self.owns_directory = False
        # Postgres and Redis run as an unprivileged user that must be able to enter it.
        directory.chmod(0o755)
        self.directory = directory
        api, pg, redis, outbox, health = free_ports(5)
        self.api_url = f"http://127.0.0.1:{api}"
        self.password = secrets.token_urlsafe(12)
        self.script_env = {
            **clean_environ(),
            "ENGAGEMENTS_TOPOLOGY_DIR": str(directory),
            "TOPOLOGY_API_PORT": str(api),
            "TOPOLOGY_PG_PORT": str(pg),
            "TOPOLOGY_REDIS_PORT": str(redis),
            "TOPOLOGY_OUTBOX_PORT": str(outbox),
            "TOPOLOGY_SCHEDULER_HEALTH_PORT": str(health),
            "AIRFLOW_ADMIN_USERNAME": ADMIN,
            "AIRFLOW_ADMIN_PASSWORD": self.password,
            "ENGAGEMENTS_POKE_INTERVAL": str(poke_interval),
            "TOPOLOGY_EXECUTOR": executor,
        }
        if poll_interval is not None:
            self.script_env["ENGAGEMENTS_MILESTONE_POLL_INTERVAL"] = str(poll_interval)
        self._env: dict[str, str] | None = None
        self._stopped = True

    # --- lifecycle --------------------------------------------------------------------

    def up(self, timeout: float = 1500) -> None:
        self._stopped = False
        result = subprocess.run(
            ["bash", str(SCRIPT), "up"],
            env=self.script_env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode:
            raise RuntimeError(
                f"scripts/topology.sh up failed ({result.returncode}):\n"
                f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}\n"
                f"logs: {self.directory / 'logs'}"
            )

    def down(self) -> list[int]:
        """Stop everything; returns the pids that ``down`` missed (and that were killed)."""
        if self._stopped:
            return []
        self._stopped = True
        with contextlib.suppress(subprocess.TimeoutExpired):
            subprocess.run(
                ["bash", str(SCRIPT), "down"],
                env=self.script_env,
                capture_output=True,
                timeout=300,
                check=False,
            )
        leftovers = self.processes()
        for pid in leftovers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return leftovers

    def processes(self) -> list[int]:
        """Processes started for this topology: they carry its folder in their environment."""
        marker = f"ENGAGEMENTS_TOPOLOGY_DIR={self.directory}".encode()
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                environ = (entry / "environ").read_bytes()
            except OSError:
                continue
            if marker in environ.split(b"\0"):
                found.append(int(entry.name))
        return found

    @contextlib.contextmanager
    def running(self, *, keep_on_failure: bool = True) -> Iterator[Topology]:
        """Up for the block; always down afterwards (also at exit and on SIGTERM)."""
        atexit.register(self.down)
        previous = signal.getsignal(signal.SIGTERM)

        def on_sigterm(signum: int, frame: Any) -> None:
            self.down()
            sys.exit(128 + signum)

        signal.signal(signal.SIGTERM, on_sigterm)
        failed = True
        try:
            self.up()
            yield self
            failed = False
        finally:
            leftovers = self.down()
            signal.signal(signal.SIGTERM, previous)
            atexit.unregister(self.down)
            if self.owns_directory and not (failed and keep_on_failure):
                shutil.rmtree(self.directory, ignore_errors=True)
            elif failed:
                print(f"topology logs kept in {self.directory / 'logs'}", file=sys.stderr)
        if leftovers:
            raise RuntimeError(f"topology.sh down left processes running (killed): {leftovers}")

    # --- using it ---------------------------------------------------------------------

    @property
    def env(self) -> dict[str, str]:
        """The components' environment (``topology.sh env``), for the CLI and airflow."""
        if self._env is None:
            out = subprocess.run(
                ["bash", str(SCRIPT), "env"],
                env=self.script_env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            self._env = {
                **clean_environ(),
                **dict(line.split("=", 1) for line in out.splitlines() if "=" in line),
            }
        return self._env

    @property
    def outbox(self) -> Path:
        return Path(self.env["ENGAGEMENTS_OUTBOX_DIR"])

    @property
    def store_path(self) -> Path:
        return Path(self.env["ENGAGEMENTS_STORE_PATH"])

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """``engagements <args>`` against this topology's store, as an engineer runs it."""
        result = subprocess.run(
            [str(ROOT / ".venv" / "bin" / "engagements"), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if check and result.returncode:
            raise RuntimeError(f"engagements {' '.join(args)}: {result.stderr or result.stdout}")
        return result

    def trigger_conf(self, config: Path) -> dict[str, Any]:
        """``engagements trigger-conf FILE``: a community config as the onboarding conf."""
        return json.loads(self.cli("trigger-conf", str(config)).stdout)

    def client(self) -> Api:
        return Api(self.api_url, ADMIN, self.password)


class ApiError(RuntimeError):
    pass


class Api:
    """The REST API as a user drives it: a token from ``POST /auth/token``, then /api/v2."""

    def __init__(self, base_url: str, username: str, password: str) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=30)
        response = self.http.post("/auth/token", json={"username": username, "password": password})
        if response.status_code not in (200, 201):
            raise ApiError(f"POST /auth/token: {response.status_code} {response.text}")
        self.http.headers["Authorization"] = f"Bearer {response.json()['access_token']}"

    def close(self) -> None:
        self.http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.request(method, f"/api/v2{path}", **kwargs)

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        if response.status_code >= 300:
            raise ApiError(f"{method} {path}: {response.status_code} {response.text}")
        return response.json() if response.content else None

    def wait_for_dag(self, dag_id: str, timeout: float = 300) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            response = self.request("GET", f"/dags/{dag_id}")
            if response.status_code == 200:
                return response.json()
            if time.monotonic() > deadline:
                errors = self.call("GET", "/importErrors")
                raise ApiError(
                    f"{dag_id} was not parsed within {timeout}s; import errors: {errors}"
                )
            time.sleep(2)

    def unpause(self, dag_id: str) -> None:
        self.call("PATCH", f"/dags/{dag_id}", json={"is_paused": False})

    def trigger(self, dag_id: str, conf: dict[str, Any]) -> httpx.Response:
        return self.request(
            "POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf}
        )

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return self.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        data = self.call(
            "GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 100}
        )
        return data["task_instances"]

    def set_state(self, dag_id: str, run_id: str, task_id: str, state: str) -> Any:
        return self.call(
            "PATCH",
            f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}",
            json={"new_state": state},
        )

    def hitl_details(self, dag_id: str, run_id: str, task_id: str) -> dict[str, Any]:
        return self.call(
            "GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/-1/hitlDetails"
        )

    def answer_hitl(
        self,
        dag_id: str,
        run_id: str,
        task_id: str,
        options: list[str],
        params: dict[str, Any],
        map_index: int = -1,
    ) -> dict[str, Any]:
        return self.call(
            "PATCH",
            f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/{map_index}/hitlDetails",
            json={"chosen_options": options, "params_input": params},
        )

    def set_variable(self, key: str, value: str) -> None:
        """What an operator does in Admin > Variables (a setting read when tasks run)."""
        if self.request("GET", f"/variables/{key}").status_code == 200:
            self.call("PATCH", f"/variables/{key}", json={"key": key, "value": value})
        else:
            self.call("POST", "/variables", json={"key": key, "value": value})
