"""`evbus stats` against the real broker: a known bus state (events per partition, a group that
consumed part of them, a DLQ with known records and ages) read back as table, JSON and Prometheus
text; --by-type scans; --watch rates; absent topics and groups; and the operator CLI around it
(--version, completion scripts, examples in --help)."""
import datetime
import json
import os
import re
import signal
import subprocess
import sys
import threading
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from evbus_testlib import (BINARY, BOOTSTRAP, BusTestCase, needs_broker, run,  # noqa: E402
                           unittest, wait_until, write_bus_config)

# One exposition-format line: HELP, TYPE, or a sample with well-formed labels and value.
NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
VALUE = r"(?:[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[+-]Inf|NaN)"
HELP_RE = re.compile(rf"# HELP ({NAME}) .*")
TYPE_RE = re.compile(rf"# TYPE ({NAME}) (counter|gauge|histogram|summary|untyped)")
SAMPLE_RE = re.compile(rf"({NAME})(\{{{LABEL}(?:,{LABEL})*\}})? ({VALUE})")
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"')


def parse_prometheus(test, text):
    """Strict text exposition format 0.0.4 check; returns {(name, frozenset(labels)): value}."""
    test.assertTrue(text.endswith("\n"), "exposition must end with a newline")
    samples, types, helped = {}, {}, set()
    for line in text.splitlines():
        if m := HELP_RE.fullmatch(line):
            test.assertNotIn(m.group(1), helped, f"second HELP for {m.group(1)}")
            helped.add(m.group(1))
            continue
        if m := TYPE_RE.fullmatch(line):
            test.assertNotIn(m.group(1), types, f"second TYPE for {m.group(1)}")
            types[m.group(1)] = m.group(2)
            continue
        m = SAMPLE_RE.fullmatch(line)
        test.assertIsNotNone(m, f"not an exposition line: {line!r}")
        name, labels = m.group(1), dict(LABEL_RE.findall(m.group(2) or ""))
        family = re.sub(r"_(bucket|sum|count)$", "", name)
        if types.get(family) != "histogram":
            family = name
        test.assertIn(family, types, f"sample {name} before its TYPE line")
        key = (name, frozenset(labels.items()))
        test.assertNotIn(key, samples, f"duplicate sample {line!r}")
        samples[key] = float(m.group(3))
    # Histograms: cumulative buckets ending in le="+Inf" equal to _count, plus _sum.
    for family, kind in types.items():
        if kind != "histogram":
            continue
        series = {}
        for (name, labels), value in samples.items():
            if name == family + "_bucket":
                rest = frozenset(l for l in labels if l[0] != "le")
                series.setdefault(rest, []).append((dict(labels)["le"], value))
        for rest, buckets in series.items():
            les = [le for le, _ in buckets]
            test.assertEqual(les[-1] if "+Inf" not in les else "+Inf", "+Inf")
            ordered = sorted(buckets, key=lambda b: float("inf") if b[0] == "+Inf" else float(b[0]))
            counts = [v for _, v in ordered]
            test.assertEqual(counts, sorted(counts), f"{family} buckets not cumulative")
            test.assertEqual(counts[-1], samples[(family + "_count", rest)])
            test.assertIn((family + "_sum", rest), samples)
    return samples


def sample(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())))


def iso_ago(**delta):
    return (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(**delta)).isoformat()


def kcat_produce(topic, partition, value, headers):
    args = ["kcat", "-P", "-b", BOOTSTRAP, "-t", topic, "-p", str(partition)]
    for name, val in headers:
        args += ["-H", f"{name}={val}"]
    subprocess.run(args, input=value, text=True, check=True, timeout=60)


def order_lines(aggregates, versions):
    lines = []
    for v in range(1, versions + 1):
        for i, agg in enumerate(aggregates):
            if v % 2:
                e = {"event_type": "OrderPlaced", "aggregate_id": agg, "aggregate_version": v,
                     "customer_id": f"C-{i}", "total": 10.0 + v}
            else:
                e = {"event_type": "OrderShipped", "aggregate_id": agg, "aggregate_version": v,
                     "tracking_number": f"T-{i}-{v}"}
            lines.append(json.dumps(e))
    return "".join(l + "\n" for l in lines)


