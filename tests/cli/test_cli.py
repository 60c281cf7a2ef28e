"""The built binary without a broker: exit codes, error messages that name the place, help."""
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from evbus_testlib import ORDERS_SCHEMA, SOURCE_DIR, run, unittest  # noqa: E402


def write(directory, name, text):
    path = os.path.join(directory, name)
    with open(path, "w") as f:
        f.write(text)
    return path


class CliTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def test_version_names_evbus_and_librdkafka(self):
        r = run(["--version"])
        self.assertEqual(r.code, 0)
        self.assertRegex(r.out, r"^evbus \d+\.\d+\.\d+ \(librdkafka \d+\.\d+\.\d+\)")

    def test_usage_errors_exit_2(self):
        for args in (["nosuch"], ["publish", "--output", "xml"], ["consume", "--from", "yesterday"],
                     [], ["consume", "--exec", ""], ["consume", "--max", "-1"],
                     ["dlq", "replay", "--partition", "0", "--offset", "-1"],
                     ["dlq", "replay", "--all", "--dry-run"],
                     ["dlq", "replay", "--all", "--yes", "--rate", "5/m"],
                     ["topics", "create", "--partitions", "0"]):
            r = run(args)
            self.assertEqual(r.code, 2, f"{args}: {r}")

    def test_help_of_every_subcommand_ends_with_examples(self):
        for args in (["publish"], ["consume"], ["topics"], ["topics", "create"],
                     ["topics", "list"], ["config"], ["config", "show"], ["schema"],
                     ["schema", "list"], ["schema", "check"], ["dev-broker"], ["dlq"],
                     ["dlq", "list"], ["dlq", "count"], ["dlq", "replay"], ["stats"],
                     ["completion"]):
            r = run([*args, "--help"])
            self.assertEqual(r.code, 0, r)
            self.assertIn("Examples:\n  evbus ", r.out, args)

    def test_unknown_config_key_names_file_line_and_suggestion(self):
        cfg = write(self.dir, "bus.yaml", "topic_prefix: a\nbootstrap_server: x:1\n")
        r = run(["-c", cfg, "config", "show"])
        self.assertEqual(r.code, 3, r)
        self.assertIn(f"{cfg}:2", r.err)
        self.assertIn("bootstrap_server", r.err)
        self.assertIn("bootstrap_servers", r.err)

    def test_missing_explicit_config_is_invalid_input(self):
        r = run(["-c", os.path.join(self.dir, "absent.yaml"), "config", "show"])
        self.assertEqual(r.code, 3, r)
        self.assertIn("absent.yaml", r.err)

    def test_config_show_reports_sources_and_redacts_secrets(self):
        cfg = write(self.dir, "bus.yaml",
                    "topic_prefix: shop\nsecurity_protocol: SASL_PLAINTEXT\nsasl_mechanism: PLAIN\n"
                    "sasl_username: u\nsasl_password: ${SECRET_PW}\n")
        r = run(["-c", cfg, "--bootstrap-servers", "flag:1", "config", "show", "--output", "json"],
                env={"SECRET_PW": "hunter2", "EVBUS_CONSUMER_GROUP": "from-env"})
        self.assertEqual(r.code, 0, r)
        self.assertNotIn("hunter2", r.out)
        shown = json.loads(r.out)
        self.assertEqual(shown["bootstrap_servers"], {"value": "flag:1", "source": "flag"})
        self.assertEqual(shown["consumer_group"], {"value": "from-env", "source": "environment"})
        self.assertEqual(shown["topic_prefix"], {"value": "shop", "source": "file"})
        self.assertEqual(shown["linger_ms"]["source"], "default")
        self.assertEqual(shown["sasl_password"]["value"], "***")

    def test_schema_check_reports_file_line_of_a_bad_schema(self):
        bad = write(self.dir, "bad.yaml",
                    "events:\n  X:\n    aggregate_type: A\n    fields:\n      n: {type: nombre}\n")
        r = run(["schema", "check", bad])
        self.assertEqual(r.code, 3, r)
        self.assertIn(f"{bad}:5", r.err)

    def test_schema_check_events_lists_every_error_with_pointer(self):
        events = write(self.dir, "events.jsonl",
                       '{"event_type":"OrderPlaced","aggregate_id":"nope","total":-1}\n'
                       '{"event_type":"OrderShipped","aggregate_id":"7d3c2b1a-5e4f-4a6b-8c9d-0e1f2a3b4c5d","tracking_number":"T"}\n')
        r = run(["schema", "check", ORDERS_SCHEMA, "--events", events])
        self.assertEqual(r.code, 3, r)
        self.assertIn(f"{events}:1: /aggregate_id:", r.err)
        self.assertIn(f"{events}:1: /customer_id:", r.err)
        self.assertIn(f"{events}:1: /total:", r.err)
        self.assertNotIn(f"{events}:2:", r.err)

    def test_schema_list_from_config(self):
        r = run(["-c", os.path.join(SOURCE_DIR, "examples", "bus.yaml"), "schema", "list",
                 "--output", "json"])
        self.assertEqual(r.code, 0, r)
        types = [s["event_type"] for s in json.loads(r.out)]
        self.assertEqual(types, ["OrderPlaced", "OrderShipped", "SensorReading"])

    def test_publish_without_schemas_is_invalid_input(self):
        cfg = write(self.dir, "bus.yaml", "topic_prefix: a\n")
        r = run(["-c", cfg, "publish", "--type", "X", "--aggregate-id",
                 "7d3c2b1a-5e4f-4a6b-8c9d-0e1f2a3b4c5d", "--data", "{}"])
        self.assertEqual(r.code, 3, r)
        self.assertIn("schemas", r.err)


if __name__ == "__main__":
    unittest.main(verbosity=2)
