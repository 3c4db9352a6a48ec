#!/usr/bin/env bash
# The production topology of docker-compose.yaml, without Docker, on this machine's loopback:
#
#   PostgreSQL (metadata DB) + Redis (Celery broker) from Debian's packages, run as an
#   unprivileged user; `airflow db migrate`; then api-server, scheduler, dag-processor,
#   triggerer and a Celery worker from .venv with the CeleryExecutor; and the SMTP outbox.
#   TOPOLOGY_EXECUTOR=LocalExecutor runs the tasks in the scheduler's LocalExecutor instead
#   (no Redis, no worker): the other executor deployments use, with the same PostgreSQL.
#
#   scripts/topology.sh up       # install what is missing, start everything, wait for health
#   scripts/topology.sh down     # stop everything `up` started, by process id
#   scripts/topology.sh status   # what is running
#   scripts/topology.sh env      # the environment of the topology, as NAME=value lines
#
# (`make topology-up` / `make topology-down`.) The environment uses the names of
# docker-compose.yaml's x-airflow-common (tests/test_compose.py checks that they agree).
# Everything lives in ENGAGEMENTS_TOPOLOGY_DIR (default .topology/): AIRFLOW_HOME (airflow/),
# the Postgres and Redis data (pg/, redis/), the store (data/), outbox/, artifacts/, logs/ and
# the pid files (run/). Ports (loopback only; override by setting them):
#   TOPOLOGY_API_PORT=58080 (UI + REST)  TOPOLOGY_PG_PORT=55432  TOPOLOGY_REDIS_PORT=56379
#   TOPOLOGY_OUTBOX_PORT=58025 (SMTP)    TOPOLOGY_SCHEDULER_HEALTH_PORT=58974
# Login: AIRFLOW_ADMIN_USERNAME (default admin) / AIRFLOW_ADMIN_PASSWORD (default: generated
# once into airflow/simple_auth_manager_passwords.json.generated, and printed).
# Passed through to every component: ENGAGEMENTS_POKE_INTERVAL,
# ENGAGEMENTS_MILESTONE_POLL_INTERVAL, ENGAGEMENTS_STORE, AIRFLOW_CONN_* (except smtp_default:
# the topology's outbox), AIRFLOW_VAR_*, PYTHONPATH.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

TOPOLOGY_DIR="${ENGAGEMENTS_TOPOLOGY_DIR:-$ROOT/.topology}"
API_PORT="${TOPOLOGY_API_PORT:-58080}"
PG_PORT="${TOPOLOGY_PG_PORT:-55432}"
REDIS_PORT="${TOPOLOGY_REDIS_PORT:-56379}"
OUTBOX_PORT="${TOPOLOGY_OUTBOX_PORT:-58025}"
SCHEDULER_HEALTH_PORT="${TOPOLOGY_SCHEDULER_HEALTH_PORT:-58974}"
API_WORKERS="${TOPOLOGY_API_WORKERS:-2}"
WORKER_CONCURRENCY="${TOPOLOGY_WORKER_CONCURRENCY:-16}"
STARTUP_TIMEOUT="${TOPOLOGY_STARTUP_TIMEOUT:-300}"
# Postgres refuses to run as root: as root, Postgres and Redis run as this system user.
SERVICE_USER="${TOPOLOGY_SERVICE_USER:-engagements-pg}"

VENV_BIN="$ROOT/.venv/bin"
RUN_DIR="$TOPOLOGY_DIR/run"
LOG_DIR="$TOPOLOGY_DIR/logs"
PG_DATA="$TOPOLOGY_DIR/pg/data"
PG_LOG="$TOPOLOGY_DIR/pg/server.log" # written by the server itself, as the service user
REDIS_DIR="$TOPOLOGY_DIR/redis"
EXECUTOR="${TOPOLOGY_EXECUTOR:-CeleryExecutor}"
# Started in this order; stopped in the reverse order (`down` stops any that runs).
ALL_COMPONENTS=(postgres redis outbox api-server scheduler dag-processor triggerer worker)
case "$EXECUTOR" in
  CeleryExecutor) COMPONENTS=("${ALL_COMPONENTS[@]}") ;;
  LocalExecutor) COMPONENTS=(postgres outbox api-server scheduler dag-processor triggerer) ;;
  *)
    printf '[topology] ERROR: TOPOLOGY_EXECUTOR: %s is not CeleryExecutor or LocalExecutor\n' "$EXECUTOR" >&2
    exit 2
    ;;
