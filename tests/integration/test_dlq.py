"""evbus dlq list / count / replay against the real broker.

The DLQ records are produced by the test itself, byte for byte as eventsource-py writes them
(contract §4.3), as Spring Kafka and Kafka Connect write them, and as poison (null values,
non-UTF-8 bytes, wrong-length binary headers). They are written through librdkafka by ctypes, so
binary header values (with NUL bytes) and null headers are exact, which kcat's -H cannot do.
"""
import ctypes
import ctypes.util
import json
import os
import signal
import struct
import subprocess
import sys
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from evbus_testlib import (BINARY, BOOTSTRAP, BusTestCase, needs_broker, unittest,  # noqa: E402
                           wait_until)

# ---- a minimal librdkafka producer through ctypes ------------------------------------------

_VTYPE_TOPIC, _VTYPE_PARTITION, _VTYPE_VALUE, _VTYPE_KEY, _VTYPE_HEADER = 1, 3, 4, 5, 9


class _Mem(ctypes.Structure):
    _fields_ = [("ptr", ctypes.c_void_p), ("size", ctypes.c_size_t)]


class _Hdr(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("val", ctypes.c_void_p), ("size", ctypes.c_ssize_t)]


class _U(ctypes.Union):
    _fields_ = [("cstr", ctypes.c_char_p), ("i32", ctypes.c_int32), ("mem", _Mem),
                ("header", _Hdr), ("_pad", ctypes.c_char * 64)]


class _VU(ctypes.Structure):
    _fields_ = [("vtype", ctypes.c_int), ("u", _U)]


_DR_CB = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)


class KafkaWriter:
    """Produces records with exact key, value and header bytes (None = null)."""

    def __init__(self, bootstrap):
        lib = ctypes.CDLL(ctypes.util.find_library("rdkafka") or "librdkafka.so.1")
        lib.rd_kafka_conf_new.restype = ctypes.c_void_p
        lib.rd_kafka_conf_set.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p,
                                          ctypes.c_char_p, ctypes.c_size_t]
        lib.rd_kafka_conf_set_dr_msg_cb.argtypes = [ctypes.c_void_p, _DR_CB]
        lib.rd_kafka_new.restype = ctypes.c_void_p
        lib.rd_kafka_new.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
        lib.rd_kafka_produceva.restype = ctypes.c_void_p
        lib.rd_kafka_produceva.argtypes = [ctypes.c_void_p, ctypes.POINTER(_VU), ctypes.c_size_t]
        lib.rd_kafka_error_string.restype = ctypes.c_char_p
        lib.rd_kafka_error_string.argtypes = [ctypes.c_void_p]
        lib.rd_kafka_flush.argtypes = [ctypes.c_void_p, ctypes.c_int]
        lib.rd_kafka_outq_len.argtypes = [ctypes.c_void_p]
        lib.rd_kafka_destroy.argtypes = [ctypes.c_void_p]
        self.lib = lib
        self.errors = []
        self.delivered = 0

        def on_delivery(_rk, message, _opaque):
            err = ctypes.cast(message, ctypes.POINTER(ctypes.c_int))[0]  # rd_kafka_message_t.err
            if err:
                self.errors.append(err)
            else:
                self.delivered += 1

        self._callback = _DR_CB(on_delivery)
        conf = lib.rd_kafka_conf_new()
        errstr = ctypes.create_string_buffer(512)
        for k, v in [("bootstrap.servers", bootstrap), ("linger.ms", "0")]:
            assert lib.rd_kafka_conf_set(conf, k.encode(), v.encode(), errstr, 512) == 0, errstr.value
        lib.rd_kafka_conf_set_dr_msg_cb(conf, self._callback)
        self.rk = lib.rd_kafka_new(0, conf, errstr, 512)
        assert self.rk, errstr.value
        self._keep = []

    def send(self, topic, partition, key, value, headers):
        def mem(vtype, data):
            vu = _VU(vtype=vtype)
            if data is not None:
                buf = ctypes.create_string_buffer(data, len(data))
                self._keep.append(buf)
                vu.u.mem = _Mem(ctypes.cast(buf, ctypes.c_void_p), len(data))
            return vu

        vus = [_VU(vtype=_VTYPE_TOPIC), _VU(vtype=_VTYPE_PARTITION)]
        vus[0].u.cstr = topic.encode()
        vus[1].u.i32 = partition
        vus += [mem(_VTYPE_KEY, key), mem(_VTYPE_VALUE, value)]
        for name, val in headers:
            vu = _VU(vtype=_VTYPE_HEADER)
            raw_name = name if isinstance(name, bytes) else name.encode()
            self._keep.append(raw_name)
            if val is None:
                vu.u.header = _Hdr(raw_name, None, -1)
            else:
                raw = val if isinstance(val, bytes) else val.encode()
                buf = ctypes.create_string_buffer(raw, len(raw))
                self._keep.append(buf)
                vu.u.header = _Hdr(raw_name, ctypes.cast(buf, ctypes.c_void_p), len(raw))
            vus.append(vu)
        array = (_VU * len(vus))(*vus)
        err = self.lib.rd_kafka_produceva(self.rk, array, len(vus))
        assert not err, self.lib.rd_kafka_error_string(err)

    def flush(self):
        self.lib.rd_kafka_flush(self.rk, 30000)
        assert self.lib.rd_kafka_outq_len(self.rk) == 0, "records still queued after 30 s"
        assert not self.errors, f"delivery errors: {self.errors}"
        self._keep.clear()

    def close(self):
        self.flush()
        self.lib.rd_kafka_destroy(self.rk)


