"""Publish and consume against the real broker: round trip, order, groups, dry run, failures."""
import json
import os
import subprocess
import sys
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from evbus_testlib import BINARY, BOOTSTRAP, BusTestCase, needs_broker, run, unittest  # noqa: E402


def order_events(aggregates, per_aggregate):
    """Full events with every envelope field fixed, so the expected value bytes are known."""
    events = []
    for v in range(1, per_aggregate + 1):
        for i, agg in enumerate(aggregates):
            if v % 2:
                payload = {"customer_id": f"CUST-{i:03d}", "total": round(10.5 * v + i, 2)}
                etype = "OrderPlaced"
            else:
                payload = {"tracking_number": f"TRK-{i}-{v}"}
                etype = "OrderShipped"
            event = {
                "event_id": str(uuid.uuid4()),
                "event_type": etype,
                "event_version": 1,
                "occurred_at": f"2025-01-15T10:30:{v % 60:02d}.{i:06d}Z" if i else "2025-01-15T10:30:00Z",
                "aggregate_id": agg,
                "aggregate_type": "Order",
                "aggregate_version": v,
                "tenant_id": None,
                "actor_id": None,
                "correlation_id": str(uuid.uuid4()),
                "causation_id": None,
                "metadata": {},
            }
            event.update(payload)
            events.append(event)
    return events


def compact(event):
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False)


