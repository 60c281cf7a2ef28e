#pragma once
// Prometheus metrics: a small thread-safe registry (counters, gauges, histograms with labels)
// rendered in the text exposition format 0.0.4, the seed's OpenTelemetry instruments (contract §7)
// named the Prometheus way, librdkafka's statistics as gauges, and an HTTP endpoint serving them.
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace evbus {

// Label name/value pairs, rendered in the order given.
using MetricLabels = std::vector<std::pair<std::string, std::string>>;

enum class MetricType { counter, gauge, histogram };

class MetricsRegistry {
 public:
  MetricsRegistry();
  ~MetricsRegistry();
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  // Declares a family once (again with the same type is a no-op). Histograms take ascending
  // upper bounds; "+Inf" is implied. A family without label names starts with one zero series,
  // so a scrape shows 0 rather than nothing.
  void declare(const std::string& name, MetricType type, const std::string& help,
               std::vector<double> buckets = {}, bool labelless = false);

  // Unknown names or a type mismatch throw Error{runtime}: a programming error, not input.
  void increment(std::string_view name, const MetricLabels& labels = {}, double by = 1.0);
  void set(std::string_view name, const MetricLabels& labels, double value);
  void observe(std::string_view name, const MetricLabels& labels, double value);
  // Drops every series of a family (e.g. lag of partitions no longer assigned).
  void clear(std::string_view name);

  // Counter or gauge value, or a histogram's count; nullopt when the series does not exist.
  std::optional<double> value(std::string_view name, const MetricLabels& labels = {}) const;

  // Text exposition format 0.0.4: # HELP and # TYPE for every family, in declaration order.
  void write_text(std::ostream& out) const;
  std::string text() const;

  struct Family;

 private:
  Family& family(std::string_view name, MetricType type);
  mutable std::mutex mutex_;
  std::vector<std::unique_ptr<Family>> families_;
};

// A sample value as Prometheus writes it: integers without a fraction, +Inf/-Inf/NaN.
std::string format_metric_value(double value);
// Label value escaping of the exposition format (backslash, double quote, newline).
std::string escape_label_value(std::string_view value);

// The seed's instruments (contract §7): `kafka.eventbus.messages.published` becomes
// kafka_eventbus_messages_published_total, attributes become labels with dots turned into
// underscores (messaging.destination -> messaging_destination). Durations are histograms in
// milliseconds (suffix _milliseconds, as OpenTelemetry's Prometheus exporter names a unit "ms"),
// with OpenTelemetry's default bucket bounds so evbus and a Python service export alike.
// Thread-safe: the HTTP thread reads while the run loop records.
class BusMetrics {
 public:
  BusMetrics();

  // Publishing (labels: messaging_system="kafka", messaging_destination, event_type).
  void published(std::string_view topic, std::string_view event_type);
  void publish_error(std::string_view topic, std::string_view event_type,
                     std::string_view error_type);
  void publish_duration(std::string_view topic, double milliseconds);
  void batch_size(double messages);

  // Consuming (consumed: messaging_system, messaging_destination, messaging_kafka_partition,
  // event_type; only for records that carry an event_type header, as the seed counts).
  void consumed(std::string_view topic, int32_t partition, std::string_view event_type);
  void consume_duration(std::string_view topic, double milliseconds);
  void handler_invoked(std::string_view handler, std::string_view event_type);
  void handler_error(std::string_view handler, std::string_view event_type,
                     std::string_view error_type);
  void handler_duration(std::string_view handler, std::string_view event_type, double milliseconds);
  void sent_to_dlq(std::string_view reason, std::string_view error_type);

  // Connection and group.
  void connection_error(std::string_view error_type);
  void reconnection();
  void rebalance(std::string_view consumer_group);
  void connections_active(std::string_view consumer_group, bool active);
  void consumer_lag(std::string_view topic, std::string_view consumer_group, int32_t partition,
                    int64_t lag);

  // librdkafka's statistics JSON (statistics.interval.ms, delivered to a stats callback):
  // broker round-trip times, request queues, the client's message queue, and, when
  // `consumer_group` is given, consumer lag per assigned partition. Malformed JSON is ignored.
  void librdkafka_statistics(std::string_view json, std::string_view consumer_group = {});

  // Extra gauges an evbus command maintains itself (e.g. records awaiting delivery).
  void producer_in_flight(int64_t records);

  const MetricsRegistry& registry() const { return registry_; }
  MetricsRegistry& registry() { return registry_; }

 private:
  MetricsRegistry registry_;
};

// Metric family names, for tests and for commands that read values back.
namespace metric {
inline constexpr std::string_view messages_published = "kafka_eventbus_messages_published_total";
inline constexpr std::string_view messages_consumed = "kafka_eventbus_messages_consumed_total";
inline constexpr std::string_view handler_invocations = "kafka_eventbus_handler_invocations_total";
inline constexpr std::string_view handler_errors = "kafka_eventbus_handler_errors_total";
inline constexpr std::string_view messages_dlq = "kafka_eventbus_messages_dlq_total";
inline constexpr std::string_view publish_errors = "kafka_eventbus_publish_errors_total";
inline constexpr std::string_view reconnections = "kafka_eventbus_reconnections_total";
inline constexpr std::string_view rebalances = "kafka_eventbus_rebalances_total";
inline constexpr std::string_view connection_errors = "kafka_eventbus_connection_errors_total";
inline constexpr std::string_view publish_duration = "kafka_eventbus_publish_duration_milliseconds";
inline constexpr std::string_view consume_duration = "kafka_eventbus_consume_duration_milliseconds";
inline constexpr std::string_view handler_duration = "kafka_eventbus_handler_duration_milliseconds";
inline constexpr std::string_view batch_size = "kafka_eventbus_batch_size";
inline constexpr std::string_view connections_active = "kafka_eventbus_connections_active";
inline constexpr std::string_view consumer_lag = "kafka_eventbus_consumer_lag";
inline constexpr std::string_view broker_rtt_avg = "kafka_eventbus_broker_rtt_avg_milliseconds";
inline constexpr std::string_view broker_rtt_p99 = "kafka_eventbus_broker_rtt_p99_milliseconds";
inline constexpr std::string_view broker_outbuf = "kafka_eventbus_broker_outbuf_requests";
inline constexpr std::string_view broker_waitresp = "kafka_eventbus_broker_waitresp_requests";
inline constexpr std::string_view client_queue_messages = "kafka_eventbus_client_queue_messages";
inline constexpr std::string_view client_queue_bytes = "kafka_eventbus_client_queue_bytes";
inline constexpr std::string_view producer_in_flight = "kafka_eventbus_producer_in_flight_messages";
}  // namespace metric

// Serves GET /metrics (text format 0.0.4) from a registry on its own thread while it lives.
// Binds to `bind_address` (127.0.0.1 by default in the CLI); port 0 picks a free port.
// Throws Error{runtime} when the address cannot be bound.
class MetricsServer {
 public:
  MetricsServer(const MetricsRegistry& registry, const std::string& bind_address, int port);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  int port() const;
  std::string url() const;  // http://host:port/metrics

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace evbus
