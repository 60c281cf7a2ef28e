"""consume --exec against the real broker: handlers, retries (contract §4.1, §4.2), the DLQ
(§4.3), commits (§5) and the eventsource-py bugs evbus must not copy (§10)."""
import datetime
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from evbus_testlib import (BINARY, BOOTSTRAP, BusTestCase, needs_broker, unittest,  # noqa: E402
                           wait_until, write_bus_config)

ORIGINAL_HEADERS = ["event_id", "event_type", "aggregate_id", "aggregate_type",
                    "aggregate_version", "occurred_at", "correlation_id"]
DLQ_HEADERS = ["dlq_reason", "dlq_error_type", "dlq_error_message", "dlq_retry_count",
               "dlq_timestamp", "dlq_original_topic", "dlq_original_partition",
               "dlq_original_offset", "dlq_consumer_group"]

# Appends "<event_id> <retry_count> <partition> <offset> <epoch seconds>" per attempt.
LOG_ATTEMPT = 'echo "$EVBUS_EVENT_ID $EVBUS_RETRY_COUNT $EVBUS_PARTITION $EVBUS_OFFSET $(date +%s.%N)" >> "$ATTEMPTS"'


def read_topic(topic):
    """Every record of a topic via kcat (an independent client): [] when it does not exist."""
    r = subprocess.run(["kcat", "-b", BOOTSTRAP, "-C", "-t", topic, "-e", "-J", "-q"],
                       capture_output=True, timeout=60)
    if r.returncode != 0:
        if b"Unknown topic" in r.stderr:
            return []
        raise AssertionError(r.stderr.decode(errors="replace"))
    records = []
    for line in r.stdout.decode("utf-8", errors="replace").splitlines():
        if line.strip():
            rec = json.loads(line)
            flat = rec.get("headers") or []
            rec["headers"] = list(zip(flat[0::2], flat[1::2]))
            records.append(rec)
    return sorted(records, key=lambda x: (x["partition"], x["offset"]))


def produce_raw(topic, value, headers, key=None, partition=None):
    """One record with exactly these headers (list of (name, str|bytes)) via kcat."""
    args = ["kcat", "-b", BOOTSTRAP, "-P", "-t", topic]
    if key is not None:
        args += ["-k", key]
    if partition is not None:
        args += ["-p", str(partition)]
    for name, val in headers:
        args += ["-H", (name + "=").encode() + (val if isinstance(val, bytes) else val.encode())]
    data = value if isinstance(value, bytes) else value.encode()
    r = subprocess.run(args, input=data + b"\n", capture_output=True, timeout=60)
    if r.returncode != 0:
        raise AssertionError(r.stderr.decode(errors="replace"))


def stats_of(result_err):
    m = re.search(r"^evbus: stats (\{.*\})$", result_err, re.M)
    if not m:
        raise AssertionError("no stats line in:\n" + result_err[-3000:])
    return json.loads(m.group(1))


def order_placed(agg=None, customer="C-1", total=12.5):
    return {"event_type": "OrderPlaced", "aggregate_id": agg or str(uuid.uuid4()),
            "customer_id": customer, "total": total}


class HandlerTestCase(BusTestCase):
    """A bus config with fast retries, an attempts log and handler scripts."""

    retry_config = ("max_retries: 3\nretry_base_delay: 0.1\nretry_max_delay: 0.5\n"
                    "retry_jitter: 0.1\n")

    def setUp(self):
        super().setUp()
        self.config = write_bus_config(self.tmp.name, self.prefix, self.group, self.retry_config)
        self.attempts = os.path.join(self.tmp.name, "attempts")
        self.env = {"ATTEMPTS": self.attempts}

    def script(self, name, body):
        path = os.path.join(self.tmp.name, name)
        with open(path, "w") as f:
            f.write("#!/bin/sh\n" + body + "\n")
        os.chmod(path, 0o755)
        return path

    def attempt_lines(self):
        if not os.path.exists(self.attempts):
            return []
        with open(self.attempts) as f:
            return [line.split() for line in f if line.strip()]

    def publish(self, *events):
        r = self.ok("publish", "--output", "json",
                    stdin="".join(json.dumps(e) + "\n" for e in events))
        return r.json_lines()

    def consume_exec(self, handler, *extra, code=0):
        r = self.evbus("-v", "consume", "--exec", handler, "--exit-at-end", "--stats-json", "-",
                       *extra, env=self.env)
        self.assertEqual(r.code, code, r)
        return r

    def start_consumer(self, handler, *extra, env_extra=None):
        """A consumer running in the background; stderr goes to a file."""
        err_path = os.path.join(self.tmp.name, f"consumer-{uuid.uuid4().hex[:6]}.err")
        env = dict(os.environ, **self.env, **(env_extra or {}))
        env.pop("EVBUS_CONFIG", None)
        err = open(err_path, "w")
        self.addCleanup(err.close)
        proc = subprocess.Popen([BINARY, "-c", self.config, "-v", "consume", "--exec", handler,
                                 "--stats-json", "-", *extra],
                                stdout=subprocess.DEVNULL, stderr=err, env=env)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        return proc, err_path

    @property
    def topic(self):
        return f"{self.prefix}.stream"

    @property
    def dlq(self):
        return f"{self.prefix}.stream.dlq"