esac

say() { printf '[topology] %s\n' "$*"; }
die() {
  printf '[topology] ERROR: %s\n' "$*" >&2
  exit 1
}

# Every file holding a secret (the Fernet key, env.sh with it and the AIRFLOW_CONN_* values,
# Postgres's initial password) is readable by its owner only: created under umask 077 and
# made 0600 before anything is written, so a file left 0644 by an earlier run is fixed too.
# (airflow.cfg, with the JWT secret, is made 0600 by Airflow itself.)
write_private() { # file: stdin written to the file, readable by its owner only
  (umask 077 && : >"$1") || die "could not create $1"
  chmod 600 "$1"
  cat >"$1" || die "could not write $1"
}

# --- the environment (the names of docker-compose.yaml) ----------------------------------

topology_env() {
  local name
  # Nothing of the embedded setup (`make`, scripts/env.sh) may leak in: its AIRFLOW_HOME,
  # SQLite DB, ports and outbox are another Airflow's.
  for name in $(compgen -e); do
    case "$name" in
      AIRFLOW_ADMIN_USERNAME | AIRFLOW_ADMIN_PASSWORD | AIRFLOW_FERNET_KEY | AIRFLOW_VAR_*) ;;
      AIRFLOW_CONN_SMTP_DEFAULT) unset "$name" ;;
      AIRFLOW_CONN_*) ;;
      ENGAGEMENTS_POKE_INTERVAL | ENGAGEMENTS_MILESTONE_POLL_INTERVAL) ;;
      ENGAGEMENTS_STORE | ENGAGEMENTS_TOPOLOGY_DIR) ;;
      AIRFLOW* | ENGAGEMENTS_*) unset "$name" ;;
    esac
  done
  local pg="airflow:airflow@127.0.0.1:$PG_PORT/airflow"
  export AIRFLOW_HOME="$TOPOLOGY_DIR/airflow"
  export AIRFLOW_CONFIG="$AIRFLOW_HOME/airflow.cfg"
  export AIRFLOW__CORE__EXECUTOR="$EXECUTOR"
  export AIRFLOW__CORE__AUTH_MANAGER=airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager
  export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="${AIRFLOW_ADMIN_USERNAME:-admin}:admin"
  export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE="$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated"
  export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="postgresql+psycopg2://$pg"
  export AIRFLOW__CELERY__RESULT_BACKEND="db+postgresql+psycopg2://$pg"
  export AIRFLOW__CELERY__BROKER_URL="redis://:@127.0.0.1:$REDIS_PORT/0"
  export AIRFLOW__CELERY__WORKER_CONCURRENCY="$WORKER_CONCURRENCY"
  if [[ -z "${AIRFLOW_FERNET_KEY:-}" && -s "$TOPOLOGY_DIR/secrets/fernet.key" ]]; then
    AIRFLOW_FERNET_KEY="$(<"$TOPOLOGY_DIR/secrets/fernet.key")"
  fi
  export AIRFLOW__CORE__FERNET_KEY="${AIRFLOW_FERNET_KEY:-}"
  export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=true
  export AIRFLOW__CORE__LOAD_EXAMPLES=false
  # Each onboarding is a run that lasts weeks: Airflow's default of 16 active runs per DAG
  # would queue the 17th community behind them.
  export AIRFLOW__CORE__MAX_ACTIVE_RUNS_PER_DAG=1000
  export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="http://127.0.0.1:$API_PORT/execution/"
  export AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK=true
  export AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_HOST=127.0.0.1
  export AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT="$SCHEDULER_HEALTH_PORT"
  export AIRFLOW__API__HOST=127.0.0.1
  export AIRFLOW__API__PORT="$API_PORT"
  export AIRFLOW__CORE__DAGS_FOLDER="$ROOT/dags"
  export AIRFLOW__CORE__PLUGINS_FOLDER="$ROOT/plugins"
  export PYTHONPATH="$ROOT/plugins${PYTHONPATH:+:$PYTHONPATH}"
  export ENGAGEMENTS_ARTIFACTS_DIR="$TOPOLOGY_DIR/artifacts"
  export ENGAGEMENTS_STORE_PATH="$TOPOLOGY_DIR/data/engagements.sqlite"
  export ENGAGEMENTS_OUTBOX_DIR="$TOPOLOGY_DIR/outbox"
  AIRFLOW_CONN_SMTP_DEFAULT="$(printf '{"conn_type":"smtp","host":"127.0.0.1","port":%d,"extra":{"disable_tls":true,"disable_ssl":true,"from_email":"engagements@2i2c.org","timeout":10,"retry_limit":2}}' "$OUTBOX_PORT")"
  export AIRFLOW_CONN_SMTP_DEFAULT
  case ":$PATH:" in
    ":$VENV_BIN:"*) ;;
    *) export PATH="$VENV_BIN:$PATH" ;;
  esac
}

