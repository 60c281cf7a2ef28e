"""What a running evbus shows an operator: the Prometheus endpoint (scraped with a real HTTP client
while publish and consume run, counters equal to what happened), --stats-json written also after
SIGTERM, and the progress line (only on a terminal)."""
import json
import os
import re
import signal
import subprocess
import sys
import threading
import urllib.request
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from evbus_testlib import BINARY, BusTestCase, needs_broker, unittest, wait_until  # noqa: E402
from test_stats import order_lines, parse_prometheus, sample  # noqa: E402

STATS_KEYS = ["events_published", "events_consumed", "events_processed_success",
              "events_processed_failed", "messages_sent_to_dlq", "handler_errors", "reconnections",
              "rebalance_count", "last_publish_at", "last_consume_at", "last_error_at",
              "connected_at"]
ISO_PY = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?\+00:00$")


class Running:
    """A long-running evbus with its stdout and stderr collected line by line."""

    def __init__(self, args):
        self.proc = subprocess.Popen([BINARY, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.out, self.err = [], []
        for stream, lines in ((self.proc.stdout, self.out), (self.proc.stderr, self.err)):
            threading.Thread(target=lambda s=stream, l=lines: [l.append(x) for x in s],
                             daemon=True).start()

    def metrics_url(self):
        def announced():
            if self.proc.poll() is not None:
                raise AssertionError(f"evbus exited {self.proc.returncode}: {''.join(self.err)}")
            for line in self.err:
                if m := re.match(r"evbus: metrics at (http://\S+/metrics)$", line.strip()):
                    return m.group(1)
            return None
        return wait_until(announced, what="the metrics endpoint to be announced on stderr")

    def send(self, text):
        self.proc.stdin.write(text)
        self.proc.stdin.flush()

    def finish(self, sig=None, timeout=60):
        if sig:
            self.proc.send_signal(sig)
        elif self.proc.stdin:
            self.proc.stdin.close()
        code = self.proc.wait(timeout=timeout)
        for s in (self.proc.stdout, self.proc.stderr, self.proc.stdin):
            if s and not s.closed:
                try:
                    s.close()
                except BrokenPipeError:
                    pass
        return code


def scrape(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return r.read().decode()


def total(samples, name, **match):
    return sum(v for (n, labels), v in samples.items()
               if n == name and all((k, val) in labels for k, val in match.items()))


@needs_broker
class MetricsEndpointTest(BusTestCase):
    def scrape_until(self, url, condition, what):
        state = {}

        def check():
            state["samples"] = parse_prometheus(self, scrape(url))
            return condition(state["samples"])
        wait_until(check, what=what)
        return state["samples"]

    def test_publish_scraped_while_running_counts_exactly_what_happened(self):
        self.ok("topics", "create", "--partitions", "3")
        run = Running(["-c", self.config, "publish", "--quiet", "--metrics-port", "0"])
        try:
            url = run.metrics_url()
            self.assertTrue(url.startswith("http://127.0.0.1:"), url)  # loopback unless told
            # 3 aggregates x 4 versions = 6 OrderPlaced + 6 OrderShipped, and one invalid line.
            run.send(order_lines([str(uuid.uuid4()) for _ in range(3)], 4) + '{"event_type":1}\n')
            topic = f"{self.prefix}.stream"
            s = self.scrape_until(
                url, lambda s: total(s, "kafka_eventbus_messages_published_total") == 12,
                "12 acknowledged events in /metrics")
            self.assertEqual(run.proc.poll(), None, "still running: the scrape was live")
            labels = dict(messaging_system="kafka", messaging_destination=topic)
            self.assertEqual(sample(s, "kafka_eventbus_messages_published_total",
                                    event_type="OrderPlaced", **labels), 6)
            self.assertEqual(sample(s, "kafka_eventbus_messages_published_total",
                                    event_type="OrderShipped", **labels), 6)
            self.assertEqual(total(s, "kafka_eventbus_publish_errors_total",
                                   error_type="ValidationError"), 1)
            self.assertEqual(sample(s, "kafka_eventbus_publish_duration_milliseconds_count",
                                    messaging_destination=topic), 12)
            self.assertEqual(sample(s, "kafka_eventbus_batch_size_count"), 12)
            self.assertEqual(sample(s, "kafka_eventbus_connections_active",
                                    messaging_kafka_consumer_group=self.group), 1)
            self.assertEqual(sample(s, "kafka_eventbus_messages_consumed_total"), None)
            self.assertEqual(sample(s, "kafka_eventbus_reconnections_total"), 0)
        finally:
            code = run.finish()
        self.assertEqual(code, 3, "".join(run.err))  # the invalid line is still an error

    def test_consume_scraped_while_running_counts_exactly_what_happened(self):
        # Needs consume --metrics-port (wired by the consume change; see docs/OPERATIONS.md).
        self.ok("topics", "create", "--partitions", "3")
        self.ok("publish", stdin=order_lines([str(uuid.uuid4()) for _ in range(4)], 3))  # 8 + 4
        run = Running(["-c", self.config, "consume", "--from", "beginning", "--metrics-port", "0"])
        try:
            url = run.metrics_url()
            topic = f"{self.prefix}.stream"
            s = self.scrape_until(
                url, lambda s: total(s, "kafka_eventbus_messages_consumed_total") == 12,
                "12 consumed records in /metrics")
            self.assertEqual(run.proc.poll(), None, "still running: the scrape was live")
            self.assertEqual(total(s, "kafka_eventbus_messages_consumed_total",
                                   messaging_destination=topic, event_type="OrderPlaced"), 8)
            self.assertEqual(total(s, "kafka_eventbus_messages_consumed_total",
                                   messaging_destination=topic, event_type="OrderShipped"), 4)
            partitions = {dict(l)["messaging_kafka_partition"] for (n, l), _ in s.items()
                          if n == "kafka_eventbus_messages_consumed_total"}
            self.assertTrue(partitions <= {"0", "1", "2"} and partitions)
            self.assertEqual(sample(s, "kafka_eventbus_connections_active",
                                    messaging_kafka_consumer_group=self.group), 1)
            self.assertEqual(sample(s, "kafka_eventbus_consume_duration_milliseconds_count",
                                    messaging_destination=topic), 12)
            self.assertEqual(total(s, "kafka_eventbus_publish_errors_total"), 0)
        finally:
            run.finish(signal.SIGTERM)


@needs_broker
class StatsJsonTest(BusTestCase):
    def check_stats_file(self, path):
        with open(path) as f:
            stats = json.load(f)
        self.assertEqual(list(stats), STATS_KEYS)
        for key in ("connected_at", "last_publish_at", "last_consume_at", "last_error_at"):
            self.assertTrue(stats[key] is None or ISO_PY.match(stats[key]), stats[key])
        return stats

    def test_publish_writes_stats_json_after_sigterm(self):
        path = os.path.join(self.tmp.name, "run.json")
        run = Running(["-c", self.config, "publish", "--stats-json", path])
        try:
            run.send(order_lines([str(uuid.uuid4()) for _ in range(3)], 1))
            wait_until(lambda: sum(l.startswith("delivered ") for l in run.out) == 3,
                       what="3 delivered lines while stdin stays open")
            self.assertFalse(os.path.exists(path), "written when the command ends, not before")
        finally:
            code = run.finish(signal.SIGTERM)
        self.assertEqual(code, 130, "".join(run.err))
        stats = self.check_stats_file(path)
        self.assertEqual(stats["events_published"], 3)
        self.assertEqual(stats["events_consumed"], 0)
        self.assertIsNotNone(stats["connected_at"])
        self.assertIsNotNone(stats["last_publish_at"])
        self.assertIsNone(stats["last_error_at"])
        self.assertIn("3 delivered, 0 invalid, 0 failed", "".join(run.err))

    def test_publish_writes_stats_json_when_it_cannot_connect(self):
        path = os.path.join(self.tmp.name, "run.json")
        r = self.evbus("-b", "127.0.0.1:1", "publish", "--timeout", "1", "--stats-json", path,
                       stdin="")
        self.assertEqual(r.code, 1, r)
        stats = self.check_stats_file(path)
        self.assertEqual(stats["events_published"], 0)
        self.assertIsNone(stats["connected_at"])

    def test_consume_writes_stats_json_after_sigterm(self):
        # Needs consume --stats-json FILE (wired by the consume change; see docs/OPERATIONS.md).
        self.ok("publish", stdin=order_lines([str(uuid.uuid4()) for _ in range(5)], 1))
        path = os.path.join(self.tmp.name, "run.json")
        run = Running(["-c", self.config, "consume", "--stats-json", path])
        try:
            wait_until(lambda: self.assertIsNone(run.proc.poll(), "".join(run.err))
                       or len(run.out) == 5, what="5 consumed records")
        finally:
            code = run.finish(signal.SIGTERM)
        self.assertIn(code, (0, 130), "".join(run.err))
        stats = self.check_stats_file(path)
        self.assertEqual(stats["events_consumed"], 5)
        self.assertIsNotNone(stats["last_consume_at"])


@needs_broker
class ProgressTest(BusTestCase):
    def events_file(self, n_aggregates=50, versions=4):
        path = os.path.join(self.tmp.name, "events.jsonl")
        with open(path, "w") as f:
            f.write(order_lines([str(uuid.uuid4()) for _ in range(n_aggregates)], versions))
        return path

    def test_no_progress_when_stderr_is_not_a_terminal(self):
        r = self.ok("publish", "--file", self.events_file(), "--output", "json")
        self.assertEqual(len(r.json_lines()), 200)
        self.assertNotIn("\r", r.err)
        self.assertNotIn("\x1b", r.err)
        self.assertEqual(r.err.strip().splitlines()[-1],
                         "evbus: publish: 200 read, 200 delivered, 0 invalid, 0 failed")

    def in_terminal(self, command):
        """Runs a shell command under a pseudo-terminal (script(1)); returns what it showed."""
        proc = subprocess.run(["script", "-qec", command, "/dev/null"], capture_output=True,
                              timeout=120, stdin=subprocess.DEVNULL)  # bytes: keep every \r
        self.assertEqual(proc.returncode, 0, proc)
        return proc.stdout.decode()

    def test_progress_line_appears_on_a_terminal_and_not_with_quiet(self):
        events = self.events_file()
        out_file = os.path.join(self.tmp.name, "out.jsonl")
        base = f"'{BINARY}' -c '{self.config}' publish --file '{events}'"
        shown = self.in_terminal(f"{base} --output json > '{out_file}'")
        self.assertRegex(shown, r"\r\x1b\[2Kpublish: \d+ events  \d+/s  0:\d\d")
        self.assertIn("ETA", shown)  # the file's size is known
        self.assertIn("200 delivered", shown)
        with open(out_file) as f:
            self.assertEqual(sum(1 for _ in f), 200)  # stdout stays clean data
        quiet = self.in_terminal(f"{base} --quiet")
        self.assertNotIn("events  ", quiet)
        self.assertNotIn("\x1b[2K", quiet)

    def test_dlq_scans_show_progress_on_a_terminal_only(self):
        self.ok("publish", "--file", self.events_file(), "--quiet")
        # Any topic can be read as a DLQ; the bus topic gives 200 records to scan.
        topic = f"{self.prefix}.stream"
        base = f"'{BINARY}' -c '{self.config}' dlq"
        shown = self.in_terminal(f"{base} count --by type --topic {topic}")
        self.assertRegex(shown, r"\r\x1b\[2Kdlq count --by type: \d+ records")
        self.assertIn("200 record(s) by type", shown)
        listed = self.in_terminal(f"{base} list --topic {topic} --output jsonl > /dev/null")
        self.assertIn("dlq list: ", listed)
        plain = self.ok("dlq", "list", "--topic", topic, "--output", "jsonl")
        self.assertEqual(len(plain.lines()), 200)
        self.assertNotIn("\x1b", plain.err)


if __name__ == "__main__":
    unittest.main(verbosity=2)
