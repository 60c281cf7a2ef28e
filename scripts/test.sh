#!/usr/bin/env bash
# Installs what is missing, builds, starts a fresh local Kafka broker, runs every test through
# CTest, and stops the broker. Usage: scripts/test.sh [extra ctest args, e.g. -L unit]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

scripts/install-deps.sh
BUILD=${EVBUS_BUILD_DIR:-$ROOT/build}
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=${EVBUS_BUILD_TYPE:-RelWithDebInfo} >/dev/null
cmake --build "$BUILD" -j2

# The real eventsource-py for the interop tests, in a venv of its own (pinned versions).
EVBUS_INTEROP_PYTHON=$(scripts/interop-venv.sh)
export EVBUS_INTEROP_PYTHON

# A dedicated broker with fresh storage on its own port, so tests never see a developer's data.
export EVBUS_KAFKA_PORT=${EVBUS_TEST_KAFKA_PORT:-19092}
EVBUS_KAFKA_DATA=$(mktemp -d "${TMPDIR:-/tmp}/evbus-test-kafka.XXXXXX")
export EVBUS_KAFKA_DATA
export EVBUS_KAFKA_MODE=jvm
cleanup() {
  scripts/kafka-local.sh stop || true
  rm -rf "$EVBUS_KAFKA_DATA"
}
trap cleanup EXIT
scripts/kafka-local.sh start
export EVBUS_TEST_BOOTSTRAP="localhost:$EVBUS_KAFKA_PORT"

ctest --test-dir "$BUILD" --output-on-failure --timeout 600 "$@"
