"""Shared helpers for evbus's CLI and integration tests (stdlib only).

The binary comes from $EVBUS_BINARY and the real broker from $EVBUS_TEST_BOOTSTRAP (both set by
CTest and scripts/test.sh). Waiting is always "until a condition or a deadline", never a bare sleep.
"""
import json
import os
import subprocess
import tempfile
import time
import unittest
import uuid

BINARY = os.environ.get("EVBUS_BINARY", "build/evbus")
SOURCE_DIR = os.environ.get("EVBUS_SOURCE_DIR", os.getcwd())
BOOTSTRAP = os.environ.get("EVBUS_TEST_BOOTSTRAP")

ORDERS_SCHEMA = os.path.join(SOURCE_DIR, "examples", "schemas", "orders.yaml")


def needs_broker(cls):
    return unittest.skipUnless(BOOTSTRAP, "EVBUS_TEST_BOOTSTRAP not set (run scripts/test.sh)")(cls)


class Result:
    def __init__(self, proc, elapsed):
        self.code = proc.returncode
        self.out = proc.stdout
        self.err = proc.stderr
        self.elapsed = elapsed

    def lines(self):
        return [l for l in self.out.splitlines() if l.strip()]

    def json_lines(self):
        return [json.loads(l) for l in self.lines()]

    def __repr__(self):
        return f"exit={self.code}\nstdout:\n{self.out[-3000:]}\nstderr:\n{self.err[-3000:]}"


def run(args, stdin=None, env=None, timeout=120):
    full_env = dict(os.environ)
    full_env.pop("EVBUS_CONFIG", None)
    if env:
        full_env.update(env)
    start = time.monotonic()
    proc = subprocess.run([BINARY, *args], input=stdin, capture_output=True, text=True,
                          env=full_env, timeout=timeout)
    return Result(proc, time.monotonic() - start)


def wait_until(condition, timeout=30.0, interval=0.1, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def unique(name):
    return f"{name}-{uuid.uuid4().hex[:10]}"


def write_bus_config(directory, prefix, group, extra=""):
    path = os.path.join(directory, "bus.yaml")
    with open(path, "w") as f:
        f.write(f"bootstrap_servers: {BOOTSTRAP or 'localhost:9092'}\n"
                f"topic_prefix: {prefix}\n"
                f"consumer_group: {group}\n"
                f"schemas: [{ORDERS_SCHEMA}]\n"
                f"{extra}")
    return path


class BusTestCase(unittest.TestCase):
    """A fresh topic prefix, group and config file per test."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.prefix = unique("t")
        self.group = unique("g")
        self.config = write_bus_config(self.tmp.name, self.prefix, self.group)

    def tearDown(self):
        self.tmp.cleanup()

    def evbus(self, *args, **kw):
        return run(["-c", self.config, *args], **kw)

    def ok(self, *args, **kw):
        r = self.evbus(*args, **kw)
        self.assertEqual(r.code, 0, r)
        return r
