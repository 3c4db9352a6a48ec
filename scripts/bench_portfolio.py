"""The portfolio page for 500 engagements: store requests and time to answer.

Airflow's real api-server app (``create_app``, SimpleAuthManager, this project's plugin) in this
process, a viewer's token, and ``--communities`` engagements (each with its onboarding
milestones, three months of costs and an email; see ``tests/web/many.py``) in two stores:

- the production ``AirtableStore`` over HTTP to the fake Airtable of ``tests/store`` (a real
  server on loopback that pages at 100 records): every request is counted;
- the embedded ``LocalStore`` (SQLite), whose listing calls are counted.

Measured, median of ``--repeat`` requests after one warm-up: the wall time of ``GET
/engagements/`` (the HTML page) and ``GET /engagements/api/engagements`` (JSON), and of the
three store listings alone. Estimated, not measured: real Airtable's floor of requests / 5 per
second per base.

    .venv/bin/python scripts/bench_portfolio.py [--communities 500] [--repeat 5]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

TOKEN = "patBENCHtoken0123456789.abcdefPORTFO"
BASE_ID = "appBENCHbase01234"
AIRTABLE_REQUESTS_PER_SECOND = 5
PASSWORD = "bench-viewer-password"


def environment(home: Path) -> None:
    """A private AIRFLOW_HOME with a viewer, set before Airflow is imported."""
    passwords = home / "passwords.json"
    passwords.write_text(json.dumps({"viewer": PASSWORD}))
    os.environ.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "viewer:viewer",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            "ENGAGEMENTS_ARTIFACTS_DIR": str(home / "artifacts"),
        }
    )
    for key in [k for k in os.environ if k.startswith("AIRFLOW_CONN_")]:
        del os.environ[key]


def timed(call: Any, repeat: int) -> float:
    call()  # warm-up: the first request builds the plugin's app
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(client: Any, store: Any, repeat: int, count: int) -> dict[str, float]:
    def page() -> None:
        response = client.get("/engagements/")
        assert response.status_code == 200, response.text[:500]
        assert response.text.count("data-community=") == count

    def api() -> None:
        response = client.get("/engagements/api/engagements")
        assert response.json()["total"] == count

    def reads() -> None:
        store.list_engagements()
        store.list_milestones()
        store.list_actions(kind="cost_month")

    return {"page": timed(page, repeat), "api": timed(api, repeat), "reads": timed(reads, repeat)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--communities", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)

    home = Path(tempfile.mkdtemp(prefix="engagements-bench-portfolio-"))
    environment(home)
    import logging

    logging.disable(logging.WARNING)
    from airflow.api_fastapi.app import create_app
    from airflow.utils import db
    from fastapi.testclient import TestClient

    from engagements.config import load_config
    from engagements.store.airtable import AirtableStore
    from engagements.store.local import LocalStore
    from tests.store.fake_airtable import FakeAirtable
    from tests.web.many import airtable_rows, seed_store

    db.initdb()
    app = create_app()
    token = TestClient(app).post("/auth/token", json={"username": "viewer", "password": PASSWORD})
    client = TestClient(app)
    client.cookies.set("_token", token.json()["access_token"])
    example = load_config(ROOT / "include" / "communities" / "openscience.yaml").to_dict()
    today = dt.datetime.now(dt.UTC).date()
    results: dict[str, dict[str, Any]] = {}

    # SQLite
    os.environ["ENGAGEMENTS_STORE"] = "local"
    os.environ["ENGAGEMENTS_STORE_PATH"] = str(home / "engagements.sqlite")
    local = LocalStore(home / "engagements.sqlite")
    seed_store(local, example, args.communities, today)
    calls: Counter[str] = Counter()
    for name in ("list_engagements", "list_milestones", "list_actions", "get_engagement"):
        original = getattr(LocalStore, name)

        def counted(self: Any, *a: Any, _name: str = name, _f: Any = original, **k: Any) -> Any:
            calls[_name] += 1
            return _f(self, *a, **k)

        setattr(LocalStore, name, counted)
    client.get("/engagements/")
    calls.clear()
    client.get("/engagements/")
    sqlite_calls = dict(calls)
    results["SQLite"] = measure(client, local, args.repeat, args.communities)
    results["SQLite"]["requests"] = sum(sqlite_calls.values())
    results["SQLite"]["per_table"] = sqlite_calls

    # Airtable (the fake, on loopback)
    with FakeAirtable(TOKEN, BASE_ID) as fake:
        for table, rows in airtable_rows(example, args.communities, today).items():
            fake.seed(table, rows)
        connection = {
            "conn_type": "airtable",
            "password": TOKEN,
            "extra": {"base_id": BASE_ID, "endpoint_url": fake.url},
        }
        os.environ["AIRFLOW_CONN_AIRTABLE_DEFAULT"] = json.dumps(connection)
        os.environ["ENGAGEMENTS_STORE"] = "airtable"
        airtable = AirtableStore.from_credentials(TOKEN, BASE_ID, endpoint_url=fake.url)
        client.get("/engagements/")
        fake.requests.clear()
        client.get("/engagements/")
        per_table = dict(Counter(r.path.rsplit("/", 1)[-1] for r in fake.requests))
        results["Airtable (fake)"] = measure(client, airtable, args.repeat, args.communities)
        results["Airtable (fake)"]["requests"] = sum(per_table.values())
        results["Airtable (fake)"]["per_table"] = per_table
        records = {t: len(fake.records(t)) for t in ("Engagements", "Milestones", "Actions")}

    print(f"\n{args.communities} engagements; median of {args.repeat} requests after a warm-up")
    print(f"records: {records}\n")
    print("| store | store requests per page | page (HTML) | JSON | the 3 listings alone |")
    print("|---|---|---|---|---|")
    for name, r in results.items():
        print(
            f"| {name} | {r['requests']} | {r['page']:.2f} s | {r['api']:.2f} s |"
            f" {r['reads']:.2f} s |"
        )
    airtable_requests = results["Airtable (fake)"]["requests"]
    print(f"\nSQLite store calls of one page: {results['SQLite']['per_table']}")
    print(
        f"Airtable requests of one page, by table: {results['Airtable (fake)']['per_table']}; at "
        f"{AIRTABLE_REQUESTS_PER_SECOND}/s (estimate, not measured): "
        f"{airtable_requests / AIRTABLE_REQUESTS_PER_SECOND:.0f} s of the base's rate limit"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
