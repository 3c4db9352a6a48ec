"""`make run`'s supervisor: start the embedded setup, keep it running, stop all of it.

Started by scripts/run.sh with the environment of scripts/env.sh. It

1. refuses a second `make run` in the same checkout (a lock held while it runs), stops what an
   earlier run left behind if that run was killed, and names every port already in use;
2. migrates the metadata DB in .airflow/ when it is missing or was migrated by another Airflow
   version, seeds the embedded store (seeding never changes a recorded engagement) and the
   fleet file the upkeep DAG observes without cloud connections (unless one is there);
3. starts the SMTP outbox and Airflow's components (scheduler, dag-processor, triggerer,
   api-server: what `airflow standalone` runs, but each watched on its own);
4. restarts a component that exits (3 times within 10 minutes at most; then it stops
   everything, saying which component kept failing and where its log is);
5. stops everything it started on Ctrl-C, on SIGTERM or SIGHUP (to it or to its process
   group), and when it ends any other way: each component runs in its own process group and
   is told to stop by the kernel if this process dies, even by SIGKILL; a reaper process
   (`supervise.py --reap`) then stops whatever of those groups is still running after 30
   seconds (a scheduler waiting on its task processes, say).
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import deque
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

ROOT = Path(os.environ.get("ENGAGEMENTS_ROOT") or Path(__file__).resolve().parents[1])
HOME = Path(os.environ["AIRFLOW_HOME"])
LOGS = HOME / "logs"
STATE = HOME / "run.json"
LOCK = HOME / "run.lock"
STAMP = HOME / ".migrated"
BIN = Path(sys.executable).parent
API_PORT = int(os.environ["AIRFLOW_API_PORT"])
API_URL = f"http://127.0.0.1:{API_PORT}"
STARTUP_TIMEOUT = float(os.environ.get("ENGAGEMENTS_STARTUP_TIMEOUT", "300"))
MAX_RESTARTS = 3
RESTART_WINDOW = 600.0
STOP_TIMEOUT = 30.0
PORTS = (  # what listens where, and the variable that moves it
    ("Airflow UI/API", "AIRFLOW_API_PORT"),
    ("SMTP outbox", "ENGAGEMENTS_OUTBOX_PORT"),
    ("scheduler log server", "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"),
    ("triggerer log server", "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT"),
)


class Stop(Exception):
    """Stop everything: a signal arrived, or a component cannot be kept running."""

    def __init__(self, code: int, message: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def say(message: str) -> None:
    print(f"[run] {message}", flush=True)


@dataclass
class Component:
    name: str
    argv: list[str]
    process: subprocess.Popen | None = None
    starts: deque[float] = field(default_factory=deque)

    @property
    def log(self) -> Path:
        return LOGS / f"{self.name}.log"

    def start(self, env: dict[str, str]) -> None:
        self.starts.append(time.monotonic())
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # its own process group: stopped as a whole
                preexec_fn=_stop_with_parent(os.getpid()),
            )

    def exited(self) -> int | None:
        return None if self.process is None else self.process.poll()

    @property
    def session(self) -> int | None:
        return None if self.process is None else self.process.pid

    def restarts_left(self) -> bool:
        now = time.monotonic()
        while self.starts and now - self.starts[0] > RESTART_WINDOW:
            self.starts.popleft()
        return len(self.starts) <= MAX_RESTARTS


def _stop_with_parent(parent: int):
    """Ask the kernel to SIGTERM the child when this supervisor dies, however it dies."""
    libc = ctypes.CDLL(None, use_errno=True)

    def prepare() -> None:
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the supervisor died before the call: stop at once
            os._exit(1)

    return prepare


def components() -> list[Component]:
    outbox = [
        sys.executable, "-m", "engagements.outbox", "--host", "127.0.0.1",
        "--port", os.environ["ENGAGEMENTS_OUTBOX_PORT"],
        "--dir", os.environ["ENGAGEMENTS_OUTBOX_DIR"],
    ]  # fmt: skip
    airflow = str(BIN / "airflow")
    return [
        Component("outbox", outbox),
        Component("scheduler", [airflow, "scheduler"]),
        Component("dag-processor", [airflow, "dag-processor"]),
        Component("triggerer", [airflow, "triggerer"]),
        Component("api-server", [airflow, "api-server", "--host", "127.0.0.1"]),
    ]


# --- before starting ---------------------------------------------------------------------


def take_lock():
    """Held while this run lives; the kernel drops it when the process ends."""
    HOME.mkdir(parents=True, exist_ok=True)
    handle = LOCK.open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        running = _state()
        pid = running.get("pid", "<pid>")
        raise Stop(
            1,
            f"`make run` is already running in this checkout (pid {pid}, since "
            f"{running.get('started', '?')}, UI {running.get('api', API_URL)}). Use that one, "
            f"or stop it first: Ctrl-C in its terminal, or `kill {pid}`",
        ) from None
    return handle


def _state() -> dict:
    try:
        return json.loads(STATE.read_text())
    except (OSError, ValueError):
        return {}


def members(sessions: set[int]) -> list[int]:
    """The live processes of these sessions: each component leads its own, and everything it
    starts stays in it (Airflow's processes rename themselves, so names cannot be trusted)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[3]) in sessions:
            found.append(int(entry.name))
    return sorted(found)


def terminate(sessions: set[int], timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM every process of the sessions, then SIGKILL what is left after ``timeout``."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in members(sessions):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and members(sessions):
            time.sleep(0.2)
        if not members(sessions):
            return
        if sig == signal.SIGTERM:
            left = members(sessions)
            say(f"{len(left)} process(es) did not stop within {timeout:.0f}s: killing them")


def stop_leftovers() -> None:
    """Stop what an earlier run of this checkout started, if it was killed before it could."""
    previous = _state()
    sessions = {
        session
        for session in previous.get("components", {}).values()
        if all(_launched_here(pid) for pid in members({session}))
    }
    left = members(sessions)
    if previous:
        say(
            f"the earlier `make run` (pid {previous.get('pid', '?')}) ended without stopping "
            "what it started" + (f"; stopping its processes {left}" if left else "")
        )
    terminate(sessions)
    STATE.unlink(missing_ok=True)


def _launched_here(pid: int) -> bool:
    """A process of ours: run from this checkout's virtual environment."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return False
    return str(BIN) in command or command.startswith(("airflow ", "python"))


def port_in_use(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def check_ports() -> None:
    busy = []
    for what, variable in PORTS:
        port = int(os.environ[variable])
        if port_in_use(port):
            busy.append(
                f"port {port} ({what}) is already in use: stop whatever uses it (see: ss -ltnp "
                f"'sport = :{port}'), or choose another port: {variable}=<port> make run"
            )
    if busy:
        raise Stop(1, "\n".join(busy))


def migrate() -> None:
    """Migrate the metadata DB when it is missing or was made by another Airflow version."""
    wanted = version("apache-airflow-core")
    database = HOME / "airflow.db"
    recorded = STAMP.read_text().strip() if STAMP.exists() else ""
    if database.exists() and recorded == wanted:
        return
    if not database.exists():
        say(f"creating the metadata DB {database}")
    elif recorded:
        say(f"the metadata DB {database} was migrated by Airflow {recorded}: migrating to {wanted}")
    else:
        say(f"checking the metadata DB {database} is migrated for Airflow {wanted}")
    run_step(
        [str(BIN / "airflow"), "db", "migrate"],
        "migrate",
        f"`airflow db migrate` failed. If {HOME} is left from an older setup, move it aside "
        f"(mv {HOME} {HOME}.old) and run `make run` again",
    )
    STAMP.write_text(wanted + "\n")


def seed() -> None:
    found = (ROOT / "include" / "communities").glob("*.yaml")
    configs = sorted(str(path.relative_to(ROOT)) for path in found)
    if not configs:
        say("no community configs in include/communities/: nothing to seed")
        return
    say(f"seeding {os.environ['ENGAGEMENTS_STORE_PATH']} with {' '.join(configs)}")
    output = run_step([str(BIN / "engagements"), "seed", *configs], "seed", "seeding failed")
    for line in output.splitlines():
        say(f"  {line}")
    fleet = Path(os.environ.get("ENGAGEMENTS_UPKEEP_FLEET_FILE") or HOME / "fleet.yaml")
    if not fleet.exists():
        say(f"seeding the upkeep fleet file {fleet} from include/fleet.yaml")
        shutil.copyfile(ROOT / "include" / "fleet.yaml", fleet)


def run_step(argv: list[str], name: str, failure: str) -> str:
    log = LOGS / f"{name}.log"
    result = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, check=False)
    log.write_text(result.stdout + result.stderr)
    if result.returncode:
        tail = "\n".join(result.stderr.strip().splitlines()[-5:])
        raise Stop(1, f"{failure}; see {log}\n{tail}")
    return result.stdout


# --- running -----------------------------------------------------------------------------


def wait_until_up(started: list[Component]) -> None:
    say(f"waiting for {API_URL}/api/v2/version (up to {STARTUP_TIMEOUT:.0f}s)")
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        watch(started)
        try:
            with urllib.request.urlopen(f"{API_URL}/api/v2/version", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise Stop(1, f"Airflow did not answer within {STARTUP_TIMEOUT:.0f}s; see {LOGS}")
        time.sleep(1)


def watch(started: list[Component]) -> None:
    """Restart a component that exited; stop everything when one keeps exiting."""
    env = component_env()
    for component in started:
        code = component.exited()
        if code is None:
            continue
        if not component.restarts_left():
            raise Stop(
                1,
                f"the {component.name} exited {len(component.starts)} times within "
                f"{RESTART_WINDOW / 60:.0f} minutes (last exit code {code}): stopping "
                f"everything; see {component.log}",
            )
        say(f"the {component.name} exited (code {code}; see {component.log}): restarting it")
        terminate({component.session}, timeout=10)  # what it started (its log server, say)
        component.start(env)
        save_state(started)


def component_env() -> dict[str, str]:
    return {
        **os.environ,
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__AUTH_MANAGER": (
            "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
        ),
    }


def save_state(started: list[Component]) -> None:
    state = {
        "pid": os.getpid(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "api": API_URL,
        "components": {c.name: c.process.pid for c in started if c.process is not None},
    }
    STATE.write_text(json.dumps(state, indent=2) + "\n")


def stop_all(started: list[Component]) -> None:
    """Stop every process of every component's session: SIGTERM to each process group first
    (what Ctrl-C in a terminal would do), SIGKILL after 30 seconds."""
    sessions = {c.session for c in started if c.session is not None}
    for component in reversed(started):
        if component.session is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(component.session, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    while time.monotonic() < deadline and members(sessions):
        for component in started:
            component.exited()  # reap the ones that ended
        time.sleep(0.2)
    terminate(sessions, timeout=5)
    for component in started:
        if component.process is not None:
            component.process.wait()


def banner() -> None:
    passwords = HOME / "simple_auth_manager_passwords.json.generated"
    password = f"(see {passwords})"
    for _ in range(30):
        try:
            password = json.loads(passwords.read_text())["admin"]
            break
        except (OSError, ValueError, KeyError):
            time.sleep(1)
    print(
        f"\n  Airflow is up:   {API_URL}\n"
        f"  Login:           admin / {password}\n"
        f"  Portfolio:       {API_URL}/engagements/\n"
        f"  Outbox (emails): {os.environ['ENGAGEMENTS_OUTBOX_DIR']}  (SMTP 127.0.0.1:"
        f"{os.environ['ENGAGEMENTS_OUTBOX_PORT']})\n"
        f"  Artifacts:       {os.environ['ENGAGEMENTS_ARTIFACTS_DIR']}\n"
        f"  Embedded store:  {os.environ['ENGAGEMENTS_STORE_PATH']}\n"
        f"  Logs:            {LOGS}/<component>.log\n\n"
        "  Press Ctrl-C to stop everything.\n",
        flush=True,
    )


def on_signal(number: int, frame: object) -> None:
    raise Stop(128 + number)


def start_reaper() -> subprocess.Popen:
    """The process that stops the components if this one dies without doing it."""
    return subprocess.Popen(
        [sys.executable, __file__, "--reap", str(os.getpid())],
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # not stopped with the terminal's process group: it stops last
    )


def reap(supervisor: int) -> int:
    """Wait for the supervisor to die; then stop every session it recorded in its state file,
    SIGTERM first (the kernel already sent one), SIGKILL what is left after 30 seconds."""
    while os.getppid() == supervisor:
        time.sleep(1)
    terminate(set(_state().get("components", {}).values()))
    return 0  # the state file stays: the next `make run` says the earlier one was killed


def main() -> int:
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, on_signal)
    started: list[Component] = []
    reaper: subprocess.Popen | None = None
    try:
        lock = take_lock()  # noqa: F841 - held for the life of the process
        LOGS.mkdir(parents=True, exist_ok=True)
        for folder in ("ENGAGEMENTS_OUTBOX_DIR", "ENGAGEMENTS_ARTIFACTS_DIR"):
            Path(os.environ[folder]).mkdir(parents=True, exist_ok=True)
        stop_leftovers()
        check_ports()
        migrate()
        seed()
        env = component_env()
        reaper = start_reaper()
        for component in components():
            say(f"starting the {component.name} (log: {component.log})")
            started.append(component)  # first: a signal during start still stops it
            component.start(env)
            save_state(started)
        wait_until_up(started)
        banner()
        while True:
            time.sleep(1)
            watch(started)
    except Stop as stop:
        for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(number, signal.SIG_IGN)  # stopping is under way
        if stop.message:
            for line in stop.message.splitlines():
                print(f"[run] ERROR: {line}", file=sys.stderr, flush=True)
        if reaper is not None:
            reaper.terminate()
            reaper.wait()
        if started:
            say("stopping everything this run started")
            stop_all(started)
            STATE.unlink(missing_ok=True)
            say("stopped")
        return stop.code


if __name__ == "__main__":
    if sys.argv[1:2] == ["--reap"]:
        sys.exit(reap(int(sys.argv[2])))
    sys.exit(main())
