"""The Python side of the interop tests: eventsource-py's KafkaEventBus, used as tutorial 18 does.

Event classes mirror examples/schemas/orders.yaml and tests/interop/schemas/interop.yaml. Every
wait is bounded: connects, consumes and raw reads run under asyncio timeouts, and a background
consumer is stopped (and its task cancelled, since the library's stop_consuming() only takes
effect when the next record arrives) as soon as the awaited condition holds.

Import this module only under the interop venv (scripts/interop-venv.sh).
"""
import asyncio
import contextlib
import logging
import os
import time
from collections import Counter
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from pydantic import BaseModel

import eventsource
from eventsource import DomainEvent, default_registry, register_event

# 0.8.1 has no eventsource.bus.kafka (the tutorial's path); the package moved in 0.7.0.
from eventsource.adapters.kafka import KafkaEventBus, KafkaEventBusConfig

BOOTSTRAP = os.environ.get("EVBUS_TEST_BOOTSTRAP", "localhost:9092")
VERSION = eventsource.__version__


@register_event
class OrderPlaced(DomainEvent):
    event_type: str = "OrderPlaced"
    aggregate_type: str = "Order"
    customer_id: str
    total: float


@register_event
class OrderShipped(DomainEvent):
    event_type: str = "OrderShipped"
    aggregate_type: str = "Order"
    tracking_number: str


class Address(BaseModel):
    city: str
    postcode: str | None = None


class InvoiceLine(BaseModel):
    sku: str
    qty: int
    unit_price: Decimal


@register_event
class InvoiceIssued(DomainEvent):
    event_type: str = "InvoiceIssued"
    aggregate_type: str = "Invoice"
    amount: Decimal
    due_at: datetime
    customer_ref: UUID
    billing_address: Address
    lines: list[InvoiceLine]
    tags: list[str]


EVENT_CLASSES = {cls.__name__: cls for cls in (OrderPlaced, OrderShipped, InvoiceIssued)}


class LogCounter(logging.Handler):
    """Counts the bus's log records by message: the library has no stats key for deserialization
    failures, but it logs each one ("Deserialization error, sending directly to DLQ")."""

    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.messages = Counter()

    def emit(self, record):
        self.messages[record.getMessage()] += 1

    def deserialization_errors(self):
        return self.messages["Deserialization error, sending directly to DLQ"]


LOG = LogCounter()
_bus_logger = logging.getLogger("eventsource.bus.kafka")
_bus_logger.addHandler(LOG)
_bus_logger.setLevel(logging.DEBUG)
# The bus logs every handler failure with a traceback; keep test output readable unless asked.
_bus_logger.propagate = bool(os.environ.get("EVBUS_INTEROP_DEBUG"))
logging.getLogger("aiokafka").setLevel(
    logging.DEBUG if os.environ.get("EVBUS_INTEROP_DEBUG") else logging.CRITICAL)


async def bounded(awaitable, seconds, what):
    try:
        return await asyncio.wait_for(awaitable, seconds)
    except asyncio.TimeoutError:
        raise AssertionError(f"timed out after {seconds}s: {what}") from None


async def wait_for(condition, timeout, what, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


async def wait_for_count(count, target, timeout, what, interval=0.2):
    """Awaits `count()` (a coroutine function) until it returns at least `target`."""
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = await count()
        if value >= target:
            return value
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}: {value} of {target}")


class Recorder:
    """A class-based handler (tutorial style) that keeps every event it is given, in order, and
    raises while `failing` says so for that event."""

    def __init__(self, failing=None):
        self.received = []
        self.attempts = []  # every call, failed or not
        self.failing = failing or (lambda event: None)

    async def handle(self, event: DomainEvent) -> None:
        self.attempts.append(event)
        error = self.failing(event)
        if error is not None:
            raise error
        self.received.append(event)


def bus_config(prefix, group, **overrides):
    settings = dict(bootstrap_servers=BOOTSTRAP, topic_prefix=prefix, consumer_group=group,
                    retry_base_delay=0.1, retry_max_delay=1.0, enable_tracing=False,
                    enable_metrics=False)
    settings.update(overrides)
    return KafkaEventBusConfig(**settings)


