#!/usr/bin/env bash
# Publish throughput: evbus (validating, building eventsource-py envelopes) against kcat producing
# the same key/value bytes with the same producer settings, measured in the same run.
#   scripts/bench-publish.sh [events=200000] [runs=3]
# Needs a broker (scripts/kafka-local.sh start) and a built evbus (build/evbus).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
N=${1:-200000}
RUNS=${2:-3}
EVBUS=${EVBUS:-build/evbus}
BOOTSTRAP=${EVBUS_BOOTSTRAP:-$(scripts/kafka-local.sh bootstrap)}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

python3 - "$N" "$WORK" <<'PY'
import json, sys, uuid
n, work = int(sys.argv[1]), sys.argv[2]
aggs = [str(uuid.uuid4()) for _ in range(1000)]
with open(f"{work}/events.jsonl", "w") as f:
    for i in range(n):
        f.write(json.dumps({"event_type": "OrderPlaced", "aggregate_id": aggs[i % 1000],
                            "customer_id": f"CUST-{i:07d}", "total": i * 0.25}) + "\n")
PY

cat >"$WORK/bus.yaml" <<YAML
bootstrap_servers: $BOOTSTRAP
schemas: [$ROOT/examples/schemas/orders.yaml]
YAML
# kcat gets records of the same shape and size (the full eventsource-py envelope), pre-rendered:
# it neither validates nor builds envelopes, so this is the ceiling for a librdkafka producer.
python3 - "$WORK" <<'PY'
import datetime, json, sys, uuid
work = sys.argv[1]
with open(f"{work}/events.jsonl") as src, open(f"{work}/kv.txt", "w") as out:
    for line in src:
        e = json.loads(line)
        body = {"event_id": str(uuid.uuid4()), "event_type": e["event_type"], "event_version": 1,
                "occurred_at": datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z"),
                "aggregate_id": e["aggregate_id"], "aggregate_type": "Order", "aggregate_version": 1,
                "tenant_id": None, "actor_id": None, "correlation_id": str(uuid.uuid4()),
                "causation_id": None, "metadata": {}, "customer_id": e["customer_id"],
                "total": float(e["total"])}
        out.write(e["aggregate_id"] + "\t" + json.dumps(body, separators=(",", ":")) + "\n")
PY

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
seconds() { local s e; s=$(date +%s.%N); "$@" >/dev/null 2>&1; e=$(date +%s.%N); echo "$e - $s" | bc; }

evbus_times=() kcat_times=()
for r in $(seq "$RUNS"); do
  evbus_times+=("$(seconds "$EVBUS" -c "$WORK/bus.yaml" --topic-prefix "bench-e$r-$$" publish --background --file "$WORK/events.jsonl")")
  kcat_times+=("$(seconds kcat -b "$BOOTSTRAP" -P -t "bench-k$r-$$.stream" -K $'\t' -l \
    -X topic.partitioner=murmur2_random -X acks=all -X enable.idempotence=true \
    -X compression.codec=gzip -X linger.ms=5 -X batch.size=16384 "$WORK/kv.txt")")
done
E=$(printf '%s\n' "${evbus_times[@]}" | median)
K=$(printf '%s\n' "${kcat_times[@]}" | median)
printf 'events=%s runs=%s\n' "$N" "$RUNS"
printf 'evbus publish: median %.2f s  (%.0f events/s)  runs: %s\n' "$E" "$(echo "$N / $E" | bc -l)" "${evbus_times[*]}"
printf 'kcat -P:       median %.2f s  (%.0f events/s)  runs: %s\n' "$K" "$(echo "$N / $K" | bc -l)" "${kcat_times[*]}"
printf 'ratio evbus/kcat throughput: %.2f\n' "$(echo "$K / $E" | bc -l)"
