// Faults a real broker cannot produce on demand, injected with librdkafka's mock cluster:
// every event still ends with exactly one outcome, and failures are counted, never lost.
#include <doctest/doctest.h>

#include <chrono>

#include "core/dev_broker.hpp"
#include "core/publish.hpp"

namespace {

constexpr int kErrMsgSizeTooLarge = 10;  // Kafka MESSAGE_TOO_LARGE: not retriable

evbus::BusConfig mock_bus(const evbus::DevBroker& broker) {
  evbus::BusConfig config;
  config.bootstrap_servers = broker.bootstrap_servers();
  config.topic_prefix = "fault";
  config.client_name = "fault-test";
  config.linger_ms = 0;
  // Time out quickly when the broker is down, so the test exercises the failure path fast.
  config.librdkafka = {{"message.timeout.ms", "1500"}};
  return config;
}

evbus::Json order(int i) {
  return evbus::Json{{"event_type", "OrderShipped"},
                     {"aggregate_id", "7d3c2b1a-5e4f-4a6b-8c9d-0e1f2a3b4c5d"},
                     {"tracking_number", "T" + std::to_string(i)}};
}

struct Recorder {
  std::vector<evbus::PublishOutcome> outcomes;
  evbus::OutcomeSink sink() {
    return [this](const evbus::PublishOutcome& o) { outcomes.push_back(o); };
  }
};

}  // namespace

TEST_CASE("a produce request rejected by the broker becomes a failed outcome, others deliver") {
  evbus::DevBroker broker;
  broker.create_topic("fault.stream", 3);
  const auto schemas = evbus::load_schemas({EVBUS_SOURCE_DIR "/examples/schemas/orders.yaml"});
  Recorder rec;
  evbus::EventPublisher publisher(mock_bus(broker), schemas, {}, rec.sink());

  broker.fail_next_requests(0 /* Produce */, {kErrMsgSizeTooLarge});
  publisher.publish_json(order(1), "first");
  const auto after_first = publisher.finish();
  CHECK(after_first.failed == 1);
  CHECK(after_first.delivered == 0);
  REQUIRE(rec.outcomes.size() == 1);
  CHECK(rec.outcomes[0].kind == evbus::PublishOutcome::Kind::failed);
  CHECK(rec.outcomes[0].errors.at(0).message.find("too large") != std::string::npos);

  publisher.publish_json(order(2), "second");
  const auto after_second = publisher.finish();
  CHECK(after_second.delivered == 1);
  CHECK(after_second.failed == 1);
}

TEST_CASE("a broker going down mid-publish fails the pending events instead of hanging") {
  evbus::DevBroker broker;
  broker.create_topic("fault.stream", 3);
  const auto schemas = evbus::load_schemas({EVBUS_SOURCE_DIR "/examples/schemas/orders.yaml"});
  Recorder rec;
  evbus::PublishOptions options;
  options.flush_timeout = std::chrono::milliseconds(10000);
  evbus::EventPublisher publisher(mock_bus(broker), schemas, options, rec.sink());

  broker.set_broker_down(1, true);
  for (int i = 0; i < 5; ++i) publisher.publish_json(order(i), "event " + std::to_string(i));
  const auto summary = publisher.finish();
  CHECK(summary.read == 5);
  CHECK(summary.failed == 5);
  CHECK(summary.delivered == 0);
  CHECK(rec.outcomes.size() == 5);
}