# ---- records as eventsource-py writes them ---------------------------------------------------

def order_event(aggregate_id=None, version=1, total=99.99):
    agg = aggregate_id or str(uuid.uuid4())
    return {
        "event_id": str(uuid.uuid4()), "event_type": "OrderPlaced", "event_version": 1,
        "occurred_at": "2025-01-15T10:30:00.123456Z", "aggregate_id": agg,
        "aggregate_type": "Order", "aggregate_version": version, "tenant_id": None,
        "actor_id": None, "correlation_id": str(uuid.uuid4()), "causation_id": None,
        "metadata": {}, "customer_id": "cust-123", "total": total,
    }


def wire_value(event):
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode()


def publish_headers(event):
    """Contract §2.3, in order."""
    return [("event_id", event["event_id"]), ("event_type", event["event_type"]),
            ("aggregate_id", event["aggregate_id"]), ("aggregate_type", event["aggregate_type"]),
            ("aggregate_version", str(event["aggregate_version"])),
            ("occurred_at", "2025-01-15T10:30:00.123456+00:00"),
            ("correlation_id", event["correlation_id"])]


def dlq_headers(failing_headers, *, prefix, reason="max_retries_exceeded", error_type="ValueError",
                message="card declined", retry_count=3, partition=2, offset=43, group="billing"):
    """Contract §4.3: every header of the failing record in order, then the 9 dlq_* headers."""
    return list(failing_headers) + [
        ("dlq_reason", reason), ("dlq_error_type", error_type),
        ("dlq_error_message", message), ("dlq_retry_count", str(retry_count)),
        ("dlq_timestamp", "2026-12-03T15:47:31.157983+00:00"),
        ("dlq_original_topic", f"{prefix}.stream"), ("dlq_original_partition", str(partition)),
        ("dlq_original_offset", str(offset)), ("dlq_consumer_group", group)]


def failing_attempt(headers, retry_count=3):
    """A retry copy's headers (§4.2): retry_count/retry_after replaced, appended at the end."""
    kept = [(n, v) for n, v in headers if n not in ("retry_count", "retry_after")]
    return kept + [("retry_count", str(retry_count)), ("retry_after", "1796312855.2640707")]