@needs_broker
class StatsKnownStateTest(BusTestCase):
    """One bus with a known state, checked through every output format."""

    def setUp(self):
        super().setUp()
        self.ok("topics", "create", "--partitions", "3")
        aggregates = [str(uuid.uuid4()) for _ in range(8)]
        pub = self.ok("publish", "--output", "json", stdin=order_lines(aggregates, 4))  # 32 events
        self.per_partition = {0: 0, 1: 0, 2: 0}
        for r in pub.json_lines():
            self.per_partition[r["partition"]] += 1
        self.total = 32
        self.placed, self.shipped = 16, 16
        # The configured group reads 10 of them; another group reads everything.
        self.ok("consume", "--max", "10")
        self.ok("consume", "-g", self.group + "-all", "--from", "beginning", "--exit-at-end")
        # DLQ: partition 0 holds a record dead-lettered 2 hours ago; partition 1 one from 10 min
        # ago and then the newest, 1 minute ago.
        dlq = f"{self.prefix}.stream.dlq"
        kcat_produce(dlq, 0, '{"a":1}', [("event_type", "OrderPlaced"),
                                         ("dlq_reason", "max_retries_exceeded"),
                                         ("dlq_timestamp", iso_ago(hours=2))])
        kcat_produce(dlq, 1, '{"a":2}', [("dlq_timestamp", iso_ago(minutes=10))])
        kcat_produce(dlq, 1, '{"a":3}', [("dlq_timestamp", iso_ago(minutes=1))])

    def test_stats_match_the_known_state_in_json_table_and_prometheus(self):
        s = json.loads(self.ok("stats", "--output", "json").out)
        main, dlq = s["topics"]
        self.assertEqual((main["topic"], main["role"], main["exists"]),
                         (f"{self.prefix}.stream", "main", True))
        self.assertEqual({p["partition"]: p["high"] for p in main["partitions"]}, self.per_partition)
        self.assertTrue(all(p["low"] == 0 and p["messages"] == p["high"] for p in main["partitions"]))
        self.assertTrue(all(p["leader"] >= 0 for p in main["partitions"]))
        self.assertEqual(main["messages"], self.total)
        self.assertEqual([p["high"] for p in dlq["partitions"]], [1, 2, 0])
        self.assertEqual(dlq["messages"], 3)

        groups = {g["group"]: g for g in s["groups"]}
        mine = groups[self.group]
        self.assertTrue(mine["configured"])
        self.assertEqual(s["groups"][0]["group"], self.group, "the configured group comes first")
        self.assertEqual(mine["state"], "Empty")
        self.assertEqual(mine["members"], 0)
        consumed = sum(p["committed"] or 0 for p in mine["partitions"])
        self.assertEqual(consumed, 10)
        self.assertEqual(mine["lag"], self.total - 10)
        for p in mine["partitions"]:
            self.assertEqual(p["high"], self.per_partition[p["partition"]])
            self.assertEqual(p["lag"], p["high"] - (p["committed"] or 0))
        everything = groups[self.group + "-all"]
        self.assertFalse(everything["configured"])
        self.assertEqual(everything["lag"], 0)
        self.assertEqual({p["partition"]: p["committed"] for p in everything["partitions"]},
                         {k: (v if v else None) for k, v in self.per_partition.items()})

        self.assertEqual(s["dlq"]["depth"], 3)
        oldest, newest = s["dlq"]["oldest"], s["dlq"]["newest"]
        self.assertEqual((oldest["partition"], oldest["offset"]), (0, 0))
        self.assertAlmostEqual(oldest["age_seconds"], 7200, delta=120)
        self.assertEqual((newest["partition"], newest["offset"]), (1, 1))
        self.assertAlmostEqual(newest["age_seconds"], 60, delta=60)
        self.assertNotIn("by_type", s)

        table = self.ok("stats").out
        self.assertIn(f"{self.group} *", table)
        self.assertRegex(table, rf"{re.escape(self.prefix)}\.stream +total +{self.total}\n")
        self.assertRegex(table, rf"\n +total +{self.total - 10}\n")
        self.assertRegex(table, r"DLQ \S+: 3 records; oldest (1h 5\dm|2h 0\dm) ago .*; "
                                r"newest (\d+s|\dm \d\ds) ago")

        prom = parse_prometheus(self, self.ok("stats", "--output", "prometheus").out)
        topic = f"{self.prefix}.stream"
        for partition, count in self.per_partition.items():
            self.assertEqual(sample(prom, "kafka_eventbus_topic_high_watermark",
                                    messaging_destination=topic,
                                    messaging_kafka_partition=str(partition)), count)
        lag = sum(v for (name, labels), v in prom.items()
                  if name == "kafka_eventbus_consumer_lag"
                  and ("messaging_kafka_consumer_group", self.group) in labels)
        self.assertEqual(lag, self.total - 10)
        self.assertEqual(sample(prom, "kafka_eventbus_dlq_depth",
                                messaging_destination=topic + ".dlq"), 3)
        self.assertAlmostEqual(sample(prom, "kafka_eventbus_dlq_oldest_age_seconds",
                                      messaging_destination=topic + ".dlq"), 7200, delta=120)

    def test_by_type_counts_event_type_headers_and_says_how_far_it_went(self):
        full = json.loads(self.ok("stats", "--by-type", "--output", "json").out)["by_type"]
        self.assertEqual(full["counts"], {"OrderPlaced": self.placed, "OrderShipped": self.shipped})
        self.assertEqual((full["scanned"], full["available"], full["complete"]),
                         (self.total, self.total, True))
        self.assertEqual(full["without_event_type"], 0)

        part = json.loads(self.ok("stats", "--by-type", "--scan-limit", "9", "--output",
                                  "json").out)["by_type"]
        self.assertEqual((part["scanned"], part["limit"], part["complete"]), (9, 9, False))
        self.assertEqual(sum(part["counts"].values()), 9)
        self.assertEqual(sum(p["to"] - p["from"] for p in part["partitions"]), 9)
        for p in part["partitions"]:  # the newest records of each partition
            if p["to"] > p["from"]:
                self.assertEqual(p["to"], self.per_partition[p["partition"]])
        table = self.ok("stats", "--by-type", "--scan-limit", "9").out
        self.assertIn(f"scanned 9 of {self.total} records, newest first; --scan-limit 9", table)

        prom = parse_prometheus(self, self.ok("stats", "--by-type", "-o", "prometheus").out)
        self.assertEqual(sample(prom, "kafka_eventbus_scan_events", event_type="OrderPlaced"),
                         self.placed)
        self.assertEqual(sample(prom, "kafka_eventbus_scan_complete"), 1)

    def test_a_named_group_that_never_consumed_is_shown_as_absent_with_full_lag(self):
        s = json.loads(self.ok("stats", "--group", "nobody-" + self.group, "-o", "json").out)
        g = s["groups"][0]
        self.assertEqual((g["group"], g["configured"], g["exists"], g["state"]),
                         ("nobody-" + self.group, True, False, "absent"))
        self.assertEqual(g["lag"], self.total)  # auto_offset_reset earliest: all of it is ahead
        self.assertIn("absent (no members, no committed offsets)",
                      self.ok("stats", "--group", "nobody-" + self.group).out)


