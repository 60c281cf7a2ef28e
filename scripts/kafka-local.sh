#!/usr/bin/env bash
# Single-node Apache Kafka 4.x (KRaft) for development and tests.
#
#   scripts/kafka-local.sh start|stop|status|logs|bootstrap
#
# Uses docker-compose.kafka.yml when a Docker engine answers; otherwise fetches the official broker
# jars with Maven into a cache folder and runs them on the local JDK.
#
# Settings (environment):
#   EVBUS_KAFKA_PORT        PLAINTEXT port            (default 9092; controller uses PORT+1)
#   EVBUS_KAFKA_DATA        data + pid + log folder   (default ~/.cache/evbus/kafka-data-$PORT)
#   EVBUS_KAFKA_PARTITIONS  num.partitions            (default 3)
#   EVBUS_KAFKA_VERSION     org.apache.kafka version  (default 4.1.1)
#   EVBUS_KAFKA_CACHE       jar cache folder          (default ~/.cache/evbus/kafka-$VERSION)
#   EVBUS_KAFKA_START_TIMEOUT  seconds to wait for metadata (default 90)
set -euo pipefail

PORT=${EVBUS_KAFKA_PORT:-9092}
CONTROLLER_PORT=$((PORT + 1))
VERSION=${EVBUS_KAFKA_VERSION:-4.1.1}
CACHE=${EVBUS_KAFKA_CACHE:-$HOME/.cache/evbus/kafka-$VERSION}
DATA=${EVBUS_KAFKA_DATA:-$HOME/.cache/evbus/kafka-data-$PORT}
PARTITIONS=${EVBUS_KAFKA_PARTITIONS:-3}
START_TIMEOUT=${EVBUS_KAFKA_START_TIMEOUT:-90}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PIDFILE="$DATA/broker.pid"
LOGFILE="$DATA/broker.log"

log() { printf 'kafka-local: %s\n' "$*" >&2; }

docker_engine() { command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; }

# A metadata request that answers is the only readiness signal we trust.
broker_answers() {
  if command -v kcat >/dev/null 2>&1; then
    timeout 5 kcat -b "localhost:$PORT" -L -m 3 >/dev/null 2>&1
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null
  fi
}

running_pid() {
  [[ -f $PIDFILE ]] || return 1
  local pid
  pid=$(<"$PIDFILE")
  kill -0 "$pid" 2>/dev/null || return 1
  echo "$pid"
}

fetch_jars() {
  if [[ -f $CACHE/lib/.complete ]]; then return 0; fi
  command -v mvn >/dev/null || { log "mvn not found; install Maven"; exit 1; }
  log "fetching Apache Kafka $VERSION jars with Maven into $CACHE/lib (first run only)"
  mkdir -p "$CACHE"
  cat >"$CACHE/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>evbus.local</groupId>
  <artifactId>kafka-broker-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$VERSION</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>$VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>2.24.3</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>2.24.3</version></dependency>
  </dependencies>
</project>
EOF
  (cd "$CACHE" && mvn -q -B -Dstyle.color=never dependency:copy-dependencies -DincludeScope=runtime \
    -DoutputDirectory="$CACHE/lib") >&2
  touch "$CACHE/lib/.complete"
}

write_config() {
  mkdir -p "$DATA/logs"
  cat >"$DATA/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@localhost:$CONTROLLER_PORT
listeners=PLAINTEXT://localhost:$PORT,CONTROLLER://localhost:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://localhost:$PORT
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$DATA/logs
num.partitions=$PARTITIONS
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
delete.topic.enable=true
EOF
  cat >"$DATA/log4j2.properties" <<EOF
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = $LOGFILE
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.request.name = kafka.request.logger
logger.request.level = WARN
EOF
}

wait_ready() {
  local deadline=$((SECONDS + START_TIMEOUT))
  while ((SECONDS < deadline)); do
    if broker_answers; then return 0; fi
    if [[ -n ${1:-} ]] && ! kill -0 "$1" 2>/dev/null; then
      log "broker process exited during start-up; log tail:"
      tail -n 40 "$LOGFILE" >&2 || true
      return 1
    fi
    sleep 0.5
  done
  log "broker did not answer metadata requests within ${START_TIMEOUT}s; log tail:"
  tail -n 40 "$LOGFILE" >&2 || true
  return 1
}

start_jvm() {
  if pid=$(running_pid); then
    wait_ready "$pid"
    log "already running (pid $pid) on localhost:$PORT"
    return 0
  fi
  if broker_answers; then
    log "something else already answers on localhost:$PORT; using it"
    return 0
  fi
  command -v java >/dev/null || { log "java not found; install a JDK 17+"; exit 1; }
  fetch_jars
  write_config
  local cp="$CACHE/lib/*"
  if [[ ! -f $DATA/logs/meta.properties ]]; then
    local cluster_id
    cluster_id=$(java -cp "$cp" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1)
    java -Dlog4j2.configurationFile="$DATA/log4j2.properties" -cp "$cp" kafka.tools.StorageTool format \
      -t "$cluster_id" -c "$DATA/server.properties" >/dev/null
  fi
  log "starting Apache Kafka $VERSION (KRaft) on localhost:$PORT, data in $DATA"
  nohup java -Xms256m -Xmx1g -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$DATA/log4j2.properties" -Dkafka.logs.dir="$DATA" \
    -cp "$cp" kafka.Kafka "$DATA/server.properties" >>"$LOGFILE.stdout" 2>&1 &
  echo $! >"$PIDFILE"
  wait_ready "$!" || { stop_jvm; exit 1; }
  log "ready on localhost:$PORT"
}

stop_jvm() {
  local pid
  if ! pid=$(running_pid); then
    rm -f "$PIDFILE"
    log "not running"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + 30))
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then
    log "broker did not stop within 30s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$PIDFILE"
  log "stopped"
}

compose() { docker compose -f "$ROOT/docker-compose.kafka.yml" "$@"; }

cmd=${1:-status}
case $cmd in
start)
  if [[ ${EVBUS_KAFKA_MODE:-auto} != jvm ]] && docker_engine; then
    compose up -d
    wait_ready
  else
    start_jvm
  fi
  ;;
stop)
  if [[ ${EVBUS_KAFKA_MODE:-auto} != jvm ]] && docker_engine; then compose down -v; else stop_jvm; fi
  ;;
status)
  if broker_answers; then
    echo "running: localhost:$PORT${PIDFILE:+ (pid $(cat "$PIDFILE" 2>/dev/null || echo external))}"
  else
    echo "stopped"
    exit 1
  fi
  ;;
logs)
  if docker_engine && [[ ${EVBUS_KAFKA_MODE:-auto} != jvm ]]; then compose logs --tail=200; else tail -n "${2:-200}" "$LOGFILE"; fi
  ;;
bootstrap) echo "localhost:$PORT" ;;
*)
  echo "usage: $0 start|stop|status|logs [lines]|bootstrap" >&2
  exit 2
  ;;
esac