@needs_broker
class DlqTest(BusTestCase):
    def setUp(self):
        super().setUp()
        self.dlq = f"{self.prefix}.stream.dlq"
        self.writer = KafkaWriter(BOOTSTRAP)
        self.ok("topics", "create", "--partitions", "3")

    def tearDown(self):
        self.writer.close()
        super().tearDown()

    def put_dlq(self, event, dlq_partition=0, **kw):
        headers = dlq_headers(failing_attempt(publish_headers(event)), prefix=self.prefix, **kw)
        self.writer.send(self.dlq, dlq_partition, event["aggregate_id"].encode(), wire_value(event),
                         headers)
        return headers

    def list_json(self, *args):
        return json.loads(self.ok("dlq", "list", "--output", "json", *args).out)

    def main_topic_records(self):
        """The main topic as evbus consume sees it (fresh group each time)."""
        r = self.ok("consume", "--from", "beginning", "--exit-at-end", "--group",
                    f"check-{uuid.uuid4().hex[:8]}")
        return r.json_lines()

    def main_topic_count(self):
        r = self.ok("dlq", "count", "--topic", f"{self.prefix}.stream", "--output", "json")
        return json.loads(r.out)["count"]

    # ---- count and list ---------------------------------------------------------------------

    def test_count_equals_the_records_present_and_filters_select(self):
        events = [order_event() for _ in range(7)]
        spread = [0, 0, 1, 1, 1, 2, 2]
        for i, (event, p) in enumerate(zip(events, spread)):
            reason = "deserialization_error" if i % 3 == 0 else "max_retries_exceeded"
            etype = "DeserializationError" if i % 3 == 0 else "ValueError"
            self.put_dlq(event, p, reason=reason, error_type=etype, message=f"boom {i}")
        self.writer.flush()

        count = json.loads(self.ok("dlq", "count", "--output", "json").out)
        self.assertEqual(count["count"], 7)
        self.assertEqual([(p["partition"], p["count"]) for p in count["partitions"]],
                         [(0, 2), (1, 3), (2, 2)])
        table = self.ok("dlq", "count")
        self.assertIn(f"{self.dlq}: 7 record(s)", table.out)

        by_reason = json.loads(self.ok("dlq", "count", "--by", "reason", "--output", "json").out)
        self.assertEqual({g["value"]: g["count"] for g in by_reason["groups"]},
                         {"max_retries_exceeded": 4, "deserialization_error": 3})
        self.assertTrue(all(g["oldest_age_seconds"] >= 0 for g in by_reason["groups"]))
        by_part = json.loads(self.ok("dlq", "count", "--by", "original-partition", "-o", "json").out)
        self.assertEqual(by_part["groups"], [dict(by_part["groups"][0], value=f"{self.prefix}.stream[2]", count=7)])

        entries = self.list_json()
        self.assertEqual(len(entries), 7)
        self.assertEqual([(e["partition"], e["offset"]) for e in entries],
                         [(0, 0), (0, 1), (1, 0), (1, 1), (1, 2), (2, 0), (2, 1)])
        self.assertEqual([e["event_id"] for e in entries], [e["event_id"] for e in events])
        first = entries[0]
        self.assertEqual(first["dialect"], "eventsource")
        self.assertEqual(first["reason"], "deserialization_error")
        self.assertEqual(first["error_message"], "boom 0")
        self.assertEqual(first["retry_count"], 3)
        self.assertEqual(first["replay_count"], 0)
        self.assertEqual((first["original_topic"], first["original_partition"],
                          first["original_offset"]), (f"{self.prefix}.stream", 2, 43))
        self.assertEqual(first["consumer_group"], "billing")
        self.assertEqual(first["event"], events[0])
        self.assertEqual(first["key"], events[0]["aggregate_id"])

        self.assertEqual(len(self.list_json("--reason", "deserialization_error")), 3)
        self.assertEqual(len(self.list_json("--error-type", "ValueError")), 4)
        self.assertEqual(len(self.list_json("--partition", "1")), 3)
        self.assertEqual(len(self.list_json("--limit", "2")), 2)
        self.assertEqual(len(self.list_json("--type", "OrderShipped")), 0)
        upper = events[4]["aggregate_id"].upper()
        self.assertEqual([e["event_id"] for e in self.list_json("--aggregate-id", upper)],
                         [events[4]["event_id"]])
        self.assertEqual(len(self.list_json("--since", "1h")), 7)
        self.assertEqual(len(self.list_json("--until", "1h")), 0)
        self.assertEqual(len(self.list_json("--since", "2000-01-01T00:00:00Z")), 7)
        bad = self.evbus("dlq", "list", "--since", "yesterday-ish")
        self.assertEqual(bad.code, 2, bad)

        jsonl = self.ok("dlq", "list", "--output", "jsonl").json_lines()
        self.assertEqual([e["offset"] for e in jsonl], [e["offset"] for e in entries])

    def test_list_on_an_empty_or_short_dlq_returns_at_once(self):
        r = self.ok("dlq", "list", "--output", "json")
        self.assertEqual(json.loads(r.out), [])
        self.assertLess(r.elapsed, 5.0, "an empty DLQ must not make list wait")
        self.assertEqual(json.loads(self.ok("dlq", "count", "-o", "json").out)["count"], 0)
        # A short DLQ: eventsource-py's get_dlq_messages waits for limit+1 records; evbus does not.
        self.put_dlq(order_event())
        self.writer.flush()
        r = self.ok("dlq", "list", "--limit", "100", "--output", "json")
        self.assertEqual(len(json.loads(r.out)), 1)
        self.assertLess(r.elapsed, 5.0)
        # An absent topic is an empty DLQ, not an error, and asking does not create it.
        missing = self.ok("dlq", "list", "--topic", f"{self.prefix}.nothing")
        self.assertIn("does not exist", missing.out)
        count = json.loads(self.ok("dlq", "count", "--topic", f"{self.prefix}.nothing", "-o", "json").out)
        self.assertEqual((count["exists"], count["count"]), (False, 0))

    # ---- foreign dialects and poison --------------------------------------------------------

    def test_spring_and_connect_headers_decode_into_the_same_fields(self):
        topic = f"{self.prefix}.foreign.dlt"
        spring_value = b'{"orderId":"A-1"}'
        self.writer.send(topic, 0, b"A-1", spring_value, [
            ("kafka_dlt-original-topic", "orders"),
            ("kafka_dlt-original-partition", struct.pack(">i", 2)),
            ("kafka_dlt-original-offset", struct.pack(">q", 4242)),
            ("kafka_dlt-original-timestamp", struct.pack(">q", 1736937000123)),
            ("kafka_dlt-original-timestamp-type", "CreateTime"),
            ("kafka_dlt-original-consumer-group", "order-service"),
            ("kafka_dlt-exception-fqcn",
             "org.springframework.kafka.listener.ListenerExecutionFailedException"),
            ("kafka_dlt-exception-cause-fqcn", "java.lang.IllegalStateException"),
            ("kafka_dlt-exception-message", "Listener failed; stock < 0"),
            ("kafka_dlt-exception-stacktrace", "java.lang.IllegalStateException: stock < 0\n\tat x"),
        ])
        self.writer.send(topic, 0, b"B-7", b"not json at all", [
            ("__connect.errors.topic", "payments"),
            ("__connect.errors.partition", "1"),
            ("__connect.errors.offset", "77"),
            ("__connect.errors.connector.name", "jdbc-sink"),
            ("__connect.errors.task.id", "0"),
            ("__connect.errors.stage", "VALUE_CONVERTER"),
            ("__connect.errors.class.name", "org.apache.kafka.connect.json.JsonConverter"),
            ("__connect.errors.exception.class.name",
             "org.apache.kafka.connect.errors.DataException"),
            ("__connect.errors.exception.message", "Converting byte[] to Kafka Connect data failed"),
            ("__connect.errors.exception.stacktrace", "org.apache...DataException\n\tat y"),
        ])
        # Poison: null key and value, a null header, non-UTF-8 bytes, a 3-byte "int", a bad count.
        self.writer.send(topic, 1, None, None, [
            ("event_type", b"\xff\xfeBad"),
            ("dlq_reason", None),
            ("dlq_error_message", b"caf\xe9 \x00 binary"),
            ("dlq_original_partition", "two"),
            ("kafka_dlt-original-partition", b"\x00\x01\x02"),
            ("dlq_replay_count", "lots"),
        ])
        self.writer.flush()

        entries = json.loads(self.ok("dlq", "list", "--topic", topic, "--output", "json").out)
        self.assertEqual(len(entries), 3)
        spring, connect, poison = entries
        self.assertEqual(spring["dialect"], "spring")
        self.assertEqual((spring["original_topic"], spring["original_partition"],
                          spring["original_offset"]), ("orders", 2, 4242))
        self.assertEqual(spring["original_timestamp"], "2025-01-15T10:30:00.123Z")
        self.assertEqual(spring["consumer_group"], "order-service")
        self.assertEqual(spring["error_type"],
                         "org.springframework.kafka.listener.ListenerExecutionFailedException")
        self.assertEqual(spring["error_cause"], "java.lang.IllegalStateException")
        self.assertEqual(spring["error_message"], "Listener failed; stock < 0")
        self.assertEqual(spring["event"], {"orderId": "A-1"})
        self.assertEqual(spring["replay_count"], 0)
        self.assertNotIn("problems", spring)

        self.assertEqual(connect["dialect"], "connect")
        self.assertEqual((connect["original_topic"], connect["original_partition"],
                          connect["original_offset"]), ("payments", 1, 77))
        self.assertEqual(connect["reason"], "VALUE_CONVERTER")
        self.assertEqual(connect["error_type"], "org.apache.kafka.connect.errors.DataException")
        self.assertEqual(connect["error_message"], "Converting byte[] to Kafka Connect data failed")
        self.assertEqual(connect["connector"], "jdbc-sink/0")
        self.assertIsNone(connect["event"])
        self.assertEqual(connect["value"], "not json at all")

        self.assertEqual(poison["dialect"], "eventsource")
        self.assertIsNone(poison["key"])
        self.assertIsNone(poison["value"])
        self.assertEqual(poison["event_type"], {"base64": "//5CYWQ="})
        self.assertEqual(poison["error_message"], {"base64": "Y2Fm6SAAIGJpbmFyeQ=="})
        self.assertIsNone(poison["reason"])
        self.assertIsNone(poison["original_partition"])
        self.assertIsNone(poison["replay_count"])
        self.assertEqual(len(poison["problems"]), 3, poison["problems"])
        self.assertTrue(any("kafka_dlt-original-partition has 3 byte(s)" in p for p in poison["problems"]))
        self.assertTrue(any("dlq_replay_count" in p for p in poison["problems"]))
        self.assertIn(["dlq_reason", None], poison["headers"])

        # Filters and grouping see the same fields.
        self.assertEqual(len(self.list_json("--topic", topic, "--error-type", "IllegalStateException")), 1)
        self.assertEqual(len(self.list_json("--topic", topic, "--error-type", "DataException")), 1)
        self.assertEqual(len(self.list_json("--topic", topic, "--reason", "VALUE_CONVERTER")), 1)
        by_type = json.loads(self.ok("dlq", "count", "--topic", topic, "--by", "error-type", "-o", "json").out)
        self.assertEqual(by_type["count"], 3)

        # The table shows all three safely, within a terminal's width, long errors cut with "…".
        table = self.ok("dlq", "list", "--topic", topic)
        rows = table.out.splitlines()
        self.assertEqual(len(rows), 5, table)
        self.assertTrue(all(len(r) <= 120 for r in rows), table.out)
        self.assertIn("…", rows[1])
        self.assertIn("<binary>", rows[3])

        # An unparseable dlq_replay_count is refused unless forced, with a clear message.
        refused = self.evbus("dlq", "replay", "--topic", topic, "--partition", "1", "--offset", "0")
        self.assertEqual(refused.code, 3, refused)
        self.assertIn("not a non-negative integer", refused.err)
        forced = self.ok("dlq", "replay", "--topic", topic, "--partition", "1", "--offset", "0",
                         "--force", "--dry-run", "--output", "json")
        plan = json.loads(forced.out)
        self.assertEqual(plan["headers"][-2:], [["retry_count", "0"], ["dlq_replay_count", "1"]])
        self.assertEqual(plan["headers"][:1], [["event_type", {"base64": "//5CYWQ="}]])

    # ---- replay -----------------------------------------------------------------------------

    def replay_and_fetch_copy(self, partition, offset, *extra):
        before = {(r["partition"], r["offset"]) for r in self.main_topic_records()}
        r = self.ok("dlq", "replay", "--partition", str(partition), "--offset", str(offset), *extra)
        self.assertIn("replayed 1, refused 0, failed 0", r.out)
        new = [rec for rec in self.main_topic_records() if (rec["partition"], rec["offset"]) not in before]
        self.assertEqual(len(new), 1, new)
        return new[0]

    def test_single_replay_writes_the_contract_headers_and_the_fourth_is_refused(self):
        event = order_event()
        original = publish_headers(event)
        self.put_dlq(event, 1, partition=2, offset=43)
        self.writer.flush()

        copy = self.replay_and_fetch_copy(1, 0)
        expected = [list(h) for h in original] + [["retry_after", "1796312855.2640707"],
                                                  ["retry_count", "0"], ["dlq_replay_count", "1"]]
        self.assertEqual(copy["headers"], expected)
        self.assertEqual(copy["key"], event["aggregate_id"])
        self.assertEqual(copy["event"], event)
        raw = subprocess.run(["kcat", "-b", BOOTSTRAP, "-C", "-t", f"{self.prefix}.stream", "-e",
                              "-q", "-f", "%s\n"], capture_output=True, timeout=60)
        self.assertEqual(raw.stdout.splitlines(), [wire_value(event)])

        # The copy fails again and lands in the DLQ again (as a consumer would write it), twice.
        headers = [tuple(h) for h in copy["headers"]]
        for dlq_offset, count in ((1, 2), (2, 3)):
            again = dlq_headers(failing_attempt(headers), prefix=self.prefix)
            self.writer.send(self.dlq, 1, event["aggregate_id"].encode(), wire_value(event), again)
            self.writer.flush()
            copy = self.replay_and_fetch_copy(1, dlq_offset)
            self.assertEqual(copy["headers"][-2:], [["retry_count", "0"], ["dlq_replay_count", str(count)]])
            self.assertEqual(copy["headers"][:7], [list(h) for h in original])
            headers = [tuple(h) for h in copy["headers"]]

        # The fourth replay: dlq_replay_count=3 reaches dlq_max_replay_attempts (3).
        fourth = dlq_headers(failing_attempt(headers), prefix=self.prefix)
        self.writer.send(self.dlq, 1, event["aggregate_id"].encode(), wire_value(event), fourth)
        self.writer.flush()
        before = self.main_topic_count()
        refused = self.evbus("dlq", "replay", "--partition", "1", "--offset", "3")
        self.assertEqual(refused.code, 3, refused)
        self.assertIn("replayed 0, refused 1, failed 0", refused.out)
        self.assertIn("dlq_max_replay_attempts is 3", refused.err)
        self.assertEqual(self.main_topic_count(), before, "a refused replay must send nothing")
        forced = self.replay_and_fetch_copy(1, 3, "--force")
        self.assertEqual(forced["headers"][-1], ["dlq_replay_count", "4"])

        # The DLQ itself is never altered: the four records are all still there.
        self.assertEqual(json.loads(self.ok("dlq", "count", "-o", "json").out)["count"], 4)
        self.assertEqual([e["replay_count"] for e in self.list_json()], [0, 1, 2, 3])

        missing = self.evbus("dlq", "replay", "--partition", "1", "--offset", "99")
        self.assertEqual(missing.code, 3, missing)
        self.assertIn(f"{self.dlq}[1]@99", missing.err)
        self.assertIn("out of range", missing.err)

    def test_bulk_replay_interrupted_then_resumed_replays_every_record_once(self):
        events = [order_event() for _ in range(60)]
        for i, event in enumerate(events):
            self.put_dlq(event, i % 3)
        self.writer.flush()

        usage = self.evbus("dlq", "replay")
        self.assertEqual(usage.code, 2, usage)
        preview = self.ok("dlq", "replay", "--all")
        self.assertIn(f"preview: 60 record(s) selected in {self.dlq}, 60 would be replayed to "
                      f"{self.prefix}.stream", preview.out)
        self.assertRegex(preview.out, r"OrderPlaced\s+max_retries_exceeded\s+60")
        self.assertEqual(self.main_topic_count(), 0, "a preview must send nothing")

        group = f"replay-{uuid.uuid4().hex[:8]}"
        command = [BINARY, "-c", self.config, "dlq", "replay", "--all", "--yes", "--group", group]
        env = dict(os.environ)
        env.pop("EVBUS_CONFIG", None)
        proc = subprocess.Popen(command + ["--rate", "15"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env)
        try:
            wait_until(lambda: self.main_topic_count() >= 5, timeout=30, what="first replays")
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
        self.assertEqual(proc.returncode, 130, out + err)
        first = [l for l in out.splitlines() if l.startswith("replayed ") and "->" in l]
        self.assertIn(f"replayed {len(first)}, refused 0, failed 0 (interrupted)", out)
        self.assertGreaterEqual(len(first), 5)
        self.assertLess(len(first), 60, "the interruption should land mid-run")

        resumed = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
        self.assertEqual(resumed.returncode, 0, resumed.stdout + resumed.stderr)
        self.assertIn(f"replayed {60 - len(first)}, refused 0, failed 0", resumed.stdout)

        copies = self.main_topic_records()
        ids = [dict(map(tuple, r["headers"]))["event_id"] for r in copies]
        self.assertEqual(sorted(ids), sorted(e["event_id"] for e in events))
        self.assertTrue(all(r["headers"][-1] == ["dlq_replay_count", "1"] for r in copies))

        again = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
        self.assertEqual(again.returncode, 0, again.stderr)
        self.assertIn("replayed 0, refused 0, failed 0", again.stdout)
        self.assertEqual(self.main_topic_count(), 60)
        self.assertEqual(json.loads(self.ok("dlq", "count", "-o", "json").out)["count"], 60)

    def test_replay_to_a_misspelt_target_topic_sends_nothing(self):
        self.put_dlq(order_event(), 0)
        self.writer.flush()
        typo = f"{self.prefix}.strem"
        r = self.evbus("dlq", "replay", "--partition", "0", "--offset", "0", "--to", typo)
        self.assertEqual(r.code, 3, r)
        self.assertIn(f"replay target topic {typo} does not exist", r.err)
        # Asking did not create it, and nothing reached the bus topic either.
        count = json.loads(self.ok("dlq", "count", "--topic", typo, "--output", "json").out)
        self.assertFalse(count["exists"], count)
        self.assertEqual(self.main_topic_records(), [])

    def test_preview_warns_when_the_aggregate_has_newer_events(self):
        behind, alone = order_event(), order_event()
        published = self.ok("publish", "--output", "json", stdin="".join(
            json.dumps(e) + "\n" for e in (behind, order_event(behind["aggregate_id"], 2))))
        first, _newer = [json.loads(l) for l in published.out.splitlines()]
        self.put_dlq(behind, 0, partition=first["partition"], offset=first["offset"])
        self.put_dlq(alone, 1, partition=first["partition"], offset=first["offset"])
        self.writer.flush()
        preview = self.ok("dlq", "replay", "--all")
        warnings = [l for l in preview.out.splitlines() if "warning:" in l]
        self.assertEqual(len(warnings), 1, preview.out)
        self.assertIn(f"aggregate {behind['aggregate_id']} has 1 newer event(s)", warnings[0])
        self.assertIn(f"{self.dlq}[0]@0", warnings[0])
        as_json = json.loads(self.ok("dlq", "replay", "--all", "--output", "json").out)
        self.assertEqual(as_json["executed"], False)
        self.assertEqual(len(as_json["preview"]["reorder_warnings"]), 1)


if __name__ == "__main__":
    unittest.main()
