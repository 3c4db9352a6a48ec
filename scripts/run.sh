#!/usr/bin/env bash
# Run the engagement pipelines locally with the embedded backends (no accounts needed):
#   1. AIRFLOW_HOME=.airflow with a migrated SQLite metadata DB;
#   2. the embedded store seeded with every config in include/communities/, and the fleet file
#      the upkeep DAG observes without cloud connections (include/fleet.yaml, unless one is
#      there already);
#   3. the loopback SMTP outbox (every email lands in outbox/ as an .eml file);
#   4. `airflow standalone` with this project's dags/ and plugins/.
# Ctrl-C (or any exit) stops everything this script started. Normally started by `make run`,
# which creates .venv first. Logs: .airflow/logs/standalone.log and .airflow/logs/outbox.log.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/env.sh
source scripts/env.sh

PY="$ENGAGEMENTS_ROOT/.venv/bin/python"
LOG_DIR="$AIRFLOW_HOME/logs"
STARTUP_TIMEOUT="${ENGAGEMENTS_STARTUP_TIMEOUT:-300}"
API_URL="http://127.0.0.1:$AIRFLOW_API_PORT"
PASSWORDS_FILE="$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated"

say() { printf '[run] %s\n' "$*"; }
die() {
  printf '[run] ERROR: %s\n' "$*" >&2
  exit 1
}

if [[ ! -x "$ENGAGEMENTS_ROOT/.venv/bin/airflow" || ! -x "$ENGAGEMENTS_ROOT/.venv/bin/engagements" ]]; then
  die "the virtual environment is missing or incomplete: run 'make run' (or 'make venv') first"
fi

# --- ports -----------------------------------------------------------------------------
port_in_use() { # 0 when something already listens on (or holds) the TCP port
  "$PY" - "$1" <<'EOF'
import socket, sys
port = int(sys.argv[1])
for host in ("127.0.0.1", "0.0.0.0"):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind((host, port))
    except OSError:
        sys.exit(0)
    finally:
        s.close()
sys.exit(1)
EOF
}

check_port() { # name port variable
  if port_in_use "$2"; then
    die "port $2 ($1) is already in use. Stop whatever uses it (see: ss -ltnp 'sport = :$2'), or choose another port: $3=<port> make run"
  fi
}
check_port "Airflow UI/API" "$AIRFLOW_API_PORT" AIRFLOW_API_PORT
check_port "SMTP outbox" "$ENGAGEMENTS_OUTBOX_PORT" ENGAGEMENTS_OUTBOX_PORT
check_port "scheduler log server" "$AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT" \
  AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT
check_port "triggerer log server" "$AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT" \
  AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT

# --- stop everything we started, whatever happens --------------------------------------
OUTBOX_PID=""
AIRFLOW_PID=""

alive() { [[ -n "$1" ]] && kill -0 "$1" 2>/dev/null; }

wait_gone() { # pid seconds: 0 when the process (group) is gone within the time
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    kill -0 -- "-$1" 2>/dev/null || return 0
    sleep 0.1
  done
  return 1
}

stop_group() { # name pid: each was started with setsid, so its pid is its process group id
  local name="$1" pid="$2"
  kill -0 -- "-$pid" 2>/dev/null || return 0
  say "stopping $name (process group $pid)"
  # SIGTERM to the whole group: airflow standalone and the scheduler, dag-processor,
  # api-server and triggerer it started all shut down on it.
  kill -TERM -- "-$pid" 2>/dev/null || true
  if ! wait_gone "$pid" 30; then
    say "$name did not stop within 30s: killing process group $pid"
    kill -KILL -- "-$pid" 2>/dev/null || true
  fi
}