@needs_broker
class RetryAndDeadLetterTest(HandlerTestCase):
    retry_config = ("max_retries: 4\nretry_base_delay: 0.1\nretry_max_delay: 0.5\n"
                    "retry_jitter: 0\n")

    def test_always_failing_handler_gets_max_retries_plus_one_attempts_then_one_exact_dlq_record(self):
        handler = self.script("fail.sh", LOG_ATTEMPT + '\ncat >/dev/null\n'
                              'echo "card declined for $EVBUS_EVENT_ID" >&2\nexit 1')
        sent = self.publish(order_placed())[0]
        started = datetime.datetime.now(datetime.timezone.utc)
        r = self.consume_exec(handler)

        # Exactly max_retries + 1 attempts, with retry_count 0..4, counted by the handler.
        attempts = self.attempt_lines()
        self.assertEqual([a[1] for a in attempts], ["0", "1", "2", "3", "4"])
        self.assertTrue(all(a[0] == sent["event_id"] for a in attempts))

        main = read_topic(self.topic)
        self.assertEqual(len(main), 5)
        original, copies = main[0], main[1:]
        self.assertEqual([h[0] for h in original["headers"]], ORIGINAL_HEADERS)
        # Retry copies (§4.2): same key and value, original headers in order, then the two.
        expected_delays = [0.1, 0.2, 0.4, 0.5]  # min(0.1 * 2**n, 0.5), no jitter
        for n, (copy, delay) in enumerate(zip(copies, expected_delays), start=1):
            self.assertEqual(copy["key"], original["key"])
            self.assertEqual(copy["payload"], original["payload"])
            self.assertEqual(copy["partition"], original["partition"])
            self.assertEqual(copy["headers"][:7], original["headers"])
            self.assertEqual([h[0] for h in copy["headers"][7:]], ["retry_count", "retry_after"])
            self.assertEqual(copy["headers"][7][1], str(n))
            retry_after = copy["headers"][8][1]
            self.assertRegex(retry_after, r"^\d{10}\.\d+$")  # Python str(float) of epoch seconds
            # The delay is retry_after minus the moment the copy was written (its CreateTime).
            self.assertAlmostEqual(float(retry_after) - copy["ts"] / 1000.0, delay, delta=0.03)
            # The attempt that consumed this copy ran at or after its retry_after.
            self.assertEqual(int(attempts[n][3]), copy["offset"])
            self.assertGreaterEqual(float(attempts[n][4]), float(retry_after) - 0.002)

        dlq = read_topic(self.dlq)
        self.assertEqual(len(dlq), 1)
        d = dlq[0]
        last = copies[-1]
        self.assertEqual(d["key"], original["key"])
        self.assertEqual(d["payload"], original["payload"])
        # All headers of the last attempt's record, in order, then exactly the 9 dlq_* headers.
        self.assertEqual(d["headers"][:9], last["headers"])
        self.assertEqual([h[0] for h in d["headers"][9:]], DLQ_HEADERS)
        got = dict(d["headers"][9:])
        self.assertEqual(got["dlq_reason"], "max_retries_exceeded")
        self.assertEqual(got["dlq_error_type"], "HandlerError")
        self.assertEqual(got["dlq_error_message"], f"card declined for {sent['event_id']}")
        self.assertEqual(got["dlq_retry_count"], "4")
        self.assertEqual(got["dlq_original_topic"], self.topic)
        self.assertEqual(got["dlq_original_partition"], str(last["partition"]))
        self.assertEqual(got["dlq_original_offset"], str(last["offset"]))
        self.assertEqual(got["dlq_consumer_group"], self.group)
        self.assertRegex(got["dlq_timestamp"],
                         r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?\+00:00$")
        written = datetime.datetime.fromisoformat(got["dlq_timestamp"])
        self.assertGreaterEqual(written, started)
        self.assertLess(written - started, datetime.timedelta(seconds=60))

        stats = stats_of(r.err)
        self.assertEqual(len(stats), 12)
        self.assertEqual((stats["events_consumed"], stats["events_processed_failed"],
                          stats["handler_errors"], stats["messages_sent_to_dlq"],
                          stats["events_processed_success"], stats["events_published"]),
                         (5, 5, 5, 1, 0, 0))
        self.assertTrue(stats["last_error_at"].endswith("+00:00"))
        self.assertIn("1 to DLQ", r.err)
        # Everything was committed: a second run in the group handles nothing.
        again = self.consume_exec(handler)
        self.assertEqual(len(self.attempt_lines()), 5)
        self.assertEqual(stats_of(again.err)["events_consumed"], 0)

    def test_handler_timeout_is_dead_lettered_as_HandlerTimeout(self):
        self.config = write_bus_config(self.tmp.name, self.prefix, self.group,
                                       "max_retries: 0\n")
        handler = self.script("slow.sh", LOG_ATTEMPT + '\necho "still working" >&2\nsleep 30')
        self.publish(order_placed())
        start = time.monotonic()
        self.consume_exec(handler, "--handler-timeout", "0.5")
        self.assertLess(time.monotonic() - start, 25)
        self.assertEqual(len(self.attempt_lines()), 1)
        dlq = read_topic(self.dlq)
        self.assertEqual(len(dlq), 1)
        got = dict(dlq[0]["headers"][7:])
        self.assertEqual(got["dlq_error_type"], "HandlerTimeout")
        self.assertEqual(got["dlq_retry_count"], "0")
        self.assertIn("timed out", got["dlq_error_message"])
        self.assertIn("still working", got["dlq_error_message"])


@needs_broker
class RetryThenSuccessTest(HandlerTestCase):
    def test_fails_twice_then_succeeds_no_dlq_and_stats_agree(self):
        handler = self.script("flaky.sh", LOG_ATTEMPT + '\n'
                              'n=$(grep -c "^$EVBUS_EVENT_ID " "$ATTEMPTS")\n'
                              '[ "$n" -gt 2 ] || { echo "attempt $n failed" >&2; exit 2; }')
        sent = self.publish(*[order_placed(customer=f"C-{i}") for i in range(3)])
        r = self.consume_exec(handler)
        attempts = self.attempt_lines()
        self.assertEqual(len(attempts), 9)
        for s in sent:
            self.assertEqual([a[1] for a in attempts if a[0] == s["event_id"]], ["0", "1", "2"])
        self.assertEqual(read_topic(self.dlq), [])
        stats = stats_of(r.err)
        self.assertEqual((stats["events_consumed"], stats["events_processed_success"],
                          stats["events_processed_failed"], stats["handler_errors"],
                          stats["messages_sent_to_dlq"]), (9, 3, 6, 6, 0))
        # Jitter 0.1: each recorded delay is within ±10% of min(0.1 * 2**n, 0.5).
        copies = [rec for rec in read_topic(self.topic) if len(rec["headers"]) == 9]
        self.assertEqual(len(copies), 6)
        for copy in copies:
            n = int(dict(copy["headers"])["retry_count"]) - 1
            base = min(0.1 * 2 ** n, 0.5)
            delay = float(dict(copy["headers"])["retry_after"]) - copy["ts"] / 1000.0
            self.assertGreaterEqual(delay, base * 0.9 - 0.01)
            self.assertLessEqual(delay, base * 1.1 + 0.002)

    def test_replayed_record_keeps_its_replay_count_and_is_handled_once_fixed(self):
        """A record as `dlq replay` writes it (§4.6) is consumed like any other; its retry copy
        keeps dlq_replay_count and drops the stale retry_after (§4.2)."""
        self.ok("topics", "create", "--partitions", "3")
        plan = self.ok("publish", "--dry-run", "--output", "json",
                       stdin=json.dumps(order_placed()) + "\n").json_lines()[0]
        agg, partition = plan["aggregate_id"], plan["partition"]
        event_id = str(uuid.uuid4())
        body = json.dumps({"event_id": event_id, "event_type": "OrderPlaced", "event_version": 1,
                           "occurred_at": "2025-01-15T10:30:00Z", "aggregate_id": agg,
                           "aggregate_type": "Order", "aggregate_version": 1,
                           "tenant_id": None, "actor_id": None,
                           "correlation_id": str(uuid.uuid4()), "causation_id": None,
                           "metadata": {}, "customer_id": "C-9", "total": 9.5},
                          separators=(",", ":"))
        headers = [("event_id", event_id), ("event_type", "OrderPlaced"), ("aggregate_id", agg),
                   ("aggregate_type", "Order"), ("aggregate_version", "1"),
                   ("occurred_at", "2025-01-15T10:30:00+00:00"),
                   ("correlation_id", str(uuid.uuid4())),
                   ("retry_after", "1700000000.5"),  # long past: no wait
                   ("retry_count", "0"), ("dlq_replay_count", "1")]
        produce_raw(self.topic, body, headers, key=agg, partition=partition)
        # Fails once (the fix is not deployed yet), then succeeds.
        handler = self.script("fixed.sh", LOG_ATTEMPT + '\n'
                              'env | grep ^EVBUS_ | sort > "$ATTEMPTS.env.$EVBUS_RETRY_COUNT"\n'
                              'cat > "$ATTEMPTS.stdin.$EVBUS_RETRY_COUNT"\n'
                              '[ "$EVBUS_RETRY_COUNT" -ge 1 ] || { echo "not yet" >&2; exit 1; }')
        r = self.consume_exec(handler)
        self.assertEqual([a[1] for a in self.attempt_lines()], ["0", "1"])
        with open(self.attempts + ".stdin.1", "rb") as f:
            self.assertEqual(f.read(), body.encode())  # the value bytes, unchanged
        with open(self.attempts + ".env.0") as f:
            env = dict(line.rstrip("\n").split("=", 1) for line in f)
        names = ["EVBUS_EVENT_TYPE", "EVBUS_EVENT_ID", "EVBUS_AGGREGATE_ID",
                 "EVBUS_AGGREGATE_VERSION", "EVBUS_TOPIC", "EVBUS_PARTITION", "EVBUS_OFFSET",
                 "EVBUS_RETRY_COUNT"]
        self.assertEqual({k: env.get(k) for k in names}, {"EVBUS_EVENT_TYPE": "OrderPlaced", "EVBUS_EVENT_ID": event_id,
                               "EVBUS_AGGREGATE_ID": agg, "EVBUS_AGGREGATE_VERSION": "1",
                               "EVBUS_TOPIC": self.topic, "EVBUS_PARTITION": str(partition),
                               "EVBUS_OFFSET": "0", "EVBUS_RETRY_COUNT": "0"})
        copy = read_topic(self.topic)[1]
        self.assertEqual([h[0] for h in copy["headers"]],
                         ORIGINAL_HEADERS + ["dlq_replay_count", "retry_count", "retry_after"])
        self.assertEqual(copy["headers"][:7], headers[:7])
        self.assertEqual(copy["headers"][7:9], [("dlq_replay_count", "1"), ("retry_count", "1")])
        self.assertEqual(read_topic(self.dlq), [])
        stats = stats_of(r.err)
        self.assertEqual((stats["events_processed_success"], stats["events_processed_failed"]),
                         (1, 1))


@needs_broker
class PartitionIndependenceTest(HandlerTestCase):
    retry_config = ("max_retries: 1\nretry_base_delay: 3\nretry_max_delay: 3\n"
                    "retry_jitter: 0\n")

    def aggregates_on(self, partitions):
        """An aggregate id per wanted partition, planned with the real partitioner."""
        candidates = [order_placed() for _ in range(40)]
        plans = self.ok("publish", "--dry-run", "--output", "json",
                        stdin="".join(json.dumps(c) + "\n" for c in candidates)).json_lines()
        by_partition = {}
        for p in plans:
            by_partition.setdefault(p["partition"], p["aggregate_id"])
        return [by_partition[p] for p in partitions]

    def test_retry_wait_pauses_only_its_own_partition(self):
        self.ok("topics", "create", "--partitions", "2")
        agg_a, agg_b = self.aggregates_on([0, 1])
        # Logs "<aggregate>:<customer_id> ..."; the first attempt of customer A fails.
        handler = self.script("first-a-fails.sh", r"""
name=$(cat | sed 's/.*"customer_id":"\([^"]*\)".*/\1/')
echo "$EVBUS_AGGREGATE_ID:$name $EVBUS_RETRY_COUNT $EVBUS_PARTITION $EVBUS_OFFSET $(date +%s.%N)" >> "$ATTEMPTS"
if [ "$name" = A ] && [ "$EVBUS_RETRY_COUNT" = 0 ]; then echo "A fails once" >&2; exit 1; fi
exit 0""")
        proc, err_path = self.start_consumer(handler)
        self.publish(order_placed(agg_a, customer="A"))

        def read_err():
            with open(err_path) as f:
                return f.read()
        # A failed, and its copy went to the tail of partition 0 with a retry_after 3 s ahead.
        wait_until(lambda: any(len(r["headers"]) == 9 for r in read_topic(self.topic)),
                   timeout=60, what="A's retry copy")
        # Now B on partition 1, and C behind the waiting copy on partition 0.
        self.publish(order_placed(agg_b, customer="B"), order_placed(agg_a, customer="C"))
        wait_until(lambda: any(a[0].endswith(":B") for a in self.attempt_lines()), timeout=30,
                   what="B handled")
        names = [a[0].split(":")[1] for a in self.attempt_lines()]
        self.assertEqual(names, ["A", "B"], "B must not wait behind A's retry on partition 0")
        copy = [r for r in read_topic(self.topic) if len(r["headers"]) == 9][0]
        retry_after = float(dict(copy["headers"])["retry_after"])
        b_time = float([a for a in self.attempt_lines() if a[0].endswith(":B")][0][4])
        self.assertLess(b_time, retry_after, "B was handled while A's retry was still waiting")

        wait_until(lambda: len(self.attempt_lines()) == 4, timeout=30, what="A retried and C")
        lines = self.attempt_lines()
        self.assertEqual([a[0].split(":")[1] for a in lines], ["A", "B", "A", "C"])
        # A's retry ran when due, and C (same partition, behind the copy) only after it.
        self.assertGreaterEqual(float(lines[2][4]), retry_after - 0.002)
        self.assertGreaterEqual(float(lines[3][4]), float(lines[2][4]))
        self.assertIn("partition 0 paused", read_err())
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(proc.wait(timeout=30), 0)
        stats = stats_of(read_err())
        self.assertEqual((stats["events_consumed"], stats["events_processed_success"],
                          stats["events_processed_failed"]), (4, 3, 1))


@needs_broker
class RebalanceTest(HandlerTestCase):
    def test_a_joining_member_is_counted_as_a_rebalance_and_nothing_is_lost_or_redone(self):
        self.ok("topics", "create", "--partitions", "4")
        handler = self.script("who.sh", 'echo "$EVBUS_EVENT_ID $WHO" >> "$ATTEMPTS"')
        first = self.publish(*[order_placed(customer=f"F{i}") for i in range(20)])
        c1, err1 = self.start_consumer(handler, env_extra={"WHO": "c1"})
        wait_until(lambda: len(self.attempt_lines()) == 20, timeout=60, what="c1 handled 20")
        c2, err2 = self.start_consumer(handler, env_extra={"WHO": "c2"})
        # Publish until c2 got partitions of its own and handled something.
        sent = list(first)

        def c2_busy():
            sent.extend(self.publish(*[order_placed(customer="S") for _ in range(4)]))
            return any(a[1] == "c2" for a in self.attempt_lines())
        wait_until(c2_busy, timeout=60, interval=0.5, what="c2 to get partitions")
        wait_until(lambda: len(self.attempt_lines()) >= len(sent), timeout=60, what="all handled")
        for proc in (c1, c2):
            proc.send_signal(signal.SIGTERM)
            self.assertEqual(proc.wait(timeout=30), 0)
        handled = [a[0] for a in self.attempt_lines()]
        self.assertEqual(sorted(handled), sorted(s["event_id"] for s in sent),
                         "every event handled exactly once across the rebalance")
        with open(err1) as f:
            stats1 = stats_of(f.read())
        self.assertGreaterEqual(stats1["rebalance_count"], 1)
        with open(err2) as f:
            stats2 = stats_of(f.read())
        self.assertEqual(stats1["events_processed_success"] + stats2["events_processed_success"],
                         len(sent))


@needs_broker
class UndeserializableTest(HandlerTestCase):
    def test_each_undeserializable_record_goes_straight_to_the_dlq(self):
        self.ok("topics", "create", "--partitions", "1")
        agg = str(uuid.uuid4())
        good = {"event_id": str(uuid.uuid4()), "event_type": "OrderShipped", "aggregate_id": agg,
                "aggregate_type": "Order", "tracking_number": "T-1"}

        def headers(event_type):
            base = [("event_id", str(uuid.uuid4())), ("aggregate_id", agg)]
            return base if event_type is None else [base[0], ("event_type", event_type), base[1]]
        cases = [
            ("unknown type", json.dumps(dict(good, event_type="NoSuchEvent")),
             headers("NoSuchEvent"), "Unknown event type: NoSuchEvent"),
            ("bad JSON", "{not json", headers("OrderShipped"),
             "Failed to deserialize OrderShipped: value is not JSON"),
            ("schema violation", json.dumps(dict(good, tracking_number="", extra_field=1)),
             headers("OrderShipped"), "Failed to deserialize OrderShipped: "),
            ("missing event_type header", json.dumps(good), headers(None),
             "Message missing event_type header"),
            ("non-UTF-8 event_type header", json.dumps(good), headers(b"Order\xffShipped"),
             "event_type header is not valid UTF-8"),
        ]
        for _, value, hdrs, _ in cases:
            produce_raw(self.topic, value, hdrs, key=agg, partition=0)
        produce_raw(self.topic, json.dumps(good), headers("OrderShipped"), key=agg, partition=0)
        handler = self.script("ok.sh", LOG_ATTEMPT)
        r = self.consume_exec(handler)
        # Only the good record reached the handler, once (no retries for these).
        self.assertEqual([a[0] for a in self.attempt_lines()], [good["event_id"]])
        dlq = read_topic(self.dlq)
        self.assertEqual(len(dlq), len(cases))
        by_offset = sorted(dlq, key=lambda d: int(dict(d["headers"])["dlq_original_offset"]))
        for offset, ((what, value, hdrs, message), d) in enumerate(zip(cases, by_offset)):
            with self.subTest(what):
                got = dict(d["headers"][len(hdrs):])
                self.assertEqual([h[0] for h in d["headers"][len(hdrs):]], DLQ_HEADERS)
                self.assertEqual([h[0] for h in d["headers"][:len(hdrs)]], [h[0] for h in hdrs])
                self.assertEqual(got["dlq_reason"], "deserialization_error")
                self.assertEqual(got["dlq_error_type"], "DeserializationError")
                self.assertTrue(got["dlq_error_message"].startswith(message),
                                got["dlq_error_message"])
                self.assertEqual(got["dlq_retry_count"], "0")
                self.assertEqual(got["dlq_original_offset"], str(offset))
                self.assertEqual(d["payload"], value)
                self.assertEqual(d["key"], agg)
        violation = dict(by_offset[2]["headers"])["dlq_error_message"]
        self.assertIn("/tracking_number", violation)
        self.assertIn("extra_field", violation)
        stats = stats_of(r.err)
        self.assertEqual((stats["events_consumed"], stats["events_processed_success"],
                          stats["events_processed_failed"], stats["messages_sent_to_dlq"]),
                         (6, 1, 0, 5))

    def test_poison_retry_headers_are_due_now_with_a_warning(self):
        agg = str(uuid.uuid4())
        body = json.dumps({"event_type": "OrderShipped", "aggregate_id": agg,
                           "aggregate_type": "Order", "tracking_number": "T"})
        far = str(time.time() + 10 * 365 * 86400)
        for retry_after, retry_count in [("inf", "abc"), (far, "1"), (b"\xff\xfe", b"\xff")]:
            produce_raw(self.topic, body, [("event_id", str(uuid.uuid4())),
                                           ("event_type", "OrderShipped"),
                                           ("retry_count", retry_count),
                                           ("retry_after", retry_after)], key=agg)
        handler = self.script("ok.sh", LOG_ATTEMPT)
        start = time.monotonic()
        r = self.consume_exec(handler)
        self.assertLess(time.monotonic() - start, 30)
        self.assertEqual([a[1] for a in self.attempt_lines()], ["0", "1", "0"])
        self.assertIn("retry_after 'inf' is not a finite time", r.err)
        self.assertIn("beyond any retry delay", r.err)
        self.assertIn("retry_after '\\xff\\xfe' is not a number", r.err)
        self.assertEqual(stats_of(r.err)["events_processed_success"], 3)


@needs_broker
class CrashAndDisabledDlqTest(HandlerTestCase):
    def test_kill_9_mid_run_then_restart_handles_every_event_at_least_once(self):
        # The killed member never leaves the group: a short session lets the restart take over
        # its partitions within seconds.
        self.config = write_bus_config(self.tmp.name, self.prefix, self.group,
                                       "session_timeout_ms: 6000\nheartbeat_interval_ms: 1000\n")
        self.ok("topics", "create", "--partitions", "3")
        sent = self.publish(*[order_placed(customer=f"C-{i}") for i in range(40)])
        ids = {s["event_id"] for s in sent}
        handler = self.script("slow-ok.sh", "sleep 0.05\n" + LOG_ATTEMPT)
        proc, _ = self.start_consumer(handler)
        wait_until(lambda: len(self.attempt_lines()) >= 10, timeout=60, what="10 handled")
        proc.kill()  # SIGKILL: no chance to commit or clean up
        proc.wait(timeout=10)
        first_run = len(self.attempt_lines())
        self.assertLess(first_run, 40, "killed before the end")
        r = self.consume_exec(handler)
        handled = [a[0] for a in self.attempt_lines()]
        self.assertEqual(set(handled), ids, "every event handled at least once")
        # Offsets are committed per record, so the restart redoes at most the record in flight
        # (and one whose handler finished just before the kill).
        duplicates = len(handled) - len(set(handled))
        self.assertLessEqual(duplicates, 2, handled)
        self.assertLessEqual(stats_of(r.err)["events_consumed"], 40 - first_run + 2)

    def test_kill_9_of_evbus_also_ends_the_running_handler_and_its_children(self):
        # Otherwise the handler would run on while another member takes over the same event.
        self.publish(order_placed(customer="K"))
        pid_file = os.path.join(self.tmp.name, "grandchild.pid")
        handler = self.script("forking.sh", f"sleep 300 &\necho $! > '{pid_file}'\nwait")
        proc, _ = self.start_consumer(handler)
        wait_until(lambda: os.path.exists(pid_file) and open(pid_file).read().strip(),
                   timeout=60, what="the handler's child started")
        child = int(open(pid_file).read())
        os.kill(child, 0)  # it runs
        proc.kill()  # SIGKILL to evbus only
        proc.wait(timeout=10)

        def gone():
            try:
                os.kill(child, 0)
            except ProcessLookupError:
                return True
            # A zombie waiting for init to reap it has ended too.
            with open(f"/proc/{child}/stat") as f:
                return f.read().split()[2] == "Z"

        wait_until(gone, timeout=10, what="the handler's child to end with evbus")

    def test_enable_dlq_false_stops_with_an_error_and_leaves_the_record_uncommitted(self):
        self.config = write_bus_config(self.tmp.name, self.prefix, self.group,
                                       "max_retries: 0\nenable_dlq: false\n")
        failing = self.script("fail.sh", LOG_ATTEMPT + '\necho "boom" >&2\nexit 1')
        passing = self.script("ok.sh", LOG_ATTEMPT)
        x = self.publish(order_placed(customer="X"))[0]
        r = self.evbus("consume", "--exec", failing, "--exit-at-end", env=self.env)
        self.assertEqual(r.code, 5, r)
        self.assertIn("enable_dlq is false", r.err)
        self.assertIn("uncommitted", r.err)
        self.assertIn("boom", r.err)
        # Not committed: the next run (now succeeding) gets it again. No DLQ was written.
        self.consume_exec(passing)
        self.assertEqual([a[0] for a in self.attempt_lines()], [x["event_id"]] * 2)
        self.assertEqual(read_topic(self.dlq), [])

        # --skip-failed: counted as failed, committed, and the run goes on.
        y, z = self.publish(order_placed(customer="Y"), order_placed(customer="Z"))
        skipped = self.consume_exec(failing, "--skip-failed")
        self.assertIn("skipped 2", skipped.err)
        stats = stats_of(skipped.err)
        self.assertEqual((stats["events_processed_failed"], stats["messages_sent_to_dlq"]), (2, 0))
        after = self.consume_exec(passing)
        self.assertEqual(stats_of(after.err)["events_consumed"], 0)
        self.assertEqual(read_topic(self.dlq), [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