@needs_broker
class PublishConsumeTest(BusTestCase):
    def test_round_trip_keeps_keys_headers_values_and_aggregate_order(self):
        aggregates = [str(uuid.uuid4()) for _ in range(12)]
        events = order_events(aggregates, 25)  # 300 events
        self.ok("topics", "create", "--partitions", "3")
        stdin = "".join(compact(e) + "\n" for e in events)
        pub = self.ok("publish", "--output", "json", stdin=stdin)
        results = pub.json_lines()
        self.assertEqual(len(results), 300)
        self.assertTrue(all(r["status"] == "delivered" for r in results), pub)
        self.assertIn("300 delivered, 0 invalid, 0 failed", pub.err)

        con = self.ok("consume", "--from", "beginning", "--exit-at-end")
        records = con.json_lines()
        self.assertEqual(len(records), 300)
        by_id = {e["event_id"]: e for e in events}
        for rec in records:
            sent = by_id[rec["event"]["event_id"]]
            self.assertEqual(rec["key"], sent["aggregate_id"])
            self.assertEqual(rec["event"], sent)
            self.assertEqual([h[0] for h in rec["headers"]],
                             ["event_id", "event_type", "aggregate_id", "aggregate_type",
                              "aggregate_version", "occurred_at", "correlation_id"])
            headers = dict(rec["headers"])
            self.assertEqual(headers["event_type"], sent["event_type"])
            self.assertEqual(headers["aggregate_version"], str(sent["aggregate_version"]))
            self.assertTrue(headers["occurred_at"].endswith("+00:00"))
            self.assertNotIn("problems", rec)
        # Per-aggregate order: versions 1..25 in sequence for every aggregate.
        seen = {}
        for rec in records:
            seen.setdefault(rec["key"], []).append(rec["event"]["aggregate_version"])
        self.assertEqual(sorted(seen), sorted(aggregates))
        for versions in seen.values():
            self.assertEqual(versions, list(range(1, 26)))

        # Raw bytes, read by an independent client (kcat): the value is exactly the compact JSON.
        raw = subprocess.run(
            ["kcat", "-b", BOOTSTRAP, "-C", "-t", f"{self.prefix}.stream", "-e", "-q",
             "-f", "%k\t%s\n"], capture_output=True, text=True, timeout=60)
        self.assertEqual(raw.returncode, 0, raw.stderr)
        raw_values = {}
        for line in raw.stdout.splitlines():
            key, value = line.split("\t", 1)
            raw_values[json.loads(value)["event_id"]] = (key, value)
        self.assertEqual(len(raw_values), 300)
        for e in events:
            self.assertEqual(raw_values[e["event_id"]], (e["aggregate_id"], compact(e)))

    def test_exit_at_end_on_empty_topic_returns_promptly(self):
        self.ok("topics", "create", "--partitions", "3")
        r = self.ok("consume", "--exit-at-end")
        self.assertEqual(r.lines(), [])
        self.assertLess(r.elapsed, 20.0, "exit-at-end on an empty topic must not hang")

    def test_exit_at_end_on_missing_topic_returns_at_once(self):
        r = self.ok("consume", "--exit-at-end")
        self.assertEqual(r.lines(), [])
        self.assertIn("does not exist yet", r.err)

    def test_second_consume_in_same_group_rereads_nothing(self):
        agg = str(uuid.uuid4())
        lines = "".join(json.dumps({"event_type": "OrderShipped", "aggregate_id": agg,
                                    "tracking_number": f"T{i}", "aggregate_version": i + 1}) + "\n"
                        for i in range(20))
        self.ok("publish", "--quiet", stdin=lines)
        first = self.ok("consume", "--exit-at-end")
        self.assertEqual(len(first.lines()), 20)
        second = self.ok("consume", "--exit-at-end")
        self.assertEqual(second.lines(), [])
        more = "".join(json.dumps({"event_type": "OrderShipped", "aggregate_id": agg,
                                   "tracking_number": f"N{i}"}) + "\n" for i in range(5))
        self.ok("publish", "--quiet", stdin=more)
        third = self.ok("consume", "--exit-at-end")
        self.assertEqual([r["event"]["tracking_number"] for r in third.json_lines()],
                         [f"N{i}" for i in range(5)])

    def test_rereading_from_beginning_never_moves_the_group_backwards(self):
        agg = str(uuid.uuid4())
        lines = "".join(json.dumps({"event_type": "OrderShipped", "aggregate_id": agg,
                                    "tracking_number": f"T{i}"}) + "\n" for i in range(6))
        self.ok("publish", "--quiet", stdin=lines)
        self.assertEqual(len(self.ok("consume", "--exit-at-end").lines()), 6)  # group at the end
        again = self.ok("consume", "--from", "beginning", "--max", "2")
        self.assertEqual(len(again.lines()), 2)
        # The shared group still sits at the end: nothing is re-delivered to a stored reader.
        self.assertEqual(self.ok("consume", "--exit-at-end").lines(), [])

    def test_a_failing_stdout_is_an_error_and_commits_nothing_unwritten(self):
        agg = str(uuid.uuid4())
        self.ok("publish", "--quiet", stdin=json.dumps({"event_type": "OrderShipped",
                                                        "aggregate_id": agg,
                                                        "tracking_number": "T"}) + "\n")
        with open("/dev/full", "w") as full:
            proc = subprocess.run([BINARY, "-c", self.config, "consume", "--exit-at-end"],
                                  stdout=full, stderr=subprocess.PIPE, text=True, timeout=60)
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn("No space left on device", proc.stderr)
        self.assertEqual(len(self.ok("consume", "--exit-at-end").lines()), 1)

    def test_max_and_type_filter(self):
        agg = str(uuid.uuid4())
        lines = []
        for i in range(10):
            lines.append({"event_type": "OrderPlaced", "aggregate_id": agg,
                          "customer_id": f"C{i}", "total": i})
            lines.append({"event_type": "OrderShipped", "aggregate_id": agg,
                          "tracking_number": f"T{i}"})
        self.ok("publish", "--quiet", stdin="".join(json.dumps(l) + "\n" for l in lines))
        shipped = self.ok("consume", "--from", "beginning", "--exit-at-end", "--type",
                          "OrderShipped", "--group", self.group + "-f")
        self.assertEqual([r["event"]["tracking_number"] for r in shipped.json_lines()],
                         [f"T{i}" for i in range(10)])
        three = self.ok("consume", "--from", "beginning", "--max", "3", "--group", self.group + "-m")
        self.assertEqual(len(three.lines()), 3)
        # number fields are floats on the wire, as pydantic writes them
        first = three.json_lines()[0]["event"]
        self.assertEqual(first["total"], 0.0)

    def test_dry_run_partitions_equal_broker_assigned(self):
        self.ok("topics", "create", "--partitions", "6")
        aggs = [str(uuid.uuid4()) for _ in range(40)]
        stdin = "".join(json.dumps({"event_type": "OrderShipped", "aggregate_id": a,
                                    "tracking_number": "T"}) + "\n" for a in aggs)
        dry = self.ok("publish", "--dry-run", "--output", "json", stdin=stdin)
        planned = {r["aggregate_id"]: r["partition"] for r in dry.json_lines()}
        self.assertEqual(len(planned), 40)
        self.assertTrue(all(r["status"] == "planned" for r in dry.json_lines()))
        # Nothing was sent by the dry run.
        self.assertEqual(self.ok("consume", "--from", "beginning", "--exit-at-end").lines(), [])
        real = self.ok("publish", "--output", "json", stdin=stdin)
        actual = {r["aggregate_id"]: r["partition"] for r in real.json_lines()}
        self.assertEqual(planned, actual)
        self.assertGreater(len(set(actual.values())), 1)

    def test_dry_run_on_a_missing_topic_predicts_the_auto_created_partitions(self):
        aggs = [str(uuid.uuid4()) for _ in range(30)]
        stdin = "".join(json.dumps({"event_type": "OrderShipped", "aggregate_id": a,
                                    "tracking_number": "T"}) + "\n" for a in aggs)
        dry = self.ok("publish", "--dry-run", "--output", "json", stdin=stdin)
        planned = {r["aggregate_id"]: r["partition"] for r in dry.json_lines()}
        real = self.ok("publish", "--output", "json", stdin=stdin)  # auto-creates the topic
        self.assertEqual(planned, {r["aggregate_id"]: r["partition"] for r in real.json_lines()})
        self.assertGreater(len(set(planned.values())), 1)

    def test_invalid_events_are_reported_and_valid_ones_still_delivered(self):
        agg = str(uuid.uuid4())
        stdin = "\n".join([
            json.dumps({"event_type": "OrderPlaced", "aggregate_id": agg, "customer_id": "A", "total": 1}),
            json.dumps({"event_type": "OrderPlaced", "aggregate_id": "not-a-uuid", "total": "x"}),
            "{not json",
            json.dumps({"event_type": "NoSuchEvent", "aggregate_id": agg}),
            json.dumps({"event_type": "OrderShipped", "aggregate_id": agg, "tracking_number": "T"}),
            '{"event_type":"OrderPlaced","aggregate_id":"%s","customer_id":"A","total":1e400}' % agg,
            '{"event_type":"OrderShipped","aggregate_id":"%s","tracking_number":"T","metadata":%s}'
            % (agg, "[" * 5000 + "]" * 5000),
        ]) + "\n"
        r = self.evbus("publish", "--output", "json", stdin=stdin)
        self.assertEqual(r.code, 3, r)
        statuses = [(x["source"], x["status"]) for x in r.json_lines()]
        self.assertIn(("stdin:1", "delivered"), statuses)
        self.assertIn(("stdin:5", "delivered"), statuses)
        bad = {x["source"]: x for x in r.json_lines() if x["status"] == "invalid"}
        self.assertEqual(sorted(bad), ["stdin:2", "stdin:3", "stdin:4", "stdin:6", "stdin:7"])
        self.assertIn("number overflow", bad["stdin:6"]["errors"][0]["message"])
        self.assertIn("nested deeper than 200 levels", bad["stdin:7"]["errors"][0]["message"])
        pointers = sorted(e["pointer"] for e in bad["stdin:2"]["errors"])
        self.assertEqual(pointers, ["/aggregate_id", "/customer_id", "/total"])
        self.assertIn("2 delivered, 5 invalid, 0 failed", r.err)
        consumed = self.ok("consume", "--from", "beginning", "--exit-at-end")
        self.assertEqual(len(consumed.lines()), 2)

    def test_single_event_from_flags(self):
        agg = str(uuid.uuid4())
        r = self.ok("publish", "--type", "OrderPlaced", "--aggregate-id", agg, "--data",
                    '{"customer_id":"C-1","total":9.5}')
        self.assertRegex(r.out, rf"delivered flags OrderPlaced {agg} -> {self.prefix}\.stream\[\d+\]@0")
        rec = self.ok("consume", "--exit-at-end").json_lines()[0]
        self.assertEqual(rec["event"]["customer_id"], "C-1")
        self.assertEqual(rec["event"]["total"], 9.5)
        self.assertEqual(rec["event"]["aggregate_type"], "Order")
        self.assertTrue(rec["event"]["occurred_at"].endswith("Z"))


@needs_broker
class UnreachableBrokerTest(BusTestCase):
    def test_publish_to_unreachable_broker_fails_fast_with_exit_1(self):
        r = run(["-c", self.config, "-b", "127.0.0.1:1", "publish", "--timeout", "3",
                 "--type", "OrderShipped", "--aggregate-id", str(uuid.uuid4()),
                 "--data", '{"tracking_number":"T"}'])
        self.assertEqual(r.code, 1, r)
        self.assertIn("no answer from the Kafka cluster", r.err)
        self.assertLess(r.elapsed, 15.0)

    def test_consume_from_unreachable_broker_fails_fast_with_exit_1(self):
        r = run(["-c", self.config, "-b", "127.0.0.1:1", "consume", "--timeout", "3"])
        self.assertEqual(r.code, 1, r)
        self.assertLess(r.elapsed, 15.0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
