"""evbus against the real eventsource-py KafkaEventBus on the real broker (issue 5, docs/INTEROP.md).

Runs under the interop venv: when `eventsource` is not importable here, this file re-executes
itself with $EVBUS_INTEROP_PYTHON, or with the python that scripts/interop-venv.sh prints (that
script creates the venv and installs the pinned eventsource-py on first use).
"""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("EVBUS_SOURCE_DIR", os.path.dirname(os.path.dirname(HERE)))


def _reexec_under_interop_venv():
    try:
        import eventsource  # noqa: F401
        return
    except ImportError:
        pass
    if os.environ.get("EVBUS_INTEROP_REEXEC"):
        raise SystemExit(f"{sys.executable} still cannot import eventsource")
    python = os.environ.get("EVBUS_INTEROP_PYTHON")
    if not python:
        script = os.path.join(SOURCE_DIR, "scripts", "interop-venv.sh")
        python = subprocess.run([script], check=True, stdout=subprocess.PIPE, text=True,
                                timeout=600).stdout.strip().splitlines()[-1]
    os.environ["EVBUS_INTEROP_REEXEC"] = "1"
    sys.stdout.flush()
    os.execv(python, [python, os.path.abspath(__file__), *sys.argv[1:]])


if os.environ.get("EVBUS_TEST_BOOTSTRAP"):  # without a broker every test skips: no venv needed
    _reexec_under_interop_venv()

# The rest runs under the venv python (or skips).
import gc  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import signal  # noqa: E402
import tempfile  # noqa: E402
import unittest  # noqa: E402
import uuid  # noqa: E402
import warnings  # noqa: E402
from collections import Counter  # noqa: E402
from datetime import datetime, timedelta, timezone  # noqa: E402

sys.path.insert(0, os.path.join(HERE, "..", "support"))
sys.path.insert(0, HERE)
from evbus_testlib import BINARY, BOOTSTRAP, ORDERS_SCHEMA, run, unique  # noqa: E402

try:
    import pybus
    from pybus import InvoiceIssued, OrderPlaced, OrderShipped, header_list, read_raw, record_count
except ImportError:  # no broker, no venv: every test is skipped below
    pybus = None

INTEROP_SCHEMA = os.path.join(HERE, "schemas", "interop.yaml")
READY = bool(BOOTSTRAP) and pybus is not None


def needs_interop(cls):
    return unittest.skipUnless(READY, "EVBUS_TEST_BOOTSTRAP not set (run scripts/test.sh)")(cls)


def _has_dlq_command():
    if not READY:
        return False
    r = run(["dlq", "--help"], timeout=30)
    # An unknown subcommand makes the parser print the top-level help, which also exits 0.
    return r.code == 0 and re.search(r"Usage: \S+ dlq", r.out) is not None and "replay" in r.out


def _has_consume_exec():
    return READY and "--exec" in run(["consume", "--help"], timeout=30).out


HAS_DLQ = _has_dlq_command()
HAS_EXEC = _has_consume_exec()
needs_dlq_command = unittest.skipUnless(HAS_DLQ, "evbus has no `dlq list/count/replay` yet (issue 3)")
needs_exec = unittest.skipUnless(HAS_EXEC, "evbus has no `consume --exec` yet (issue 3)")


# ------------------------------------------------------------------------------------------------
# Event inputs: JSON objects as evbus reads them, every envelope field fixed where the test needs
# to predict the bytes.

def full_event(event_type, aggregate_id, version, occurred_at, **payload):
    event = {
        "event_id": str(uuid.uuid4()),
        "event_type": event_type,
        "event_version": 1,
        "occurred_at": occurred_at,
        "aggregate_id": aggregate_id,
        "aggregate_version": version,
        "correlation_id": str(uuid.uuid4()),
    }
    event.update(payload)
    return event


def invoice_payload(i):
    return dict(amount=f"{100 + i}.{i % 100:02d}", due_at=f"2025-02-{1 + i % 28:02d}T12:00:00.000250Z",
                customer_ref=str(uuid.uuid4()).upper(),
                billing_address=({"city": "Zürich", "postcode": f"80{i:02d}"} if i % 2
                                 else {"city": "Lyon"}),
                lines=[{"sku": f"SKU-{i}", "qty": 2, "unit_price": "9.95"},
                       {"sku": "GIFT", "qty": 1, "unit_price": "0"}],
                tags=["b2b", "früh"] if i % 2 else [])


