#include "core/metrics.hpp"

#include <fmt/format.h>
#include <httplib.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "core/error.hpp"

namespace evbus {

// ---------------------------------------------------------------------------------------------
// Registry

namespace {

struct Series {
  std::string rendered_labels;        // `a="1",b="2"` without braces; empty when there are none
  double value = 0.0;                 // counter / gauge
  std::vector<uint64_t> bucket_hits;  // histogram, per bucket (not cumulative)
  double sum = 0.0;
  uint64_t count = 0;
};

bool valid_metric_name(std::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

std::string render_labels(const MetricLabels& labels) {
  std::string out;
  for (const auto& [name, value] : labels) {
    if (!out.empty()) out += ',';
    out += name;
    out += "=\"";
    out += escape_label_value(value);
    out += '"';
  }
  return out;
}

std::string escape_help(std::string_view text) {
  std::string out;
  for (const char c : text) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::string_view type_name(MetricType type) {
  switch (type) {
    case MetricType::counter:
      return "counter";
    case MetricType::gauge:
      return "gauge";
    case MetricType::histogram:
      return "histogram";
  }
  return "untyped";
}

std::string braces(const std::string& rendered) {
  return rendered.empty() ? std::string() : "{" + rendered + "}";
}

std::string with_le(const std::string& rendered, const std::string& le) {
  return "{" + rendered + (rendered.empty() ? "" : ",") + "le=\"" + le + "\"}";
}

}  // namespace

struct MetricsRegistry::Family {
  std::string name;
  std::string help;
  MetricType type = MetricType::counter;
  std::vector<double> buckets;
  std::vector<Series> series;                        // first-seen order, so output is stable
  std::map<std::string, size_t, std::less<>> index;  // rendered labels -> position

  Series& at(const MetricLabels& labels) {
    std::string key = render_labels(labels);
    if (auto it = index.find(key); it != index.end()) return series[it->second];
    Series s;
    s.rendered_labels = key;
    if (type == MetricType::histogram) s.bucket_hits.assign(buckets.size(), 0);
    index.emplace(std::move(key), series.size());
    series.push_back(std::move(s));
    return series.back();
  }

  void write(std::ostream& out) const {
    out << "# HELP " << name << ' ' << escape_help(help) << '\n';
    out << "# TYPE " << name << ' ' << type_name(type) << '\n';
    for (const auto& s : series) {
      if (type != MetricType::histogram) {
        out << name << braces(s.rendered_labels) << ' ' << format_metric_value(s.value) << '\n';
        continue;
      }
      uint64_t cumulative = 0;
      for (size_t i = 0; i < buckets.size(); ++i) {
        cumulative += s.bucket_hits[i];
        out << name << "_bucket" << with_le(s.rendered_labels, format_metric_value(buckets[i]))
            << ' ' << cumulative << '\n';
      }
      out << name << "_bucket" << with_le(s.rendered_labels, "+Inf") << ' ' << s.count << '\n';
      out << name << "_sum" << braces(s.rendered_labels) << ' ' << format_metric_value(s.sum)
          << '\n';
      out << name << "_count" << braces(s.rendered_labels) << ' ' << s.count << '\n';
    }
  }
};

MetricsRegistry::MetricsRegistry() = default;
MetricsRegistry::~MetricsRegistry() = default;

void MetricsRegistry::declare(const std::string& name, MetricType type, const std::string& help,
                              std::vector<double> buckets, bool labelless) {
  if (!valid_metric_name(name))
    throw Error(ErrorKind::runtime, fmt::format("invalid metric name '{}'", name));
  if (type == MetricType::histogram && !std::is_sorted(buckets.begin(), buckets.end()))
    throw Error(ErrorKind::runtime, fmt::format("histogram {}: buckets must ascend", name));
  std::lock_guard lock(mutex_);
  for (const auto& f : families_) {
    if (f->name != name) continue;
    if (f->type != type)
      throw Error(ErrorKind::runtime, fmt::format("metric {} declared twice", name));
    return;
  }
  auto f = std::make_unique<Family>();
  f->name = name;
  f->help = help;
  f->type = type;
  f->buckets = std::move(buckets);
  if (labelless) (void)f->at({});
  families_.push_back(std::move(f));
}

MetricsRegistry::Family& MetricsRegistry::family(std::string_view name, MetricType type) {
  for (auto& f : families_)
    if (f->name == name) {
      if (f->type != type)
        throw Error(ErrorKind::runtime, fmt::format("metric {} is a {}", name, type_name(f->type)));
      return *f;
    }
  throw Error(ErrorKind::runtime, fmt::format("metric {} was not declared", name));
}

void MetricsRegistry::increment(std::string_view name, const MetricLabels& labels, double by) {
  std::lock_guard lock(mutex_);
  family(name, MetricType::counter).at(labels).value += by;
}

void MetricsRegistry::set(std::string_view name, const MetricLabels& labels, double value) {
  std::lock_guard lock(mutex_);
  family(name, MetricType::gauge).at(labels).value = value;
}

void MetricsRegistry::observe(std::string_view name, const MetricLabels& labels, double value) {
  std::lock_guard lock(mutex_);
  Family& f = family(name, MetricType::histogram);
  Series& s = f.at(labels);
  // Buckets are "less than or equal" upper bounds; values above the last go only to +Inf.
  const auto it = std::lower_bound(f.buckets.begin(), f.buckets.end(), value);
  if (it != f.buckets.end()) ++s.bucket_hits[static_cast<size_t>(it - f.buckets.begin())];
  s.sum += value;
  ++s.count;
}

void MetricsRegistry::clear(std::string_view name) {
  std::lock_guard lock(mutex_);
  for (auto& f : families_)
    if (f->name == name) {
      f->series.clear();
      f->index.clear();
    }
}

std::optional<double> MetricsRegistry::value(std::string_view name,
                                             const MetricLabels& labels) const {
  std::lock_guard lock(mutex_);
  for (const auto& f : families_) {
    if (f->name != name) continue;
    auto it = f->index.find(render_labels(labels));
    if (it == f->index.end()) return std::nullopt;
    const Series& s = f->series[it->second];
    return f->type == MetricType::histogram ? static_cast<double>(s.count) : s.value;
  }
  return std::nullopt;
}

void MetricsRegistry::write_text(std::ostream& out) const {
  std::lock_guard lock(mutex_);
  for (const auto& f : families_) f->write(out);
}

std::string MetricsRegistry::text() const {
  std::ostringstream out;
  write_text(out);
  return out.str();
}

std::string format_metric_value(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  if (std::fabs(value) < 1e15 && value == std::floor(value)) return fmt::format("{:.0f}", value);
  return fmt::format("{}", value);
}

std::string escape_label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (const char c : value) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The seed's instruments

namespace {

// OpenTelemetry's default explicit bucket bounds (the seed configures no views).
const std::vector<double> kOtelBuckets{0,   5,   10,   25,   50,   75,   100,  250,
                                       500, 750, 1000, 2500, 5000, 7500, 10000};

std::string str(std::string_view s) {
  return std::string(s);
}

}  // namespace

BusMetrics::BusMetrics() {
  auto& r = registry_;
  using T = MetricType;
  r.declare(str(metric::messages_published), T::counter, "Events acknowledged by the broker");
  r.declare(str(metric::messages_consumed), T::counter,
            "Records consumed from the bus topic that carry an event_type header");
  r.declare(str(metric::handler_invocations), T::counter, "Successful handler invocations");
  r.declare(str(metric::handler_errors), T::counter, "Failing handler invocations");
  r.declare(str(metric::messages_dlq), T::counter, "Records sent to the dead-letter queue");
  r.declare(str(metric::publish_errors), T::counter, "Events that could not be published");
  r.declare(str(metric::reconnections), T::counter, "Consume-loop reconnections", {}, true);
  r.declare(str(metric::rebalances), T::counter, "Consumer group rebalances");
  r.declare(str(metric::connection_errors), T::counter, "Connection and consume-loop errors");
  r.declare(str(metric::publish_duration), T::histogram,
            "Time to publish a batch, hand-off to acknowledgement, in milliseconds", kOtelBuckets);
  r.declare(str(metric::consume_duration), T::histogram,
            "Time to process one consumed record, in milliseconds", kOtelBuckets);
  r.declare(str(metric::handler_duration), T::histogram,
            "Time spent in one handler call, in milliseconds", kOtelBuckets);
  r.declare(str(metric::batch_size), T::histogram, "Events per publish batch, in messages",
            kOtelBuckets);
  r.declare(str(metric::connections_active), T::gauge, "1 while connected to the cluster");
  r.declare(str(metric::consumer_lag), T::gauge,
            "Records between the partition's high watermark and the consumer position");
  r.declare(str(metric::producer_in_flight), T::gauge,
            "Records handed to the producer and not yet acknowledged");
  r.declare(str(metric::broker_rtt_avg), T::gauge,
            "librdkafka: average broker round-trip time, in milliseconds");
  r.declare(str(metric::broker_rtt_p99), T::gauge,
            "librdkafka: 99th percentile broker round-trip time, in milliseconds");
  r.declare(str(metric::broker_outbuf), T::gauge,
            "librdkafka: requests waiting to be sent to the broker");
  r.declare(str(metric::broker_waitresp), T::gauge,
            "librdkafka: requests sent to the broker and awaiting a response");
  r.declare(str(metric::client_queue_messages), T::gauge,
            "librdkafka: messages in the client's queues");
  r.declare(str(metric::client_queue_bytes), T::gauge,
            "librdkafka: bytes of messages in the client's queues");
}

void BusMetrics::published(std::string_view topic, std::string_view event_type) {
  registry_.increment(metric::messages_published, {{"messaging_system", "kafka"},
                                                   {"messaging_destination", str(topic)},
                                                   {"event_type", str(event_type)}});
}

void BusMetrics::publish_error(std::string_view topic, std::string_view event_type,
                               std::string_view error_type) {
  registry_.increment(metric::publish_errors, {{"messaging_system", "kafka"},
                                               {"messaging_destination", str(topic)},
                                               {"event_type", str(event_type)},
                                               {"error_type", str(error_type)}});
}

void BusMetrics::publish_duration(std::string_view topic, double milliseconds) {
  registry_.observe(metric::publish_duration, {{"messaging_destination", str(topic)}},
                    milliseconds);
}

void BusMetrics::batch_size(double messages) {
  registry_.observe(metric::batch_size, {}, messages);
}

void BusMetrics::consumed(std::string_view topic, int32_t partition, std::string_view event_type) {
  registry_.increment(metric::messages_consumed,
                      {{"messaging_system", "kafka"},
                       {"messaging_destination", str(topic)},
                       {"messaging_kafka_partition", std::to_string(partition)},
                       {"event_type", str(event_type)}});
}

void BusMetrics::consume_duration(std::string_view topic, double milliseconds) {
  registry_.observe(metric::consume_duration, {{"messaging_destination", str(topic)}},
                    milliseconds);
}

void BusMetrics::handler_invoked(std::string_view handler, std::string_view event_type) {
  registry_.increment(metric::handler_invocations,
                      {{"handler_name", str(handler)}, {"event_type", str(event_type)}});
}

void BusMetrics::handler_error(std::string_view handler, std::string_view event_type,
                               std::string_view error_type) {
  registry_.increment(metric::handler_errors, {{"handler_name", str(handler)},
                                               {"event_type", str(event_type)},
                                               {"error_type", str(error_type)}});
}

void BusMetrics::handler_duration(std::string_view handler, std::string_view event_type,
                                  double milliseconds) {
  registry_.observe(metric::handler_duration,
                    {{"handler_name", str(handler)}, {"event_type", str(event_type)}},
                    milliseconds);
}

void BusMetrics::sent_to_dlq(std::string_view reason, std::string_view error_type) {
  registry_.increment(metric::messages_dlq,
                      {{"dlq_reason", str(reason)}, {"error_type", str(error_type)}});
}

void BusMetrics::connection_error(std::string_view error_type) {
  registry_.increment(metric::connection_errors, {{"error_type", str(error_type)}});
}

void BusMetrics::reconnection() {
  registry_.increment(metric::reconnections);
}

void BusMetrics::rebalance(std::string_view consumer_group) {
  registry_.increment(metric::rebalances,
                      {{"messaging_kafka_consumer_group", str(consumer_group)}});
}

void BusMetrics::connections_active(std::string_view consumer_group, bool active) {
  registry_.set(metric::connections_active,
                {{"messaging_kafka_consumer_group", str(consumer_group)}}, active ? 1.0 : 0.0);
}

void BusMetrics::consumer_lag(std::string_view topic, std::string_view consumer_group,
                              int32_t partition, int64_t lag) {
  registry_.set(metric::consumer_lag,
                {{"messaging_kafka_partition", std::to_string(partition)},
                 {"messaging_kafka_consumer_group", str(consumer_group)},
                 {"messaging_destination", str(topic)}},
                static_cast<double>(std::max<int64_t>(0, lag)));
}

void BusMetrics::producer_in_flight(int64_t records) {
  registry_.set(metric::producer_in_flight, {}, static_cast<double>(records));
}

namespace {

double number_at(const nlohmann::json& object, const char* key, double fallback = 0.0) {
  auto it = object.find(key);
  return it != object.end() && it->is_number() ? it->get<double>() : fallback;
}

}  // namespace

void BusMetrics::librdkafka_statistics(std::string_view json, std::string_view consumer_group) {
  const auto stats = nlohmann::json::parse(json, nullptr, false);
  if (!stats.is_object()) return;
  const std::string client_type = stats.value("type", "");
  registry_.set(metric::client_queue_messages, {{"client_type", client_type}},
                number_at(stats, "msg_cnt"));
  registry_.set(metric::client_queue_bytes, {{"client_type", client_type}},
                number_at(stats, "msg_size"));

  if (auto brokers = stats.find("brokers"); brokers != stats.end() && brokers->is_object()) {
    for (const auto& [name, b] : brokers->items()) {
      // Bootstrap and coordinator placeholders (nodeid -1) are not real brokers.
      if (!b.is_object() || number_at(b, "nodeid", -1) < 0) continue;
      const MetricLabels labels{{"client_type", client_type}, {"broker", name}};
      registry_.set(metric::broker_outbuf, labels, number_at(b, "outbuf_cnt"));
      registry_.set(metric::broker_waitresp, labels, number_at(b, "waitresp_cnt"));
      auto rtt = b.find("rtt");
      if (rtt == b.end() || !rtt->is_object() || number_at(*rtt, "cnt") <= 0) continue;
      // librdkafka reports microseconds.
      registry_.set(metric::broker_rtt_avg, labels, number_at(*rtt, "avg") / 1000.0);
      registry_.set(metric::broker_rtt_p99, labels, number_at(*rtt, "p99") / 1000.0);
    }
  }

  if (consumer_group.empty()) return;
  auto topics = stats.find("topics");
  if (topics == stats.end() || !topics->is_object()) return;
  registry_.clear(metric::consumer_lag);  // partitions no longer assigned must disappear
  for (const auto& [topic, t] : topics->items()) {
    auto parts = t.find("partitions");
    if (parts == t.end() || !parts->is_object()) continue;
    for (const auto& [id, p] : parts->items()) {
      const double lag = number_at(p, "consumer_lag", -1);
      const double partition = number_at(p, "partition", -1);
      if (lag < 0 || partition < 0) continue;  // -1: unknown or not assigned
      consumer_lag(topic, consumer_group, static_cast<int32_t>(partition),
                   static_cast<int64_t>(lag));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// HTTP endpoint

struct MetricsServer::Impl {
  httplib::Server server;
  std::thread thread;
  std::string host;
  int port = 0;
};

MetricsServer::MetricsServer(const MetricsRegistry& registry, const std::string& bind_address,
                             int port)
    : impl_(std::make_unique<Impl>()) {
  auto& server = impl_->server;
  // Two workers are plenty for a scraper; the default pool would start one per core.
  server.new_task_queue = [] { return new httplib::ThreadPool(2); };
  // httplib's default adds SO_REUSEPORT, which lets a second process bind the same port and
  // silently take half the scrapes; SO_REUSEADDR alone still allows a quick restart.
  server.set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  server.Get("/metrics", [&registry](const httplib::Request&, httplib::Response& res) {
    res.set_content(registry.text(), "text/plain; version=0.0.4; charset=utf-8");
  });
  server.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("evbus: metrics at /metrics\n", "text/plain; charset=utf-8");
  });
  const bool bound = port == 0 ? (impl_->port = server.bind_to_any_port(bind_address)) > 0
                               : server.bind_to_port(bind_address, port);
  if (!bound)
    throw Error(ErrorKind::runtime,
                fmt::format("metrics endpoint: cannot listen on {}:{} (in use, or not an address "
                            "of this host)",
                            bind_address, port));
  if (port != 0) impl_->port = port;
  impl_->host = bind_address;
  impl_->thread = std::thread([this] { impl_->server.listen_after_bind(); });
  // stop() is a no-op until the loop runs, so wait for it: the destructor must not hang.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!server.is_running() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

MetricsServer::~MetricsServer() {
  impl_->server.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

int MetricsServer::port() const {
  return impl_->port;
}

std::string MetricsServer::url() const {
  const bool ipv6 = impl_->host.find(':') != std::string::npos;
  return fmt::format("http://{}{}{}:{}/metrics", ipv6 ? "[" : "", impl_->host, ipv6 ? "]" : "",
                     impl_->port);
}

}  // namespace evbus
