#!/usr/bin/env bash
# From a fresh machine: install what is missing, build, start a local broker, publish the
# example orders and consume them back.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j2
EVBUS=build/evbus

BOOTSTRAP=()
DEV_PID=""
if command -v java >/dev/null 2>&1 || (command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1); then
  scripts/kafka-local.sh start
  BOOTSTRAP=(-b "$(scripts/kafka-local.sh bootstrap)")
else
  echo "quickstart: no Docker engine and no JDK; falling back to 'evbus dev-broker' (in memory)" >&2
  ADDR_FILE=$(mktemp)
  $EVBUS dev-broker --topic orders.stream --topic orders.stream.dlq >"$ADDR_FILE" &
  DEV_PID=$!
  trap 'kill "$DEV_PID" 2>/dev/null || true; rm -f "$ADDR_FILE"' EXIT
  for _ in $(seq 100); do [[ -s $ADDR_FILE ]] && break; sleep 0.1; done
  BOOTSTRAP=(-b "$(head -n 1 "$ADDR_FILE")")
fi

CONFIG=examples/bus.yaml
echo
echo "== evbus topics create (idempotent)"
$EVBUS topics create -c "$CONFIG" "${BOOTSTRAP[@]}" --partitions 3
echo
echo "== evbus publish --file examples/orders.jsonl"
$EVBUS publish -c "$CONFIG" "${BOOTSTRAP[@]}" --file examples/orders.jsonl
echo
echo "== evbus consume --from beginning --exit-at-end --output pretty"
$EVBUS consume -c "$CONFIG" "${BOOTSTRAP[@]}" --from beginning --exit-at-end --output pretty
echo
echo "quickstart: done. The broker keeps running; stop it with: scripts/kafka-local.sh stop"