print_env() {
  env | grep -E '^(AIRFLOW|ENGAGEMENTS_|PYTHONPATH=|PATH=)' | sort
}

# --- processes: pid files hold "pid start-time", so a recycled pid is never signalled ----

start_time() { # pid: the process's start time in clock ticks (field 22 of /proc/pid/stat)
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  stat="${stat##*) }" # the fields after the command name, which may contain spaces
  # shellcheck disable=SC2086
  set -- $stat
  echo "${20}"
}

record_pid() { # name pid
  local started
  started="$(start_time "$2")" || die "$1 (pid $2) exited right after it was started; see $LOG_DIR/$1.log"
  echo "$2 $started" >"$RUN_DIR/$1.pid"
}

recorded_pid() { # name: the pid if the recorded process is still that process, else nothing
  local file="$RUN_DIR/$1.pid" pid started now
  [[ -s "$file" ]] || return 1
  read -r pid started <"$file" || return 1
  now="$(start_time "$pid")" || return 1
  [[ "$now" == "$started" ]] || return 1
  echo "$pid"
}

is_running() { recorded_pid "$1" >/dev/null; }

pgid_of() { # pid: its process group id (field 5 of /proc/pid/stat)
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  stat="${stat##*) }"
  # shellcheck disable=SC2086
  set -- $stat
  echo "$3"
}

launch() { # name command...: in its own session (its pid is its process group id), logged
  local name="$1" pid i
  shift
  setsid "$@" >>"$LOG_DIR/$name.log" 2>&1 </dev/null &
  pid=$!
  record_pid "$name" "$pid"
  # setsid(2) happens once the child has exec'd setsid(1): wait for it to lead its group.
  for ((i = 0; i < 100; i++)); do
    [[ "$(pgid_of "$pid")" == "$pid" ]] && return 0
    kill -0 "$pid" 2>/dev/null || die "$name exited right after it was started; see $LOG_DIR/$name.log"
    sleep 0.05
  done
  die "$name (pid $pid) did not become the leader of its own process group"
}

wait_gone() { # pid seconds [group]: 0 once the process (or its whole group) is gone
  local i target="$1"
  [[ "${3:-}" == group ]] && target="-$1"
  for ((i = 0; i < $2 * 10; i++)); do
    kill -0 -- "$target" 2>/dev/null || return 0
    sleep 0.1
  done
  return 1
}

stop_component() { # name
  local name="$1" pid
  if ! pid="$(recorded_pid "$name")"; then
    rm -f "$RUN_DIR/$name.pid"
    return 0
  fi
  case "$name" in
    postgres)
      # SIGINT is PostgreSQL's "fast" shutdown: sessions are closed, the data is consistent.
      say "stopping PostgreSQL (pid $pid, port $PG_PORT)"
      kill -INT "$pid" 2>/dev/null || true
      if ! wait_gone "$pid" 60; then
        say "PostgreSQL (pid $pid) did not stop within 60s: killing it"
        kill -KILL "$pid" 2>/dev/null || true
      fi
      ;;
    *)
      # The whole process group: the worker's pool, the api-server's workers, task processes.
      say "stopping $name (process group $pid)"
      kill -TERM -- "-$pid" 2>/dev/null || true
      if ! wait_gone "$pid" 45 group; then
        say "$name did not stop within 45s: killing process group $pid"
        kill -KILL -- "-$pid" 2>/dev/null || true
        wait_gone "$pid" 10 group || die "process group $pid ($name) survived SIGKILL"
      fi
      ;;
  esac
  rm -f "$RUN_DIR/$name.pid"
}

