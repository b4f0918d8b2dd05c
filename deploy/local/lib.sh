# Shared helpers for the local stack scripts. Sourced, never executed.
#
# Everything listens on 127.0.0.1 only. Every location and port can be
# overridden from the environment; the defaults avoid the well-known ports so
# the stack never collides with a Redis, Kafka or DynamoDB Local the user
# already runs.

set -euo pipefail

LOCAL_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$LOCAL_DIR/../.." && pwd)"

# Runtime state (data, logs, pid files) of this checkout's stack.
: "${CUTOVER_STACK_DIR:=$REPO_DIR/.stack}"
# Downloaded artifacts kept between runs and checkouts (Maven keeps jars in ~/.m2).
: "${CUTOVER_CACHE_DIR:=${XDG_CACHE_HOME:-$HOME/.cache}/cutover}"

: "${CUTOVER_REDIS_PORT:=16379}"
: "${CUTOVER_KAFKA_PORT:=19092}"
: "${CUTOVER_KAFKA_CONTROLLER_PORT:=19093}"
# A second Kafka listener with TLS and SASL (SCRAM-SHA-256/512, PLAIN), for
# the tests of authenticated connections.
: "${CUTOVER_KAFKA_SASL_PORT:=19094}"
: "${CUTOVER_DYNAMODB_PORT:=18000}"
: "${CUTOVER_KAFKA_VERSION:=4.3.1}"
: "${CUTOVER_DYNAMODB_LOCAL_VERSION:=3.3.1}"
# Heap for Kafka's JVM; small enough for a CI machine running the stack.
: "${CUTOVER_JVM_HEAP:=768m}"
# DynamoDB Local's in-memory database keeps growing over a test run (about
# 1 GB of heap after a full one); 2g leaves it room.
: "${CUTOVER_DYNAMODB_HEAP:=2g}"

export CUTOVER_STACK_DIR CUTOVER_CACHE_DIR CUTOVER_REDIS_PORT CUTOVER_KAFKA_PORT \
  CUTOVER_KAFKA_CONTROLLER_PORT CUTOVER_KAFKA_SASL_PORT CUTOVER_DYNAMODB_PORT

# The Kafka TLS listener's CA and certificate: shared by every checkout on
# the machine, like the ports (see kafka_tls).
KAFKA_TLS_DIR="$CUTOVER_CACHE_DIR/kafka-tls"

LOG_DIR="$CUTOVER_STACK_DIR/logs"
PID_DIR="$CUTOVER_STACK_DIR/pids"
mkdir -p "$LOG_DIR" "$PID_DIR" "$CUTOVER_CACHE_DIR"

say() { printf '[stack] %s\n' "$*" >&2; }
die() { printf '[stack] error: %s\n' "$*" >&2; exit 1; }

# as_root runs a command as root, through sudo when we are not root.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_updated=""
# apt_install installs Debian packages that are missing.
apt_install() {
  command -v apt-get >/dev/null || die "apt-get not found: install $* by hand"
  if [ -z "$apt_updated" ]; then
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    apt_updated=1
  fi
  say "installing $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# need_java makes sure a JDK >= 17 (Kafka 4 and DynamoDB Local 3 need it) and Maven exist.
need_java() {
  if ! command -v java >/dev/null; then apt_install openjdk-17-jre-headless; fi
  local major
  major=$(java -XshowSettings:properties -version 2>&1 | awk -F'= ' '/java.specification.version/ {print $2}')
  [ "${major%%.*}" -ge 17 ] || die "java $major found; Kafka 4 and DynamoDB Local 3 need Java 17 or newer (set PATH or JAVA_HOME)"
  if ! command -v mvn >/dev/null; then apt_install maven; fi
}

# port_open reports whether something accepts TCP connections on 127.0.0.1:$1.
port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

pid_alive() {
  local f="$PID_DIR/$1.pid"
  [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null
}

# wait_for NAME SECONDS CHECK... runs CHECK until it succeeds or time runs out.
wait_for() {
  local name=$1 secs=$2; shift 2
  local deadline=$((SECONDS + secs))
  until "$@"; do
    if [ $SECONDS -ge $deadline ]; then
      die "$name did not answer within ${secs}s; see $LOG_DIR/$name.log"
    fi
    if [ -f "$PID_DIR/$name.pid" ] && ! pid_alive "$name"; then
      tail -n 20 "$LOG_DIR/$name.log" >&2 || true
      die "$name exited during start; see $LOG_DIR/$name.log"
    fi
    sleep 0.3
  done
}

# resolve_classpath NAME POM writes the runtime classpath of POM's dependencies
# to $CUTOVER_CACHE_DIR/NAME.classpath (jars stay in ~/.m2) and copies native
# libraries (type "so") to $CUTOVER_CACHE_DIR/NAME-native. It reuses a
# previous result while every jar it names still exists.
resolve_classpath() {
  local name=$1 pom=$2; shift 2
  local cp="$CUTOVER_CACHE_DIR/$name.classpath"
  if [ -f "$cp" ] && [ "$(cat "$cp.pom" 2>/dev/null)" = "$(cat "$pom") $*" ]; then
    local ok=1 jar
    IFS=: read -ra jars <"$cp" || true # no trailing newline: read reports EOF
    for jar in "${jars[@]}"; do [ -f "$jar" ] || { ok=""; break; }; done
    [ -n "$ok" ] && return 0
  fi
  say "resolving $name from Maven Central (first run only; jars are cached in ~/.m2)"
  local log="$LOG_DIR/$name-maven.log"
  mvn -B -q -f "$pom" "$@" dependency:build-classpath -Dmdep.outputFile="$cp.tmp" -Dmdep.includeTypes=jar >"$log" 2>&1 ||
    { tail -n 30 "$log" >&2; die "maven could not resolve $name; see $log"; }
  mvn -B -q -f "$pom" "$@" dependency:copy-dependencies -DincludeTypes=so -Dmdep.stripVersion=true \
    -DoutputDirectory="$CUTOVER_CACHE_DIR/$name-native" >>"$log" 2>&1 ||
    { tail -n 30 "$log" >&2; die "maven could not copy native libraries of $name; see $log"; }
  mv "$cp.tmp" "$cp"
  printf '%s %s' "$(cat "$pom")" "$*" >"$cp.pom"
}

# start_daemon NAME CMD... starts CMD in the background with its output in
# $LOG_DIR/NAME.log and its pid in $PID_DIR/NAME.pid.
start_daemon() {
  local name=$1; shift
  nohup "$@" >"$LOG_DIR/$name.log" 2>&1 </dev/null &
  echo $! >"$PID_DIR/$name.pid"
}

# stop_daemon NAME stops what start_daemon started, and nothing else.
stop_daemon() {
  local name=$1 f="$PID_DIR/$1.pid"
  if ! [ -f "$f" ]; then say "$name: not started by this stack"; return 0; fi
  local pid; pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    local deadline=$((SECONDS + 30))
    while kill -0 "$pid" 2>/dev/null; do
      if [ $SECONDS -ge $deadline ]; then kill -9 "$pid" 2>/dev/null || true; break; fi
      sleep 0.2
    done
    say "$name: stopped (pid $pid)"
  else
    say "$name: was not running"
  fi
  rm -f "$f"
}