cleanup() {
  trap - EXIT INT TERM
  if [[ -n "$AIRFLOW_PID" ]]; then stop_group airflow "$AIRFLOW_PID"; fi
  if [[ -n "$OUTBOX_PID" ]]; then stop_group outbox "$OUTBOX_PID"; fi
  say "stopped"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- 1. AIRFLOW_HOME -------------------------------------------------------------------
mkdir -p "$LOG_DIR" "$ENGAGEMENTS_OUTBOX_DIR" "$ENGAGEMENTS_ARTIFACTS_DIR"
if [[ ! -f "$AIRFLOW_HOME/.migrated" ]]; then
  say "migrating the metadata DB in $AIRFLOW_HOME"
  airflow db migrate >"$LOG_DIR/db-migrate.log" 2>&1 ||
    die "airflow db migrate failed; see $LOG_DIR/db-migrate.log"
  touch "$AIRFLOW_HOME/.migrated"
fi

# --- 2. seed the embedded store --------------------------------------------------------
shopt -s nullglob
configs=(include/communities/*.yaml)
shopt -u nullglob
if ((${#configs[@]})); then
  say "seeding $ENGAGEMENTS_STORE_PATH with ${configs[*]}"
  "$ENGAGEMENTS_ROOT/.venv/bin/engagements" seed "${configs[@]}" ||
    die "'engagements seed ${configs[*]}' failed"
else
  say "no community configs in include/communities/: nothing to seed"
fi

FLEET_FILE="${ENGAGEMENTS_UPKEEP_FLEET_FILE:-$AIRFLOW_HOME/fleet.yaml}"
if [[ ! -f "$FLEET_FILE" ]]; then
  say "seeding the upkeep fleet file $FLEET_FILE from include/fleet.yaml"
  cp include/fleet.yaml "$FLEET_FILE"
fi

# --- 3. the SMTP outbox ----------------------------------------------------------------
say "starting the SMTP outbox on 127.0.0.1:$ENGAGEMENTS_OUTBOX_PORT -> $ENGAGEMENTS_OUTBOX_DIR"
setsid "$PY" -m engagements.outbox --host 127.0.0.1 --port "$ENGAGEMENTS_OUTBOX_PORT" \
  --dir "$ENGAGEMENTS_OUTBOX_DIR" >>"$LOG_DIR/outbox.log" 2>&1 </dev/null &
OUTBOX_PID=$!
for ((i = 0; i < 100; i++)); do
  port_in_use "$ENGAGEMENTS_OUTBOX_PORT" && break
  alive "$OUTBOX_PID" || die "the SMTP outbox did not start; see $LOG_DIR/outbox.log"
  sleep 0.1
done
port_in_use "$ENGAGEMENTS_OUTBOX_PORT" ||
  die "the SMTP outbox is not listening on port $ENGAGEMENTS_OUTBOX_PORT; see $LOG_DIR/outbox.log"

# --- 4. airflow standalone -------------------------------------------------------------
say "starting airflow standalone (log: $LOG_DIR/standalone.log)"
setsid airflow standalone >>"$LOG_DIR/standalone.log" 2>&1 </dev/null &
AIRFLOW_PID=$!

say "waiting for $API_URL/api/v2/version (up to ${STARTUP_TIMEOUT}s)"
deadline=$((SECONDS + STARTUP_TIMEOUT))
until curl --silent --fail --max-time 2 "$API_URL/api/v2/version" >/dev/null 2>&1; do
  alive "$AIRFLOW_PID" || die "airflow standalone exited; see $LOG_DIR/standalone.log"
  alive "$OUTBOX_PID" || die "the SMTP outbox exited; see $LOG_DIR/outbox.log"
  ((SECONDS < deadline)) || die "Airflow did not answer within ${STARTUP_TIMEOUT}s; see $LOG_DIR/standalone.log"
  sleep 2
done

password="(see $PASSWORDS_FILE)"
for ((i = 0; i < 30; i++)); do
  if [[ -s "$PASSWORDS_FILE" ]]; then
    password="$("$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["admin"])' \
      "$PASSWORDS_FILE" 2>/dev/null || echo "(see $PASSWORDS_FILE)")"
    break
  fi
  sleep 1
done

cat <<EOF

  Airflow is up:   $API_URL
  Login:           admin / $password
  Portfolio:       $API_URL/engagements/
  Outbox (emails): $ENGAGEMENTS_OUTBOX_DIR  (SMTP 127.0.0.1:$ENGAGEMENTS_OUTBOX_PORT)
  Artifacts:       $ENGAGEMENTS_ARTIFACTS_DIR
  Embedded store:  $ENGAGEMENTS_STORE_PATH
  Logs:            $LOG_DIR/standalone.log, $LOG_DIR/outbox.log

  Press Ctrl-C to stop everything.

EOF

# Stay up until Airflow or the outbox stops, or until Ctrl-C.
while alive "$AIRFLOW_PID" && alive "$OUTBOX_PID"; do
  sleep 2 &
  wait $! || true
done
alive "$AIRFLOW_PID" || die "airflow standalone exited; see $LOG_DIR/standalone.log"
die "the SMTP outbox exited; see $LOG_DIR/outbox.log"