cmd_down() {
  local i any=0
  [[ -d "$RUN_DIR" ]] || {
    say "nothing to stop (no $RUN_DIR)"
    return 0
  }
  for ((i = ${#ALL_COMPONENTS[@]} - 1; i >= 0; i--)); do
    if [[ -e "$RUN_DIR/${ALL_COMPONENTS[i]}.pid" ]]; then
      any=1
      stop_component "${ALL_COMPONENTS[i]}"
    fi
  done
  ((any)) && say "stopped" || say "nothing was running"
}

cmd_status() {
  local name pid rc=0
  for name in "${COMPONENTS[@]}"; do
    if pid="$(recorded_pid "$name")"; then
      printf '%-14s running (pid %s)\n' "$name" "$pid"
    else
      printf '%-14s stopped\n' "$name"
      rc=3
    fi
  done
  return "$rc"
}

# --- packages and the unprivileged service user -----------------------------------------

PG_BIN=""
find_postgres_bin() {
  local dir
  PG_BIN=""
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V); do
    [[ -x "$dir/postgres" && -x "$dir/initdb" && -x "$dir/pg_ctl" ]] && PG_BIN="$dir"
  done
  [[ -n "$PG_BIN" ]]
}

install_packages() {
  local missing=()
  find_postgres_bin || missing+=(postgresql)
  command -v redis-server >/dev/null && command -v redis-cli >/dev/null || missing+=(redis-server)
  command -v setpriv >/dev/null || missing+=(util-linux)
  command -v curl >/dev/null || missing+=(curl)
  ((${#missing[@]})) || return 0
  if ((EUID != 0)); then
    die "missing Debian packages: ${missing[*]}. Install them (sudo apt-get install -y ${missing[*]}) and run this again"
  fi
  say "installing ${missing[*]} (apt-get; their default services are not started)"
  # Keep the packages' own init scripts from starting a cluster on 5432 and Redis on 6379.
  local policy=/usr/sbin/policy-rc.d added_policy=0
  if [[ ! -e "$policy" ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    added_policy=1
  fi
  local ok=1
  {
    apt-get update -qq &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  } >>"$LOG_DIR/apt.log" 2>&1 || ok=0
  ((added_policy)) && rm -f "$policy"
  ((ok)) || die "apt-get install ${missing[*]} failed; see $LOG_DIR/apt.log"
  find_postgres_bin || die "the postgresql package did not provide /usr/lib/postgresql/*/bin/postgres"
}

SERVICE_UID=""
SERVICE_GID=""
ensure_service_user() {
  if ((EUID != 0)); then
    SERVICE_UID="$(id -u)"
    SERVICE_GID="$(id -g)"
    return 0
  fi
  if ! id -u "$SERVICE_USER" >/dev/null 2>&1; then
    say "creating the system user $SERVICE_USER (runs PostgreSQL and Redis; no login)"
    useradd --system --user-group --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin "$SERVICE_USER" ||
      die "could not create the system user $SERVICE_USER (set TOPOLOGY_SERVICE_USER to an existing unprivileged user)"
  fi
  SERVICE_UID="$(id -u "$SERVICE_USER")"
  SERVICE_GID="$(id -g "$SERVICE_USER")"
  ((SERVICE_UID != 0)) || die "TOPOLOGY_SERVICE_USER=$SERVICE_USER is root; PostgreSQL refuses to run as root"
}

as_service_user() { # command...: exec'd as the service user (no extra process in between)
  if ((EUID != 0)); then
    "$@"
  else
    # From / : the service user may not be allowed into the current folder.
    (cd / && setpriv --reuid="$SERVICE_UID" --regid="$SERVICE_GID" --clear-groups -- "$@")
  fi
}

service_dir() { # folder: created, owned by the service user, reachable by it
  mkdir -p "$1"
  if ((EUID == 0)); then
    # Recursively: the user may have another uid than when the data was created.
    chown -R "$SERVICE_UID:$SERVICE_GID" "$1"
    chmod 700 "$1"
    as_service_user test -w "$1" ||
      die "user $SERVICE_USER cannot reach $1: make its parent folders traversable (chmod o+x) or set ENGAGEMENTS_TOPOLOGY_DIR to a folder it can reach"
  fi
}

# --- ports and health --------------------------------------------------------------------

port_in_use() { # port: 0 when something listens on (or holds) it on loopback
  "$VENV_BIN/python" - "$1" <<'EOF'
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(0)
finally:
    s.close()
sys.exit(1)
EOF
}

check_ports() {
  local spec name port var
  for spec in "PostgreSQL:$PG_PORT:TOPOLOGY_PG_PORT" "Redis:$REDIS_PORT:TOPOLOGY_REDIS_PORT" \
    "SMTP outbox:$OUTBOX_PORT:TOPOLOGY_OUTBOX_PORT" "Airflow UI/API:$API_PORT:TOPOLOGY_API_PORT" \
    "scheduler health check:$SCHEDULER_HEALTH_PORT:TOPOLOGY_SCHEDULER_HEALTH_PORT"; do
    IFS=: read -r name port var <<<"$spec"
    [[ "$name" != Redis || "$EXECUTOR" == CeleryExecutor ]] || continue
    if port_in_use "$port"; then
      die "port $port ($name) is already in use on 127.0.0.1. Stop what uses it (ss -ltnp 'sport = :$port'), or choose another: $var=<port> make topology-up"
    fi
  done
}

wait_for() { # what seconds command...: retry the command until it succeeds
  local what="$1" seconds="$2" deadline name
  shift 2
  deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    for name in "${COMPONENTS[@]}"; do
      if [[ -e "$RUN_DIR/$name.pid" ]] && ! is_running "$name"; then
        die "$name exited while waiting for $what; see $LOG_DIR/$name.log"
      fi
    done
    ((SECONDS < deadline)) || die "$what was not ready within ${seconds}s; see the logs in $LOG_DIR"
    sleep 2
  done
}

api_healthy() { # every component the api-server monitors says healthy
  curl --silent --fail --max-time 5 "http://127.0.0.1:$API_PORT/api/v2/monitor/health" |
    "$VENV_BIN/python" -c '
import json, sys
health = json.load(sys.stdin)
parts = ("metadatabase", "scheduler", "triggerer", "dag_processor")
sys.exit(0 if all(health.get(p, {}).get("status") == "healthy" for p in parts) else 1)'
}

# --- up ----------------------------------------------------------------------------------

start_postgres() {
  service_dir "$TOPOLOGY_DIR/pg"
  if [[ ! -s "$PG_DATA/PG_VERSION" ]]; then
    say "initialising a PostgreSQL cluster in $PG_DATA"
    local pwfile="$TOPOLOGY_DIR/pg/pwfile"
    printf 'airflow\n' | write_private "$pwfile"
    # initdb reads it as the service user: its owner (0600 still).
    ((EUID != 0)) || chown "$SERVICE_UID:$SERVICE_GID" "$pwfile"
    as_service_user "$PG_BIN/initdb" -D "$PG_DATA" -U airflow --pwfile="$pwfile" \
      --auth-local=scram-sha-256 --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 \
      >>"$LOG_DIR/postgres.log" 2>&1 || die "initdb failed; see $LOG_DIR/postgres.log"
    rm -f "$pwfile"
  fi
  say "starting PostgreSQL on 127.0.0.1:$PG_PORT (as $(id -un "$SERVICE_UID"))"
  # TCP on loopback only, no Unix socket.
  as_service_user "$PG_BIN/pg_ctl" start -D "$PG_DATA" -w -t 60 -l "$PG_LOG" \
    -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -c unix_socket_directories=''" >/dev/null ||
    die "PostgreSQL did not start on port $PG_PORT; see $PG_LOG"
  local pid
  pid="$(head -1 "$PG_DATA/postmaster.pid")"
  record_pid postgres "$pid"
  export PGPASSWORD=airflow
  if ! "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U airflow -d postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname = 'airflow'" | grep -q 1; then
    "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U airflow -d postgres -qc "CREATE DATABASE airflow" ||
      die "could not create the database airflow on port $PG_PORT"
  fi
  unset PGPASSWORD
}

start_redis() {
  service_dir "$REDIS_DIR"
  say "starting Redis on 127.0.0.1:$REDIS_PORT"
  if ((EUID == 0)); then
    launch redis setpriv --reuid="$SERVICE_UID" --regid="$SERVICE_GID" --clear-groups -- \
      redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$REDIS_DIR" \
      --save '' --appendonly no --daemonize no --protected-mode yes
  else
    launch redis redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$REDIS_DIR" \
      --save '' --appendonly no --daemonize no --protected-mode yes
  fi
  wait_for "Redis on port $REDIS_PORT" 30 bash -c "redis-cli -h 127.0.0.1 -p $REDIS_PORT ping | grep -q PONG"
}

write_admin_password() {
  local file="$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"
  local user="${AIRFLOW_ADMIN_USERNAME:-admin}"
  "$VENV_BIN/python" - "$file" "$user" <<'EOF'
import json, os, pathlib, secrets, sys
path, user = pathlib.Path(sys.argv[1]), sys.argv[2]
users = json.loads(path.read_text() or "{}") if path.exists() else {}
wanted = os.environ.get("AIRFLOW_ADMIN_PASSWORD")
if wanted or user not in users:
    users[user] = wanted or secrets.token_urlsafe(12)
    os.umask(0o077)
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(json.dumps(users))
EOF
}

init_airflow() {
  mkdir -p "$AIRFLOW_HOME/logs" "$TOPOLOGY_DIR/data" \
    "$ENGAGEMENTS_ARTIFACTS_DIR" "$ENGAGEMENTS_OUTBOX_DIR"
  (umask 077 && mkdir -p "$TOPOLOGY_DIR/secrets")
  chmod 700 "$TOPOLOGY_DIR/secrets"
  # A key written by an earlier run may be 0644.
  [[ ! -e "$TOPOLOGY_DIR/secrets/fernet.key" ]] || chmod 600 "$TOPOLOGY_DIR/secrets/fernet.key"
  if [[ -z "${AIRFLOW__CORE__FERNET_KEY}" ]]; then
    "$VENV_BIN/python" -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())' |
      write_private "$TOPOLOGY_DIR/secrets/fernet.key"
    AIRFLOW__CORE__FERNET_KEY="$(<"$TOPOLOGY_DIR/secrets/fernet.key")"
  fi
  # One airflow.cfg shared by every component (it holds the generated JWT secret), written
  # before any of them starts, as airflow-init does in docker-compose.yaml.
  airflow config list >/dev/null 2>>"$LOG_DIR/init.log" ||
    die "airflow could not write its configuration; see $LOG_DIR/init.log"
  grep -Eq '^jwt_secret = .+' "$AIRFLOW_CONFIG" ||
    die "$AIRFLOW_CONFIG has no [api_auth] jwt_secret; remove it and run this again"
  write_admin_password
  say "migrating the metadata DB (airflow db migrate; log: $LOG_DIR/db-migrate.log)"
  airflow db migrate >>"$LOG_DIR/db-migrate.log" 2>&1 ||
    die "airflow db migrate failed; see $LOG_DIR/db-migrate.log"
  shopt -s nullglob
  local configs=(include/communities/*.yaml)
  shopt -u nullglob
  if ((${#configs[@]})); then
    "$VENV_BIN/engagements" seed "${configs[@]}" >>"$LOG_DIR/init.log" 2>&1 ||
      die "'engagements seed ${configs[*]}' failed; see $LOG_DIR/init.log"
  fi
  # The fleet the upkeep DAG observes without cloud connections, as `make run` seeds it.
  [[ -f "$AIRFLOW_HOME/fleet.yaml" ]] || cp include/fleet.yaml "$AIRFLOW_HOME/fleet.yaml"
}

cmd_up() {
  [[ -x "$VENV_BIN/airflow" && -x "$VENV_BIN/engagements" ]] ||
    die "the virtual environment is missing or incomplete: run 'make venv' first"
  "$VENV_BIN/python" -c 'import airflow.providers.celery, psycopg2, redis' 2>/dev/null ||
    die "the Celery provider, psycopg2 or redis is not installed in .venv: run 'make venv'"
  mkdir -p "$RUN_DIR" "$LOG_DIR"
  [[ -e "$TOPOLOGY_DIR/.gitignore" ]] || echo '*' >"$TOPOLOGY_DIR/.gitignore"
  local name
  for name in "${COMPONENTS[@]}"; do
    if is_running "$name"; then
      die "$name is already running (pid $(recorded_pid "$name")): run 'make topology-down' first"
    fi
  done
  rm -f "$RUN_DIR"/*.pid
  check_ports
  install_packages
  ensure_service_user
  # From here on, a failure stops whatever was started.
  trap 'status=$?; if ((status)); then say "start-up failed: stopping what was started"; cmd_down; fi' EXIT
  start_postgres
  [[ "$EXECUTOR" != CeleryExecutor ]] || start_redis

  say "starting the SMTP outbox on 127.0.0.1:$OUTBOX_PORT -> $ENGAGEMENTS_OUTBOX_DIR"
  mkdir -p "$ENGAGEMENTS_OUTBOX_DIR"
  launch outbox "$VENV_BIN/python" -m engagements.outbox --host 127.0.0.1 --port "$OUTBOX_PORT" \
    --dir "$ENGAGEMENTS_OUTBOX_DIR"

  init_airflow

  say "starting the api-server on 127.0.0.1:$API_PORT"
  launch api-server airflow api-server --host 127.0.0.1 --port "$API_PORT" --workers "$API_WORKERS"
  wait_for "the api-server (http://127.0.0.1:$API_PORT/api/v2/version)" "$STARTUP_TIMEOUT" \
    curl --silent --fail --max-time 5 "http://127.0.0.1:$API_PORT/api/v2/version"
  wait_for "the SMTP outbox on port $OUTBOX_PORT" 30 port_in_use "$OUTBOX_PORT"

  say "starting the scheduler ($EXECUTOR), dag-processor, triggerer and any worker"
  # Log servers are not started (-s): every component shares AIRFLOW_HOME/logs on this
  # machine, and nothing may listen beyond loopback.
  launch scheduler airflow scheduler --skip-serve-logs
  launch dag-processor airflow dag-processor
  launch triggerer airflow triggerer --skip-serve-logs
  local worker_name
  worker_name="topology@$(hostname 2>/dev/null || cat /proc/sys/kernel/hostname)"
  if [[ "$EXECUTOR" == CeleryExecutor ]]; then
    launch worker airflow celery worker --skip-serve-logs --celery-hostname "$worker_name" \
      --concurrency "$WORKER_CONCURRENCY"
  fi

  wait_for "the scheduler's health check (port $SCHEDULER_HEALTH_PORT)" "$STARTUP_TIMEOUT" \
    curl --silent --fail --max-time 5 "http://127.0.0.1:$SCHEDULER_HEALTH_PORT/health"
  wait_for "metadatabase, scheduler, triggerer and dag-processor health" "$STARTUP_TIMEOUT" \
    api_healthy
  if [[ "$EXECUTOR" == CeleryExecutor ]]; then
    wait_for "the Celery worker $worker_name" "$STARTUP_TIMEOUT" \
      celery --app airflow.providers.celery.executors.celery_executor.app inspect ping \
      -d "$worker_name" --timeout 5
  fi
  trap - EXIT

  local password
  password="$("$VENV_BIN/python" -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' \
    "$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE" "${AIRFLOW_ADMIN_USERNAME:-admin}")"
  # env.sh holds the Fernet key and the passed-through AIRFLOW_CONN_* values: owner only.
  print_env | sed -E 's/^([^=]+)=(.*)$/\1\t\2/' |
    while IFS=$'\t' read -r key value; do printf 'export %s=%q\n' "$key" "$value"; done |
    write_private "$TOPOLOGY_DIR/env.sh"
  cat <<EOF

  The topology is up ($EXECUTOR, PostgreSQL $PG_PORT$([[ "$EXECUTOR" != CeleryExecutor ]] || echo ", Redis $REDIS_PORT")):
  UI and REST API:  http://127.0.0.1:$API_PORT   login ${AIRFLOW_ADMIN_USERNAME:-admin} / $password
  Outbox (emails):  $ENGAGEMENTS_OUTBOX_DIR  (SMTP 127.0.0.1:$OUTBOX_PORT)
  Store:            $ENGAGEMENTS_STORE_PATH
  Logs:             $LOG_DIR (components), $AIRFLOW_HOME/logs (tasks)
  CLI against it:   source $TOPOLOGY_DIR/env.sh; engagements status openscience
  Stop everything:  make topology-down

EOF
}

topology_env
case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  env) print_env ;;
  *)
    echo "usage: $0 up|down|status|env" >&2
    exit 2
    ;;
esac