def mixed_events(aggregates, versions):
    """Per aggregate: versions 1..n alternating types (invoices for every third aggregate), with
    microseconds, UTC, offsets, a naive time and optional envelope fields in the mix."""
    events = []
    for v in range(1, versions + 1):
        for i, agg in enumerate(aggregates):
            micro = (i * 7919 + v * 104729) % 1_000_000
            occurred = [f"2025-01-15T10:{v:02d}:{i:02d}.{micro:06d}Z",
                        f"2025-01-15T12:{v:02d}:{i:02d}.{micro:06d}+02:00",
                        f"2025-01-15T10:{v:02d}:{i:02d}Z",
                        f"2025-01-15T10:{v:02d}:{i:02d}.{micro:06d}"][(i + v) % 4]
            if i % 3 == 2:
                event = full_event("InvoiceIssued", agg, v, occurred, **invoice_payload(i + v))
            elif v % 2:
                event = full_event("OrderPlaced", agg, v, occurred, customer_id=f"CUST-{i:03d} café",
                                   total=[99.99, 100, 0.1 + 0.2, 1e-7, 12345.5][(i + v) % 5])
            else:
                event = full_event("OrderShipped", agg, v, occurred, tracking_number=f"TRK-{i}-{v}")
            if (i + v) % 5 == 0:
                event.update(tenant_id=str(uuid.uuid4()), actor_id=f"user:{i}",
                             causation_id=str(uuid.uuid4()), metadata={"source": "interop", "n": v})
            events.append(event)
    return events


def lenient_inputs():
    """The same field values in the spellings both sides accept: upper-case or unhyphenated UUIDs,
    integers for floats, offsets, naive and epoch times, 7 fractional digits, awkward strings."""
    agg = "7D3C2B1A5E4F4A6B8C9D0E1F2A3B4C5D"
    base = {"event_id": "0B6F1C3E-8A4D-4E0F-9C1A-2F5E7D9B1A11",
            "correlation_id": "5a5a5a5a6b6b4c7c8d8d9e9e9e9e9e9e", "aggregate_id": agg}
    out = []

    def add(**fields):
        event = dict(base)
        event.update(fields)
        event["event_id"] = str(uuid.uuid4()).upper() if out else event["event_id"]
        out.append(event)

    awkward = "café ✓ \u0001 \u007f \u2028 </x> \"q\" \\ \t 🚀"
    for total in [99.99, 100, 1e-7, 1e16, 0.1 + 0.2, 1e15, 5e-324, 1.7976931348623157e308, 1e-5]:
        add(event_type="OrderPlaced", occurred_at="2025-01-15T10:30:00.123456Z",
            customer_id=awkward, total=total)
    for occurred in ["2025-01-15T10:30:00Z", "2025-01-15T10:30:00.000000Z",
                     "2025-01-15T10:30:00.1234567Z", "2025-01-15T10:30:00.123+05:30",
                     "2025-01-15T10:30:00", "2025-01-15 10:30:00.5+00:00", 1736937000,
                     1736937000.25, 1736937000123, "2025-01-15T10:30:00-00:00"]:
        add(event_type="OrderShipped", occurred_at=occurred, tracking_number="T")
    for amount in ["99.90", "-12.50", "+1.5", "1e5", "1E-7", "0.0000001", 99.9, 100, "100.000", "-0"]:
        add(event_type="InvoiceIssued", occurred_at="2025-01-15T10:30:00.5Z", amount=amount,
            due_at="2025-02-01T00:00:00+01:00", customer_ref="A1B2C3D4E5F60718293A4B5C6D7E8F90",
            billing_address={"city": "Zürich"},
            lines=[{"sku": "S", "qty": 2, "unit_price": "1.10"}, {"sku": "T", "qty": 1.0, "unit_price": 3}],
            tags=["a", "ü"])
    add(event_type="OrderShipped", occurred_at="2025-01-15T10:30:00Z", tracking_number="T",
        tenant_id="11111111-2222-3333-4444-555555555555", actor_id="user:1",
        causation_id="AAAAAAAA-2222-3333-4444-555555555555", aggregate_version=7, event_version=2,
        metadata={"x": 1, "y": 1.0, "z": [1e16, 0.5, None, True], "n": {"k": "v"}})
    return out


def jsonl(events):
    return "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in events)


def python_event(raw):
    """What eventsource-py makes of the same JSON: the registered class's model_validate_json."""
    return pybus.EVENT_CLASSES[raw["event_type"]].model_validate_json(json.dumps(raw))


def parse_dry_run(text):
    """evbus publish --dry-run text blocks -> [{key, partition, headers, value}]. Split on "\\n"
    only: values may hold U+2028, which str.splitlines() would also split on."""
    blocks = []
    for line in text.split("\n"):
        if line.startswith("── "):
            blocks.append({"headers": []})
        elif line.startswith("key:"):
            blocks[-1]["key"] = line[len("key:"):].strip()
        elif line.startswith("partition:"):
            part = line[len("partition:"):].split()[0]
            blocks[-1]["partition"] = int(part) if part.isdigit() else None
        elif line.startswith("value:     "):
            blocks[-1]["value"] = line[len("value:     "):]
        elif line.startswith("  ") and blocks:
            name, value = line[2:].split(": ", 1)
            blocks[-1]["headers"].append((name, value))
    return blocks


def field(entry, *names):
    """The first of `names` ("a" or dotted "a.b") present in a JSON entry. `evbus dlq` output field
    names are issue 3's; this accepts the spellings its spec allows."""
    for name in names:
        node = entry
        for part in name.split("."):
            if not isinstance(node, dict) or part not in node:
                break
            node = node[part]
        else:
            return node
    raise AssertionError(f"none of {names} in {json.dumps(entry)[:600]}")