class PyBus:
    """`async with PyBus(prefix, group) as py:` a connected KafkaEventBus on default_registry,
    disconnected (bounded) on exit whatever happened."""

    def __init__(self, prefix, group, **overrides):
        self.config = bus_config(prefix, group, **overrides)
        self.bus = KafkaEventBus(config=self.config, event_registry=default_registry)
        self.task = None

    async def __aenter__(self):
        # connect() subscribes the group consumer to {prefix}.stream (auto-creating it).
        await bounded(self.bus.connect(), 40, "KafkaEventBus.connect()")
        return self

    async def __aexit__(self, *exc):
        await self.stop_consuming()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.bus.disconnect(), 15)

    def subscribe(self, event_class, handler):
        self.bus.subscribe(event_class, handler)

    def start_consuming(self):
        self.task = self.bus.start_consuming_in_background()

    async def stop_consuming(self):
        if self.task is None:
            return
        await self.bus.stop_consuming()
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(self.task, 10)
        self.task = None

    def stats(self):
        return self.bus.get_stats_dict()

    async def until(self, condition, timeout, what):
        """Waits for `condition`, failing early if the consume task died."""
        def check():
            if self.task is not None and self.task.done():
                why = "cancelled" if self.task.cancelled() else self.task.exception()
                raise AssertionError(f"the Python consume loop ended waiting for {what}: {why}")
            return condition()
        return await wait_for(check, timeout, what)

    async def until_succeeded(self, count, timeout):
        """Until `count` records were handled and committed (events_processed_success is counted
        after the commit, so stopping then cancels nothing half-done)."""
        await self.until(lambda: self.stats()["events_processed_success"] >= count, timeout,
                         f"{count} records handled in Python")


def header_list(record):
    """A raw record's headers as [(name, text)], in order, duplicates kept."""
    return [(k, v.decode("utf-8") if v is not None else None) for k, v in (record.headers or [])]


async def _raw_consumer():
    consumer = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP, group_id=None,
                                enable_auto_commit=False, auto_offset_reset="earliest")
    await bounded(consumer.start(), 30, "raw consumer start")
    return consumer


async def partitions_of(topic):
    """The partition ids of `topic`, [] when it does not exist. Lists topics first, because a
    metadata request naming a missing topic would auto-create it."""
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    await bounded(admin.start(), 30, "admin client start")
    try:
        if topic not in await bounded(admin.list_topics(), 20, "list topics"):
            return []
        (described,) = await bounded(admin.describe_topics([topic]), 20, "describe topic")
        return sorted(p["partition"] for p in described["partitions"])
    finally:
        await admin.close()


async def watermarks(topic):
    """{partition: (low, high)} for an existing topic, {} when it does not exist."""
    tps = [TopicPartition(topic, p) for p in await partitions_of(topic)]
    if not tps:
        return {}
    consumer = await _raw_consumer()
    try:
        low = await bounded(consumer.beginning_offsets(tps), 20, "beginning offsets")
        high = await bounded(consumer.end_offsets(tps), 20, "end offsets")
        return {tp.partition: (low[tp], high[tp]) for tp in tps}
    finally:
        await consumer.stop()


async def record_count(topic):
    return sum(high - low for low, high in (await watermarks(topic)).values())


async def read_raw(topic, timeout=30):
    """Every record of `topic` from the low to the high watermarks snapshotted now, sorted by
    (partition, offset): key and value bytes, headers and partition exactly as on the wire."""
    marks = await watermarks(topic)
    wanted = {p: (low, high) for p, (low, high) in marks.items() if high > low}
    if not wanted:
        return []
    consumer = await _raw_consumer()
    records = []
    try:
        tps = [TopicPartition(topic, p) for p in wanted]
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, wanted[tp.partition][0])
        deadline = time.monotonic() + timeout
        done = set()
        while len(done) < len(tps):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out reading {topic}: {len(records)} records so far")
            batch = await consumer.getmany(timeout_ms=500)
            for tp, messages in batch.items():
                for m in messages:
                    if m.offset < wanted[tp.partition][1]:
                        records.append(m)
                if await consumer.position(tp) >= wanted[tp.partition][1]:
                    done.add(tp.partition)
            for tp in tps:
                if tp.partition not in done and await consumer.position(tp) >= wanted[tp.partition][1]:
                    done.add(tp.partition)
    finally:
        await consumer.stop()
    return sorted(records, key=lambda m: (m.partition, m.offset))


def run(coro, timeout=150):
    """Runs one scenario's coroutine with an overall bound."""
    return asyncio.run(asyncio.wait_for(coro, timeout))
