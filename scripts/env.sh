# shellcheck shell=bash
# The one environment of the embedded setup (`make run`, scripts/run.sh, or your shell):
#
#     source scripts/env.sh
#
# The Makefile mirrors every `export` below (tests/test_compose.py checks that they agree).
# Paths are always this checkout's own. Ports and the SMTP connection can be overridden by
# setting them before sourcing (e.g. `AIRFLOW_API_PORT=8090 ENGAGEMENTS_OUTBOX_PORT=8026 make run`).

ENGAGEMENTS_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"


# Airflow: SQLite metadata DB and logs under .airflow/, this project's dags and plugins.
export AIRFLOW_HOME="$ENGAGEMENTS_ROOT/.airflow"
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="sqlite:///$AIRFLOW_HOME/airflow.db"
export AIRFLOW__CORE__DAGS_FOLDER="$ENGAGEMENTS_ROOT/dags"
export AIRFLOW__CORE__PLUGINS_FOLDER="$ENGAGEMENTS_ROOT/plugins"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
# Unpaused at creation (docker-compose.yaml and the topology pause them). Onboarding, renewal
# and decommission have schedule=None and run only when triggered; the others are scheduled and run
# by themselves while Airflow is up, against the embedded store and the outbox:
# engagement_renewal_scan @daily (00:00 UTC), engagement_quarterly_checkin at 06:00 UTC on 1 Jan,
# Apr, Jul and Oct, engagement_cost_watch at 06:00 UTC on the 3rd of each month,
# engagement_platform_upkeep at 06:00 UTC every Monday. Pause them in the UI to keep them from
# running.
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=False

# Ports: the UI/API, the scheduler's and the triggerer's log servers, the SMTP outbox.
export AIRFLOW_API_PORT="${AIRFLOW_API_PORT:-8080}"
export AIRFLOW__API__HOST="${AIRFLOW__API__HOST:-127.0.0.1}"
export AIRFLOW__API__PORT="$AIRFLOW_API_PORT"
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="http://127.0.0.1:$AIRFLOW_API_PORT/execution/"
export AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT="${AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT:-8793}"
export AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT="${AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT:-8794}"
export ENGAGEMENTS_OUTBOX_PORT="${ENGAGEMENTS_OUTBOX_PORT:-8025}"
# Milestone waits are deferred to the triggerer, which reads recorded milestones every 30 s
# (ENGAGEMENTS_MILESTONE_POLL_INTERVAL). The reschedule-mode sensors (the merge of the
# infrastructure change, hub health) check every 30 s here: the embedded store and the local
# repository have no rate limit (production keeps their default of 2 hours, README "Scaling").
export ENGAGEMENTS_POKE_INTERVAL="${ENGAGEMENTS_POKE_INTERVAL:-30}"

# The engagements package (see plugins/engagements/settings.py for the other ENGAGEMENTS_*).
export ENGAGEMENTS_ARTIFACTS_DIR="$ENGAGEMENTS_ROOT/artifacts"
export ENGAGEMENTS_STORE_PATH="$AIRFLOW_HOME/engagements.sqlite"
export ENGAGEMENTS_OUTBOX_DIR="$ENGAGEMENTS_ROOT/outbox"

# Email goes to the loopback outbox (scripts/run.sh starts it) unless you set your own.
if [[ -z "${AIRFLOW_CONN_SMTP_DEFAULT:-}" ]]; then
  AIRFLOW_CONN_SMTP_DEFAULT="$(printf '{"conn_type":"smtp","host":"127.0.0.1","port":%d,"extra":{"disable_tls":true,"disable_ssl":true,"from_email":"engagements@2i2c.org","timeout":10,"retry_limit":2}}' "$ENGAGEMENTS_OUTBOX_PORT")"
fi
export AIRFLOW_CONN_SMTP_DEFAULT

# `airflow standalone` starts its components as `airflow` found on PATH.
case ":$PATH:" in
  ":$ENGAGEMENTS_ROOT/.venv/bin:"*) ;;
  *) export PATH="$ENGAGEMENTS_ROOT/.venv/bin:$PATH" ;;
esac
