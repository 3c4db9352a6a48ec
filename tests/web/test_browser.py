"""The portfolio in a real browser, against the Airflow that ``make run`` starts.

``scripts/run.sh`` runs unchanged on free ports in a private copy of the project (its own
``.airflow``, store, outbox and artifacts; dags, plugins, include and .venv linked): the
embedded store seeded with the example community, the SMTP outbox, ``airflow standalone``.
The example's onboarding is triggered over REST as the quick start says; then Debian's
chromium, driven through its chromedriver, signs in on Airflow's login page, opens the
portfolio, sees the example with its next milestone, records it from the page, and the run's
waiting task succeeds. Screenshots of both pages go to ``test-artifacts/browser/``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.topology.harness import Api, clean_environ, free_ports

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "browser"
CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
EXAMPLE = ROOT / "include" / "communities" / "openscience.yaml"
DAG = "engagement_onboarding"
WAIT = "rollout_coordinator_identified.wait"
RECORD = "rollout_coordinator_identified.record"


STARTED = time.monotonic()


def say(what: str) -> None:
    """Progress on stdout (``pytest -s``): where a slow run spends its time."""
    print(f"[browser test {time.monotonic() - STARTED:6.1f}s] {what}", flush=True)


def eventually(check: Callable[[], Any], what: str, timeout: float = 240, every: float = 2) -> Any:
    """The first truthy answer of ``check``; fails naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        answer = check()
        if answer:
            return answer
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what} (last: {answer!r})")
        time.sleep(every)