@needs_broker
class StatsAbsentAndWatchTest(BusTestCase):
    def test_absent_topics_and_group_are_reported_plainly(self):
        r = self.ok("stats")
        self.assertEqual(r.err, "")
        self.assertRegex(r.out, rf"\n{re.escape(self.prefix)}\.stream +absent \(no such topic\)")
        self.assertIn("DLQ " + self.prefix + ".stream.dlq: absent", r.out)
        s = json.loads(self.ok("stats", "-o", "json").out)
        self.assertEqual([t["exists"] for t in s["topics"]], [False, False])
        self.assertEqual(s["groups"][0]["state"], "absent")
        self.assertEqual(s["dlq"]["depth"], 0)
        parse_prometheus(self, self.ok("stats", "-o", "prometheus").out)

    def test_watch_refreshes_with_rates_until_sigterm(self):
        self.ok("topics", "create", "--partitions", "3")
        proc = subprocess.Popen([BINARY, "-c", self.config, "stats", "--watch", "1", "-o", "json"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        docs = []  # one JSON document per line (not a terminal: no screen redraws)
        reader = threading.Thread(target=lambda: [docs.append(json.loads(l)) for l in proc.stdout],
                                  daemon=True)
        reader.start()
        try:
            wait_until(lambda: docs, what="the first snapshot")
            self.assertNotIn("rates", docs[0])
            self.ok("publish", stdin=order_lines([str(uuid.uuid4()) for _ in range(5)], 2))
            wait_until(lambda: any(d["topics"][0]["messages"] == 10 for d in docs),
                       what="a snapshot with the 10 new events")
            seen = list(docs)  # the reader keeps appending
            grew = next(i for i in range(1, len(seen))
                        if seen[i]["topics"][0]["messages"] > seen[i - 1]["topics"][0]["messages"])
            rates = seen[grew]["rates"]
            self.assertGreater(rates["messages_in_per_second"], 0)
            self.assertGreater(rates["lag_change_per_second"][self.group], 0)  # nobody reads
            steady = [d for prev, d in zip(docs, seen[1:])
                      if d["topics"][0]["messages"] == prev["topics"][0]["messages"]]
            self.assertTrue(all(d["rates"]["messages_in_per_second"] == 0 for d in steady))
        finally:
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=30)
            reader.join(timeout=10)
            proc.stdout.close()
            proc.stderr.close()
            self.assertEqual(code, 0)  # stopping a watch is its normal end


class OperatorCliTest(unittest.TestCase):
    """No broker needed: version, completion scripts and examples in --help."""

    def test_version_names_evbus_and_librdkafka(self):
        r = run(["--version"])
        self.assertEqual(r.code, 0)
        self.assertRegex(r.out.strip(), r"^evbus \d+\.\d+\.\d+ \(librdkafka \d+\.\d+\.\d+\)$")

    def test_bash_completion_completes_subcommands_flags_choices_and_event_types(self):
        import tempfile
        with tempfile.TemporaryDirectory() as tmp:
            config = write_bus_config(tmp, "p", "g")
            script = os.path.join(tmp, "evbus.bash")
            with open(script, "w") as f:
                f.write(run(["completion", "bash"]).out)
            self.assertEqual(subprocess.run(["bash", "-n", script]).returncode, 0)

            def complete(*words):
                line = " ".join(f"'{w}'" for w in words)
                cmd = (f"source {script}; COMP_WORDS=(evbus {line}); COMP_CWORD={len(words)}; "
                       "_evbus; printf '%s\\n' \"${COMPREPLY[@]}\"")
                env = dict(os.environ, PATH=os.path.dirname(os.path.abspath(BINARY)) + ":" +
                           os.environ["PATH"])
                out = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, env=env)
                return set(out.stdout.split())

            self.assertEqual(complete("st"), {"stats"})
            self.assertTrue({"--by-type", "--scan-limit", "--watch"} <= complete("stats", "--"))
            self.assertEqual(complete("stats", "--output", ""), {"table", "json", "prometheus"})
            self.assertEqual(complete("topics", ""), {"create", "list", "-h", "--help", "-c",
                                                      "--config", "-b", "--bootstrap-servers",
                                                      "--topic-prefix", "-X", "-v", "--verbose"})
            self.assertEqual(complete("-c", config, "publish", "--type", ""),
                             {"OrderPlaced", "OrderShipped"})
            self.assertTrue({"--metrics-port", "--stats-json"} <= complete("publish", "--"))

    def test_zsh_and_fish_scripts_cover_the_same_tree(self):
        zsh = run(["completion", "zsh"])
        self.assertEqual(zsh.code, 0)
        self.assertIn("bashcompinit", zsh.out)
        self.assertIn("complete -o default -F _evbus evbus", zsh.out)
        fish = run(["completion", "fish"]).out
        self.assertIn("complete -c evbus -n '__evbus_path_is ' -a stats", fish)
        self.assertIn("-n '__evbus_path_is stats' -s o -l output -x -a 'table json prometheus'", fish)
        self.assertIn("completion --event-types", fish)
        self.assertEqual(run(["completion", "tcsh"]).code, 2)

    def test_help_of_the_operator_commands_ends_with_examples(self):
        for command in (["stats"], ["completion"], ["publish"]):
            out = run([*command, "--help"]).out
            tail = out[out.rindex("Examples:"):]
            self.assertRegex(tail, r"^Examples:\n(  .*\bevbus .+\n)+\n?$", command)


if __name__ == "__main__":
    unittest.main()
