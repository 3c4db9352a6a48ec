"""Parse cost of the DAG files, measured in fresh processes (median of several runs).

For each DAG file: the time to import it in a process that has already imported
``airflow.sdk`` (what the dag-processor pays per file beyond Airflow itself). Then the time
to fill a whole DagBag from the dags folder. Run with ``make bench-parse``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PER_FILE = """
import importlib.util, sys, time
import airflow.sdk
start = time.perf_counter()
spec = importlib.util.spec_from_file_location("bench_dag", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(time.perf_counter() - start)
"""

BAG = """
import sys, time
from airflow.dag_processing.dagbag import DagBag
start = time.perf_counter()
bag = DagBag(sys.argv[1])
elapsed = time.perf_counter() - start
assert not bag.import_errors, bag.import_errors
print(elapsed)
"""


def measure(code: str, arg: str, runs: int) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "plugins")}
    samples = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", code, arg], capture_output=True, text=True, env=env, check=True
        )
        samples.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    dags = ROOT / "dags"
    print(f"median of {args.runs} fresh processes each")
    for path in sorted(dags.glob("*.py")):
        seconds = measure(PER_FILE, str(path), args.runs)
        print(f"{path.name:40s} {seconds:6.3f} s beyond import airflow.sdk")
    print(f"{'DagBag fill (whole dags folder)':40s} {measure(BAG, str(dags), args.runs):6.3f} s")


if __name__ == "__main__":
    main()