class MakeRun:
    """``scripts/run.sh`` in a private project folder, stopped (and checked gone) at the end."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="engagements-browser-"))
        for name in ("dags", "plugins", "include", "scripts", ".venv"):
            (self.folder / name).symlink_to(ROOT / name)
        api, outbox, worker_logs, trigger_logs = free_ports(4)
        self.url = f"http://127.0.0.1:{api}"
        self.env = {
            **clean_environ(),
            "AIRFLOW_API_PORT": str(api),
            "ENGAGEMENTS_OUTBOX_PORT": str(outbox),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(worker_logs),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(trigger_logs),
            "ENGAGEMENTS_POKE_INTERVAL": "5",
        }
        self.log = self.folder / "run.log"
        self.process: subprocess.Popen | None = None

    @property
    def home(self) -> Path:
        return self.folder / ".airflow"

    def start(self) -> None:
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                ["bash", str(self.folder / "scripts" / "run.sh")],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

        def up() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"scripts/run.sh exited:\n{self.tail()}")
            return "Airflow is up" in self.log.read_text(errors="replace")

        say(f"scripts/run.sh starting in {self.folder}")
        eventually(up, "scripts/run.sh says Airflow is up", timeout=600)
        say("Airflow is up")

    def cli(self, *args: str) -> str:
        """``engagements <args>`` on this run's store, as an engineer runs it beside the UI."""
        env = {
            **clean_environ(),
            "AIRFLOW_HOME": str(self.home),
            "ENGAGEMENTS_STORE": "local",
            "ENGAGEMENTS_STORE_PATH": str(self.home / "engagements.sqlite"),
        }
        engagements = str(ROOT / ".venv" / "bin" / "engagements")
        result = subprocess.run(
            [engagements, *args], env=env, capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    def password(self) -> str:
        passwords = self.home / "simple_auth_manager_passwords.json.generated"
        return json.loads(passwords.read_text())["admin"]

    def tail(self) -> str:
        logs = [self.log, self.home / "logs" / "standalone.log"]
        return "\n".join(p.read_text(errors="replace")[-3000:] for p in logs if p.exists())

    def ours(self) -> list[int]:
        """Processes started for this run: they carry its AIRFLOW_HOME in their environment."""
        marker = f"AIRFLOW_HOME={self.home}".encode()
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                if marker in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
        return found

    def stop(self) -> list[int]:
        """Ctrl-C as a person would (run.sh stops what it started); what is left is killed."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=90)
        leftovers = self.ours()
        for pid in leftovers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return leftovers


@pytest.fixture(scope="module")
def airflow() -> Iterator[MakeRun]:
    run = MakeRun()
    ok = False
    try:
        run.start()
        yield run
        ok = True
    finally:
        leftovers = run.stop()
        if ok:
            shutil.rmtree(run.folder, ignore_errors=True)
        else:
            print(f"make run's folder kept: {run.folder}\n{run.tail()}")
    assert leftovers == [], f"scripts/run.sh left processes running (killed): {leftovers}"


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("Debian's chromium and chromium-driver are not installed: run `make browser`")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must never download anything
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="engagements-chromium-")
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        "--window-size=1440,1000",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.implicitly_wait(0)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def screenshot(driver: Any, name: str) -> Path:
    """The whole page, as a test artifact."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1440, max(1000, min(height + 40, 6000)))
    path = ARTIFACTS / f"{name}.png"
    driver.save_screenshot(str(path))
    driver.set_window_size(1440, 1000)
    return path


def task_state(api: Api, run_id: str, task_id: str) -> str | None:
    return api.call("GET", f"/dags/{DAG}/dagRuns/{run_id}/taskInstances/{task_id}")["state"]


def test_sign_in_see_the_example_record_its_milestone_and_the_run_moves_on(
    airflow: MakeRun, chromium: Any
) -> None:
    from selenium.webdriver.common.by import By

    driver = chromium
    api = Api(airflow.url, "admin", airflow.password())
    conf = json.loads(airflow.cli("trigger-conf", str(EXAMPLE)))
    api.wait_for_dag(DAG)
    triggered = api.trigger(DAG, conf)
    assert triggered.status_code == 200, triggered.text
    run_id = triggered.json()["dag_run_id"]
    say(f"triggered {run_id}")

    # Not signed in: Airflow's login page, then back to the portfolio.
    driver.get(f"{airflow.url}/engagements/")
    eventually(
        lambda: driver.find_elements(By.NAME, "username"), "the login form", timeout=60, every=0.5
    )
    assert "/auth/login" in driver.current_url
    driver.find_element(By.NAME, "username").send_keys("admin")
    driver.find_element(By.NAME, "password").send_keys(airflow.password())
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    eventually(
        lambda: driver.current_url.rstrip("/").endswith("/engagements"),
        "back on the portfolio",
        timeout=60,
        every=0.5,
    )

    say("signed in")
    # The example, with its next milestone and the run waiting on it.
    eventually(lambda: task_state(api, run_id, WAIT) == "deferred", f"{WAIT} waiting")
    say(f"{WAIT} is waiting")

    def example_row() -> Any:
        driver.refresh()
        rows = driver.find_elements(By.CSS_SELECTOR, "tr[data-community=openscience]")
        return rows and "waiting: " + WAIT in rows[0].text and rows[0]

    airflow.cli("support-hours", "add", "openscience", "1.5", "--note", "Custom image: geospatial")
    row = eventually(example_row, "the example's row naming the waiting task", every=3)
    assert "Open Science Collective" in row.text
    next_cell = row.find_element(By.CSS_SELECTOR, "td.next")
    assert "Rollout coordinator identified within 2i2c" in next_cell.text
    grid = row.find_element(By.LINK_TEXT, "onboarding").get_attribute("href")
    assert grid.endswith(f"/dags/{DAG}/runs/{run_id.replace(':', '%3A').replace('+', '%2B')}")
    screenshot(driver, "portfolio")

    # The community page, and recording the milestone from it.
    row.find_element(By.LINK_TEXT, "Open Science Collective").click()
    eventually(
        lambda: driver.find_elements(By.ID, "milestones"),
        "the community page",
        timeout=30,
        every=0.5,
    )
    assert driver.find_elements(By.CSS_SELECTOR, "svg.chart")
    screenshot(driver, "community")
    line = driver.find_element(By.CSS_SELECTOR, "tr[data-milestone=rollout_coordinator_identified]")
    line.find_element(By.TAG_NAME, "summary").click()
    line.find_element(By.NAME, "note").send_keys("Jo Engineer coordinates the rollout")
    line.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    notice = eventually(
        lambda: driver.find_elements(By.CSS_SELECTOR, "p.notice"),
        "the notice",
        timeout=30,
        every=0.5,
    )
    assert "recorded done by admin (engagements portfolio)" in notice[0].text
    say("recorded from the page")

    # The sensor sees it at its next poke; the run moves on and records it itself.
    eventually(lambda: task_state(api, run_id, WAIT) == "success", f"{WAIT} succeeded")
    eventually(lambda: task_state(api, run_id, RECORD) == "success", f"{RECORD} succeeded")
    say("the run moved on")

    def moved_on() -> bool:
        driver.refresh()
        line = driver.find_element(
            By.CSS_SELECTOR, "tr[data-milestone=rollout_coordinator_identified]"
        )
        runs = driver.find_element(By.CSS_SELECTOR, ".cards").text
        return "Jo Engineer coordinates the rollout" in line.text and WAIT not in runs

    eventually(moved_on, "the page showing the milestone done and the run past it", every=3)

    # The navigation entry inside Airflow's UI shows the same page in its frame.
    driver.get(f"{airflow.url}/plugin/engagements")
    frame = eventually(
        lambda: driver.find_elements(By.CSS_SELECTOR, "iframe[title=Engagements]"),
        "the plugin frame",
        timeout=60,
        every=1,
    )
    driver.switch_to.frame(frame[0])
    eventually(
        lambda: driver.find_elements(By.CSS_SELECTOR, "tr[data-community=openscience]"),
        "the portfolio inside Airflow's UI",
        timeout=60,
        every=1,
    )
    say("seen inside Airflow's UI")
    driver.switch_to.default_content()
    driver.save_screenshot(str(ARTIFACTS / "inside-airflow.png"))
    driver.switch_to.frame(frame[0])
    # From the frame, the run's link moves Airflow's UI to the run's grid.
    driver.find_element(By.CSS_SELECTOR, "tr[data-community=openscience]").find_element(
        By.LINK_TEXT, "onboarding"
    ).click()
    driver.switch_to.default_content()
    eventually(
        lambda: (
            f"/dags/{DAG}/runs/" in driver.current_url
            and not driver.find_elements(By.CSS_SELECTOR, "iframe[title=Engagements]")
        ),
        "Airflow's own page of the run, out of the frame",
        timeout=60,
        every=1,
    )
    api.close()