def read_lines(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [line for line in f if line.strip()]


def retry_delay_bounds(count, base, jitter):
    """Contract §4.1: the copy with retry_count=count waited min(base*2^(count-1), max) ± jitter."""
    d = base * 2 ** (count - 1)
    return d * (1 - jitter), d * (1 + jitter)


class InteropCase(unittest.TestCase):
    retry_base_delay = 0.2
    retry_jitter = 0.1

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.prefix = unique(f"iop-{self.id().rsplit('.', 1)[-1][5:7]}")
        self.group = unique("evbus")
        self.py_group = unique("py")
        self.config = self.write_config("bus.yaml", self.prefix)
        self.log_mark = pybus.LOG.deserialization_errors()

    def tearDown(self):
        self.tmp.cleanup()

    def write_config(self, name, prefix, extra=""):
        path = os.path.join(self.tmp.name, name)
        with open(path, "w") as f:
            f.write(f"bootstrap_servers: {BOOTSTRAP}\n"
                    f"topic_prefix: {prefix}\n"
                    f"consumer_group: {self.group}\n"
                    f"schemas: [{ORDERS_SCHEMA}, {INTEROP_SCHEMA}]\n"
                    f"retry_base_delay: {self.retry_base_delay}\n"
                    f"retry_max_delay: 1.0\n"
                    f"retry_jitter: {self.retry_jitter}\n"
                    f"{extra}")
        return path

    def evbus(self, *args, config=None, **kw):
        return run(["-c", config or self.config, *args], **kw)

    def ok(self, *args, **kw):
        r = self.evbus(*args, **kw)
        self.assertEqual(r.code, 0, r)
        return r

    async def ok_async(self, *args, **kw):
        # In a thread, so the Python bus's background consumer keeps running meanwhile.
        return await pybus.asyncio.to_thread(self.ok, *args, **kw)

    def assert_no_python_failures(self, stats, consumed):
        self.assertEqual(stats["events_consumed"], consumed, stats)
        self.assertEqual(stats["events_processed_success"], consumed, stats)
        self.assertEqual(stats["events_processed_failed"], 0, stats)
        self.assertEqual(stats["handler_errors"], 0, stats)
        self.assertEqual(stats["messages_sent_to_dlq"], 0, stats)
        self.assertEqual(pybus.LOG.deserialization_errors() - self.log_mark, 0)

    def start_exec_consumer(self, handler_body, config=None):
        """`evbus consume --exec` in the background, with a handler script; stop with stop_exec."""
        script = os.path.join(self.tmp.name, f"handler-{uuid.uuid4().hex[:6]}.sh")
        with open(script, "w") as f:
            f.write("#!/bin/sh\n" + handler_body)
        os.chmod(script, 0o755)
        err = open(os.path.join(self.tmp.name, "exec.err"), "w")
        proc = subprocess.Popen([BINARY, "-c", config or self.config, "consume", "--exec", script],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
        self.addCleanup(self.stop_exec, proc, err)
        return proc

    def stop_exec(self, proc, err=None):
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if err is not None and not err.closed:
            err.close()


# ------------------------------------------------------------------------------------------------
@needs_interop
class EvbusToPython(InteropCase):
    def test_1_python_handlers_get_identical_typed_events_in_aggregate_order(self):
        self.ok("topics", "create", "--partitions", "3")
        aggregates = [str(uuid.uuid4()) for _ in range(9)]
        full = mixed_events(aggregates, 5)  # 45 events
        partial_aggs = [str(uuid.uuid4()) for _ in range(3)]
        partial = [{"event_type": "OrderShipped", "aggregate_id": a, "tracking_number": f"P{n}"}
                   for n, a in enumerate(partial_aggs)]
        pub = self.ok("publish", "--output", "json", stdin=jsonl(full + partial))
        outcomes = pub.json_lines()
        self.assertEqual([o["status"] for o in outcomes], ["delivered"] * 48, pub)
        # Outcomes come in delivery order; `source` names the input line.
        partial_ids = {o["event_id"]: o["aggregate_id"] for o in outcomes
                       if int(o["source"].split(":")[1]) > 45}
        self.assertEqual(sorted(partial_ids.values()), sorted(partial_aggs))
        started = datetime.now(timezone.utc)

        async def scenario():
            recorder = pybus.Recorder()
            async with pybus.PyBus(self.prefix, self.py_group) as py:
                for cls in (OrderPlaced, OrderShipped, InvoiceIssued):
                    py.subscribe(cls, recorder)
                py.start_consuming()
                await py.until_succeeded(48, 60)
                await py.stop_consuming()
                return recorder.received, py.stats()

        received, stats = pybus.run(scenario())
        self.assertEqual(len(received), 48)
        self.assert_no_python_failures(stats, 48)
        raw = {json.loads(r.value)["event_id"]: r for r in pybus.run(read_raw(f"{self.prefix}.stream"))}

        by_id = {str(e.event_id): e for e in received}
        for sent in full:
            got = by_id[sent["event_id"]]
            expected = python_event(sent)
            self.assertIs(type(got), type(expected))
            self.assertEqual(got, expected)  # every field, typed
            # occurred_at to the microsecond, offset kept (== alone compares instants only)
            self.assertEqual((got.occurred_at, got.occurred_at.utcoffset()),
                             (expected.occurred_at, expected.occurred_at.utcoffset()))
            self.assertEqual((got.event_id, got.aggregate_id, got.correlation_id),
                             (uuid.UUID(sent["event_id"]), uuid.UUID(sent["aggregate_id"]),
                              uuid.UUID(sent["correlation_id"])))
            self.assertEqual((got.event_version, got.aggregate_version), (1, sent["aggregate_version"]))
            # Python re-serialises what it decoded to exactly the bytes evbus put on the wire.
            self.assertEqual(raw[sent["event_id"]].value, got.model_dump_json().encode())
        for event_id, agg in partial_ids.items():
            got = by_id[event_id]
            self.assertIsInstance(got, OrderShipped)
            self.assertEqual(str(got.aggregate_id), agg)
            self.assertEqual(got.occurred_at.utcoffset(), timedelta(0))
            self.assertLess(abs(got.occurred_at - started), timedelta(minutes=2))
            self.assertEqual(got.correlation_id.version, 4)
            self.assertEqual(raw[event_id].value, got.model_dump_json().encode())
        self.assertIsInstance(by_id[full[2]["event_id"]], InvoiceIssued)

        # Per-aggregate order: each aggregate's versions arrive as 1..5.
        order = {}
        for e in received:
            order.setdefault(str(e.aggregate_id), []).append(e.aggregate_version)
        for agg in aggregates:
            self.assertEqual(order[agg], [1, 2, 3, 4, 5], agg)


# ------------------------------------------------------------------------------------------------
@needs_interop
class PythonToEvbus(InteropCase):
    def test_2_evbus_reads_python_events_and_writes_the_same_bytes(self):
        inputs = lenient_inputs() + mixed_events([str(uuid.uuid4()) for _ in range(3)], 2)
        events = [python_event(raw) for raw in inputs]
        self.ok("topics", "create", "--partitions", "3")

        async def publish():
            async with pybus.PyBus(self.prefix, self.py_group) as py:
                await pybus.bounded(py.bus.publish(events), 30, "Python publish")
                return py.stats()

        self.assertEqual(pybus.run(publish())["events_published"], len(events))
        python_records = {json.loads(r.value)["event_id"]: r
                          for r in pybus.run(read_raw(f"{self.prefix}.stream"))}
        self.assertEqual(len(python_records), len(events))
        for e in events:
            self.assertEqual(python_records[str(e.event_id)].value, e.model_dump_json().encode())

        # evbus consume shows every Python event, schema-valid, same values, same headers.
        consumed = self.ok("consume", "--from", "beginning", "--exit-at-end")
        rows = [json.loads(l) for l in consumed.out.split("\n") if l.strip()]
        self.assertEqual(len(rows), len(events))
        self.assertNotIn("failed validation", consumed.err)
        for row in rows:
            self.assertNotIn("problems", row, row)
            rec = python_records[row["event"]["event_id"]]
            self.assertEqual(row["event"], json.loads(rec.value))
            self.assertEqual(row["key"], rec.key.decode())
            self.assertEqual([tuple(h) for h in row["headers"]], header_list(rec))
            self.assertEqual((row["partition"], row["offset"]), (rec.partition, rec.offset))

        # The same field values given to evbus: identical key, headers, partition and value bytes.
        dry = self.ok("publish", "--dry-run", stdin=jsonl(inputs))
        planned = parse_dry_run(dry.out)
        self.assertEqual(len(planned), len(events))
        for block, e in zip(planned, events):
            rec = python_records[str(e.event_id)]
            self.assertEqual(block["value"].encode(), rec.value, block["value"])
            self.assertEqual(block["headers"], header_list(rec))
            self.assertEqual((block["key"], block["partition"]), (rec.key.decode(), rec.partition))

        # ...and for real, read back raw from another bus topic.
        other = self.write_config("other.yaml", self.prefix + "-evbus")
        self.ok("publish", "--quiet", stdin=jsonl(inputs), config=other)
        evbus_records = pybus.run(read_raw(f"{self.prefix}-evbus.stream"))
        self.assertEqual(len(evbus_records), len(events))
        for rec in evbus_records:
            mine = python_records[json.loads(rec.value)["event_id"]]
            self.assertEqual((rec.key, rec.value, header_list(rec)),
                             (mine.key, mine.value, header_list(mine)))

    def test_2b_decimal_given_as_a_json_float_renders_like_domain_event_parsing(self):
        """DomainEvent has a mode="before" validator, so pydantic parses the JSON to Python values
        first and a float becomes Decimal(repr(float)): 1e5 -> "100000.0", 1e16 -> "1E+16",
        1.0 -> "1.0". evbus renders decimals the same way."""
        inputs = []
        for amount in ["1e5", "100000.0", "1e+16", "1.0", "-0.0", "1e22"]:
            inputs.append(json.loads(
                '{"event_type":"InvoiceIssued","aggregate_id":"%s","occurred_at":"2025-01-15T10:30:00Z",'
                '"event_id":"%s","correlation_id":"%s","amount":%s,"due_at":"2025-02-01T00:00:00Z",'
                '"customer_ref":"%s","billing_address":{"city":"X"},"lines":[],"tags":[]}'
                % (uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), amount, uuid.uuid4())))
        dry = self.ok("publish", "--dry-run", stdin=jsonl(inputs))
        values = [b["value"] for b in parse_dry_run(dry.out)]
        self.assertEqual(values, [python_event(raw).model_dump_json() for raw in inputs])


# ------------------------------------------------------------------------------------------------
@needs_interop
class SamePartitions(InteropCase):
    def test_3_thousand_aggregates_land_on_the_same_of_six_partitions(self):
        self.ok("topics", "create", "--partitions", "6")
        self.assertEqual(len(pybus.run(pybus.partitions_of(f"{self.prefix}.stream"))), 6)
        aggregates = [str(uuid.uuid4()) for _ in range(1000)]

        async def publish():
            async with pybus.PyBus(self.prefix, self.py_group) as py:
                events = [OrderPlaced(aggregate_id=uuid.UUID(a), customer_id="C", total=1.0)
                          for a in aggregates]
                await pybus.bounded(py.bus.publish(events), 60, "Python publish of 1000 events")

        pybus.run(publish())
        python_partition = {r.key.decode(): r.partition
                            for r in pybus.run(read_raw(f"{self.prefix}.stream"))}
        self.assertEqual(sorted(python_partition), sorted(aggregates))

        lines = jsonl({"event_type": "OrderShipped", "aggregate_id": a, "tracking_number": "T"}
                      for a in aggregates)
        planned = {o["aggregate_id"]: o["partition"]
                   for o in self.ok("publish", "--dry-run", "--output", "json", stdin=lines).json_lines()}
        delivered = {o["aggregate_id"]: o["partition"]
                     for o in self.ok("publish", "--output", "json", stdin=lines).json_lines()}
        differing = [a for a in aggregates if delivered.get(a) != python_partition[a]]
        self.assertEqual(differing[:3], [], f"{len(differing)} of 1000 aggregates on another partition")
        self.assertEqual(planned, delivered)
        self.assertEqual(set(delivered.values()), set(range(6)))


# ------------------------------------------------------------------------------------------------
@needs_interop
class PythonDlqToEvbus(InteropCase):
    def setUp(self):
        super().setUp()
        self.main_topic = f"{self.prefix}.stream"
        self.dlq_topic = f"{self.prefix}.stream.dlq"

    async def evbus_lists_python_dlq_record(self, event, dlq_record, last_attempt):
        count = json.loads((await self.ok_async("dlq", "count", "--output", "json")).out)
        self.assertEqual(field(count, "count", "total"), 1)
        listed = (await self.ok_async("dlq", "list", "--output", "jsonl")).json_lines()
        self.assertEqual(len(listed), 1, listed)
        entry = listed[0]
        expected = {
            ("partition", "dlq.partition"): dlq_record.partition,
            ("offset", "dlq.offset"): dlq_record.offset,
            ("key",): str(event.aggregate_id),
            ("event_type",): "OrderPlaced",
            ("event_id",): str(event.event_id),
            ("aggregate_id",): str(event.aggregate_id),
            ("reason", "dlq_reason"): "max_retries_exceeded",
            ("error_type", "error.type"): "ValueError",
            ("error_message", "error.message"): "card declined for CUST-4 ✗",
            ("retry_count", "dlq_retry_count"): 1,
            ("replay_count", "dlq_replay_count"): 0,
            ("original_topic", "original.topic"): self.main_topic,
            ("original_partition", "original.partition"): last_attempt.partition,
            ("original_offset", "original.offset"): last_attempt.offset,
            ("consumer_group", "original.consumer_group"): self.py_group,
            ("event", "body"): json.loads(event.model_dump_json()),
        }
        for names, value in expected.items():
            self.assertEqual(field(entry, *names), value, names)

    async def replay_with_evbus(self, record, *extra):
        return await self.ok_async("dlq", "replay", "--partition", str(record.partition),
                                   "--offset", str(record.offset), *extra)

    async def replay_with_python(self, py, record):
        await pybus.bounded(py.bus.replay_dlq_message(record.partition, record.offset), 20,
                            "replay_dlq_message")

    async def dlq_record_replayed(self, py, times):
        """After the failing Python consumer dead-letters the replay numbered `times` again: the
        DLQ record carrying dlq_replay_count=times."""
        await py.until(lambda: py.stats()["messages_sent_to_dlq"] == times + 1, 30,
                       f"DLQ record of replay {times}")
        found = [r for r in await read_raw(self.dlq_topic)
                 if dict(header_list(r)).get("dlq_replay_count", "0") == str(times)]
        self.assertEqual(len(found), 1, f"DLQ records with dlq_replay_count={times}")
        return found[0]

    @needs_dlq_command
    def test_4_evbus_lists_counts_and_replays_python_dlq_records_within_the_shared_limit(self):
        state = {"fail": True}
        recorder = pybus.Recorder(lambda e: ValueError(f"card declined for {e.customer_id} ✗")
                                  if state["fail"] else None)
        event = OrderPlaced(aggregate_id=uuid.uuid4(), customer_id="CUST-4", total=42.5)

        async def scenario():
            async with pybus.PyBus(self.prefix, self.py_group, max_retries=1) as py:
                py.subscribe(OrderPlaced, recorder)
                await pybus.bounded(py.bus.publish([event]), 30, "publish")
                py.start_consuming()
                await py.until(lambda: py.stats()["messages_sent_to_dlq"] == 1, 40, "first DLQ record")
                (last_attempt,) = [r for r in await read_raw(self.main_topic)
                                   if dict(header_list(r)).get("retry_count") == "1"]
                (dlq_record,) = await read_raw(self.dlq_topic)
                await self.evbus_lists_python_dlq_record(event, dlq_record, last_attempt)

                # evbus replays it; the Python consumer, now succeeding, handles it.
                state["fail"] = False
                await self.replay_with_evbus(dlq_record)
                await py.until(lambda: len(recorder.received) == 1, 30, "Python handles the replay")
                self.assertEqual(recorder.received[0], event)
                (replayed,) = [r for r in await read_raw(self.main_topic)
                               if dict(header_list(r)).get("dlq_replay_count") == "1"]
                kept = [h for h in header_list(dlq_record)
                        if not h[0].startswith("dlq_") and h[0] != "retry_count"]
                self.assertEqual(header_list(replayed),
                                 kept + [("retry_count", "0"), ("dlq_replay_count", "1")])
                self.assertEqual((replayed.key, replayed.value), (dlq_record.key, dlq_record.value))
                self.assertEqual(py.stats()["messages_sent_to_dlq"], 1)

                # One replay counter across both tools: Python replays (1), evbus (2), Python (3),
                # each copy failing back into the DLQ; then both refuse the record replayed 3 times.
                state["fail"] = True
                await self.replay_with_python(py, dlq_record)
                await self.replay_with_evbus(await self.dlq_record_replayed(py, 1))
                await self.replay_with_python(py, await self.dlq_record_replayed(py, 2))
                third = await self.dlq_record_replayed(py, 3)

                before = await record_count(self.main_topic)
                refused = await pybus.asyncio.to_thread(
                    self.evbus, "dlq", "replay", "--partition", str(third.partition),
                    "--offset", str(third.offset))
                self.assertIn("refused", (refused.out + refused.err).lower(), refused)
                with self.assertRaisesRegex(ValueError, "replayed 3 times"):
                    await self.replay_with_python(py, third)
                self.assertEqual(await record_count(self.main_topic), before,
                                 "a refused replay sent a record")

                # --force overrides; the now-succeeding Python consumer handles replay number 4.
                state["fail"] = False
                await self.replay_with_evbus(third, "--force")
                await py.until(lambda: len(recorder.received) == 2, 30, "Python handles the forced replay")
                forced = [r for r in await read_raw(self.main_topic)
                          if dict(header_list(r)).get("dlq_replay_count") == "4"]
                self.assertEqual(len(forced), 1)
                await py.stop_consuming()

        pybus.run(scenario(), timeout=170)


# ------------------------------------------------------------------------------------------------
@needs_interop
class EvbusDlqToPython(InteropCase):
    @needs_exec
    def test_5_python_reads_and_replays_evbus_dlq_records(self):
        config = self.write_config("exec.yaml", self.prefix, "max_retries: 1\n")
        main_topic, dlq_topic = f"{self.prefix}.stream", f"{self.prefix}.stream.dlq"
        aggregates = [str(uuid.uuid4()) for _ in range(3)]
        inputs = [full_event("OrderPlaced", aggregates[0], 1, "2025-03-01T08:00:00.000001Z",
                             customer_id="C-5", total=5.5),
                  full_event("OrderShipped", aggregates[1], 1, "2025-03-01T08:00:01Z",
                             tracking_number="T-5"),
                  full_event("InvoiceIssued", aggregates[2], 1, "2025-03-01T08:00:02.5+01:00",
                             **invoice_payload(5))]
        self.ok("publish", "--quiet", stdin=jsonl(inputs), config=config)
        proc = self.start_exec_consumer(
            'cat >/dev/null\necho "handler refused $EVBUS_EVENT_TYPE" >&2\nexit 3\n', config)
        pybus.run(pybus.wait_for_count(lambda: record_count(dlq_topic), 3, 60, "3 evbus DLQ records"))
        self.stop_exec(proc)
        main_records = pybus.run(read_raw(main_topic))
        self.assertEqual(len(main_records), 6)  # 3 events + 1 retry copy each
        bodies = {e["event_id"]: json.loads(python_event(e).model_dump_json()) for e in inputs}

        async def scenario():
            recorder = pybus.Recorder()
            async with pybus.PyBus(self.prefix, self.py_group) as py:
                # limit below the record count: the library only returns after reading limit+1.
                messages = await pybus.bounded(py.bus.get_dlq_messages(limit=2), 30, "get_dlq_messages")
                self.assertEqual(len(messages), 2)
                for m in messages:
                    h = m["headers"]
                    self.assertEqual(m["topic"], dlq_topic)
                    self.assertEqual(m["payload"], bodies[h["event_id"]])
                    self.assertEqual(m["key"], m["payload"]["aggregate_id"])
                    self.assertEqual(m["replay_count"], 0)
                    self.assertEqual((h["dlq_reason"], h["dlq_error_type"], h["dlq_retry_count"]),
                                     ("max_retries_exceeded", "HandlerError", "1"))
                    self.assertIn(f"handler refused {h['event_type']}", h["dlq_error_message"])
                    self.assertEqual((h["dlq_original_topic"], h["dlq_consumer_group"]),
                                     (main_topic, self.group))
                    origin = [r for r in main_records if (r.partition, r.offset) ==
                              (int(h["dlq_original_partition"]), int(h["dlq_original_offset"]))]
                    self.assertEqual(len(origin), 1)
                    self.assertEqual(dict(header_list(origin[0]))["retry_count"], "1")
                    datetime.fromisoformat(h["dlq_timestamp"])  # Python can parse evbus's timestamp

                recorder_target = messages[0]
                for cls in (OrderPlaced, OrderShipped, InvoiceIssued):
                    py.subscribe(cls, recorder)
                py.start_consuming()
                await py.until_succeeded(6, 40)
                self.assertTrue(await pybus.bounded(py.bus.replay_dlq_message(
                    recorder_target["partition"], recorder_target["offset"]), 20, "replay_dlq_message"))
                await py.until_succeeded(7, 30)
                await py.stop_consuming()
                self.assertEqual(str(recorder.received[-1].event_id),
                                 recorder_target["headers"]["event_id"])
                self.assert_no_python_failures(py.stats(), 7)
                replayed = max(await read_raw(main_topic), key=lambda r: r.timestamp)
                names = [n for n, _ in header_list(replayed)]
                self.assertEqual(names[:7], ["event_id", "event_type", "aggregate_id", "aggregate_type",
                                             "aggregate_version", "occurred_at", "correlation_id"])
                self.assertEqual(header_list(replayed)[-2:],
                                 [("retry_count", "0"), ("dlq_replay_count", "1")])
                self.assertFalse([n for n in names if n.startswith("dlq_") and n != "dlq_replay_count"])

        pybus.run(scenario())


# ------------------------------------------------------------------------------------------------
@needs_interop
class RetryCopiesInterleave(InteropCase):
    @needs_exec
    def test_6_each_consumer_continues_the_others_retry_count_and_evbus_waits_for_retry_after(self):
        config = self.write_config("exec.yaml", self.prefix, "max_retries: 2\n")
        main_topic, dlq_topic = f"{self.prefix}.stream", f"{self.prefix}.stream.dlq"
        log = os.path.join(self.tmp.name, "attempts.log")
        event = full_event("OrderShipped", str(uuid.uuid4()), 1, "2025-03-01T08:00:00Z",
                           tracking_number="X")
        self.ok("publish", "--quiet", stdin=jsonl([event]), config=config)
        recorder = pybus.Recorder(lambda e: ValueError("python handler refuses"))

        async def scenario():
            async with pybus.PyBus(self.prefix, self.py_group, max_retries=2,
                                   retry_base_delay=self.retry_base_delay,
                                   retry_jitter=self.retry_jitter) as py:
                py.subscribe(OrderShipped, recorder)
                py.start_consuming()
                self.start_exec_consumer(
                    'cat >/dev/null\n'
                    f'echo "$EVBUS_RETRY_COUNT $EVBUS_PARTITION $EVBUS_OFFSET $(date +%s.%N)" >> {log}\n'
                    'echo "evbus handler refuses" >&2\nexit 1\n', config)
                # Both fail every copy: 1 original, 2 copies with retry_count=1 (one per consumer),
                # 4 with retry_count=2, each read by both consumers -> 8 DLQ records. Waiting on
                # local state first keeps the loop free of Kafka polling while copies are written.
                await py.until(lambda: py.stats()["messages_sent_to_dlq"] >= 4 and
                               len(read_lines(log)) >= 7, 60, "4 Python DLQ sends, 7 evbus attempts")
                await pybus.wait_for_count(lambda: record_count(dlq_topic), 8, 30, "8 DLQ records")
                await pybus.asyncio.sleep(1.0)  # nothing more may follow: absence needs a pause
                await py.stop_consuming()
                return py.stats()

        stats = pybus.run(scenario())
        main = pybus.run(read_raw(main_topic))
        dlq = pybus.run(read_raw(dlq_topic))
        self.assertEqual(Counter(dict(header_list(r)).get("retry_count") for r in main),
                         {None: 1, "1": 2, "2": 4})
        self.assertEqual(len(dlq), 8)
        self.assertEqual(Counter((dict(header_list(r))["dlq_consumer_group"],
                                  dict(header_list(r))["dlq_error_type"]) for r in dlq),
                         {(self.py_group, "ValueError"): 4, (self.group, "HandlerError"): 4})
        self.assertTrue(all(dict(header_list(r))["dlq_retry_count"] == "2" and
                            dict(header_list(r))["dlq_reason"] == "max_retries_exceeded" for r in dlq))
        self.assertEqual((stats["events_consumed"], stats["events_processed_failed"],
                          stats["messages_sent_to_dlq"]), (7, 7, 4), stats)
        self.assertEqual(len(recorder.attempts), 7)

        # Every copy, by either side: retry_after = send time + the policy's delay, as float text.
        # The record's timestamp is taken after retry_after was computed, never before, so only
        # the lower bound needs room for a busy moment between the two.
        for r in main:
            h = dict(header_list(r))
            if "retry_count" not in h:
                continue
            lo, hi = retry_delay_bounds(int(h["retry_count"]), self.retry_base_delay,
                                        self.retry_jitter)
            delay = float(h["retry_after"]) - r.timestamp / 1000
            self.assertTrue(lo - 0.1 <= delay <= hi + 0.002, (h["retry_count"], delay, h["retry_after"]))

        # evbus saw every record, its own copies and Python's, with their counts, and never ran a
        # copy before its retry_after.
        attempts = [line.split() for line in read_lines(log)]
        self.assertEqual(sorted(int(a[0]) for a in attempts), [0, 1, 1, 2, 2, 2, 2])
        by_place = {(r.partition, r.offset): dict(header_list(r)) for r in main}
        for count, partition, offset, at in attempts:
            h = by_place[(int(partition), int(offset))]
            self.assertEqual(h.get("retry_count", "0"), count)
            if "retry_after" in h:
                self.assertGreaterEqual(float(at), float(h["retry_after"]) - 0.01, h)


# ------------------------------------------------------------------------------------------------
@needs_interop
class Compression(InteropCase):
    def test_7_python_reads_gzip_and_uncompressed_evbus_records(self):
        gzip_cfg = self.write_config("gzip.yaml", self.prefix, "compression_type: gzip\n")
        none_cfg = self.write_config("none.yaml", self.prefix, "compression_type: none\n")
        agg = str(uuid.uuid4())
        gz = [full_event("OrderShipped", agg, v, "2025-01-15T10:30:00.000007Z", tracking_number="g" * 500)
              for v in range(1, 5)]
        plain = [full_event("OrderShipped", agg, v, "2025-01-15T10:30:00.000007Z", tracking_number=f"n{v}")
                 for v in range(5, 9)]
        self.ok("publish", "--quiet", stdin=jsonl(gz), config=gzip_cfg)
        self.ok("publish", "--quiet", stdin=jsonl(plain), config=none_cfg)

        async def scenario():
            recorder = pybus.Recorder()
            async with pybus.PyBus(self.prefix, self.py_group) as py:
                py.subscribe(OrderShipped, recorder)
                py.start_consuming()
                await py.until_succeeded(8, 40)
                await py.stop_consuming()
                return recorder.received, py.stats()

        received, stats = pybus.run(scenario())
        self.assertEqual(received, [python_event(e) for e in gz + plain])
        self.assert_no_python_failures(stats, 8)

    def test_7b_codecs_python_cannot_read_are_warned_about(self):
        from aiokafka import codec
        # The premise, on this very install: gzip works, the others need cramjam.
        self.assertEqual((codec.has_gzip(), codec.has_snappy(), codec.has_lz4(), codec.has_zstd()),
                         (True, False, False, False))
        line = jsonl([{"event_type": "OrderShipped", "aggregate_id": str(uuid.uuid4()),
                       "tracking_number": "Z"}])
        for codec_name in ["snappy", "lz4", "zstd", "gzip", "none"]:
            cfg = self.write_config(f"{codec_name}.yaml", self.prefix, f"compression_type: {codec_name}\n")
            shown = self.ok("config", "show", config=cfg)
            dry = self.ok("publish", "--dry-run", stdin=line, config=cfg)
            for r in (shown, dry):
                warned = re.search(
                    rf"warning: eventsource-py consumers need .*cramjam.*{codec_name}", r.err)
                self.assertEqual(bool(warned), codec_name in ("snappy", "lz4", "zstd"), (codec_name, r.err))

    def test_7c_a_zstd_record_stalls_the_python_consumer(self):
        """Why the warning matters: the Python bus cannot decode the batch, and its consume loop
        reconnects forever instead of moving on (the record is never handled nor dead-lettered)."""
        cfg = self.write_config("zstd.yaml", self.prefix, "compression_type: zstd\n")
        self.ok("publish", "--quiet", "--type", "OrderShipped", "--aggregate-id", str(uuid.uuid4()),
                "--data", '{"tracking_number":"Z"}', config=cfg)

        async def scenario():
            recorder = pybus.Recorder()
            async with pybus.PyBus(self.prefix, self.py_group) as py:
                py.subscribe(OrderShipped, recorder)
                py.start_consuming()
                await py.until(lambda: py.stats()["reconnections"] >= 1, 30, "a consume-loop reconnect")
                await py.stop_consuming()
                return recorder.received, py.stats()

        with warnings.catch_warnings():
            # Stopped mid-reconnect, the library leaves its half-built consumer's connection
            # open; collect it here rather than warn in whichever test runs next.
            warnings.simplefilter("ignore", ResourceWarning)
            received, stats = pybus.run(scenario())
            gc.collect()
        self.assertEqual((received, stats["events_consumed"], stats["messages_sent_to_dlq"]), ([], 0, 0))


if __name__ == "__main__":
    unittest.main(verbosity=2)
