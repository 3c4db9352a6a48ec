#!/usr/bin/env bash
# Run the engagement pipelines locally with the embedded backends (no accounts needed):
# the metadata DB and the embedded store in .airflow/, the loopback SMTP outbox (every email
# lands in outbox/ as an .eml file), and Airflow's scheduler, dag-processor, triggerer and
# api-server with this project's dags/ and plugins/. Normally started by `make run`, which
# creates .venv first.
#
# scripts/supervise.py does the work: it refuses a second run in this checkout, names ports
# in use, restarts a component that exits (or stops everything, saying why), and stops
# everything it started however it is stopped (Ctrl-C, kill, SIGTERM to the process group).
# Logs: .airflow/logs/<component>.log.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/env.sh
source scripts/env.sh

if [[ ! -x "$ENGAGEMENTS_ROOT/.venv/bin/airflow" || ! -x "$ENGAGEMENTS_ROOT/.venv/bin/engagements" ]]; then
  printf '[run] ERROR: %s\n' "the virtual environment is missing or incomplete: run 'make run' (or 'make venv') first" >&2
  exit 1
fi

export ENGAGEMENTS_ROOT
exec "$ENGAGEMENTS_ROOT/.venv/bin/python" "$ENGAGEMENTS_ROOT/scripts/supervise.py"
