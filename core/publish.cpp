#include "core/publish.hpp"

#include <fmt/format.h>
#include <poll.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

#include "core/consumer.hpp"  // RunStats (see core/stats.hpp)
#include "core/error.hpp"
#include "core/metrics.hpp"
#include "core/partition.hpp"
#include "core/topics.hpp"

namespace evbus {

EventPublisher::EventPublisher(const BusConfig& config, const SchemaSet& schemas,
                               PublishOptions options, OutcomeSink sink, EnvelopeDefaults defaults,
                               Diagnostics diagnostics)
    : config_(config),
      schemas_(schemas),
      options_(std::move(options)),
      sink_(std::move(sink)),
      defaults_(std::move(defaults)) {
  producer_ = std::make_unique<Producer>(producer_properties(config_), std::move(diagnostics));
  if (options_.metrics)
    producer_->on_statistics(
        [m = options_.metrics](std::string_view json) { m->librdkafka_statistics(json); });
  producer_->ensure_reachable(options_.connect_timeout);
  connected_at_ = now_utc();
  if (options_.dry_run)
    partition_count_ = producer_->partition_count(config_.topic_name(), options_.connect_timeout);
  if (options_.dry_run && partition_count_ < 0) {
    // Publishing would auto-create the topic with the broker's num.partitions; predict with it.
    topic_exists_ = false;
    partition_count_ = broker_default_partitions(config_, options_.connect_timeout).value_or(-1);
  }
}

EventPublisher::~EventPublisher() = default;

void EventPublisher::emit(PublishOutcome outcome) {
  switch (outcome.kind) {
    case PublishOutcome::Kind::invalid:
      ++summary_.invalid;
      break;
    case PublishOutcome::Kind::delivered:
      ++summary_.delivered;
      last_publish_at_ = now_utc();
      break;
    case PublishOutcome::Kind::failed:
      ++summary_.failed;
      last_error_at_ = now_utc();
      break;
    case PublishOutcome::Kind::planned:
      ++summary_.planned;
      break;
  }
  // Delivered outcomes were recorded with their duration in drain().
  if (outcome.kind != PublishOutcome::Kind::delivered) record_metrics(outcome, std::nullopt);
  if (sink_) sink_(outcome);
}

void EventPublisher::record_metrics(const PublishOutcome& o, std::optional<double> duration_ms) {
  BusMetrics* m = options_.metrics;
  if (m == nullptr) return;
  const std::string& topic = o.topic.empty() ? config_.topic_name() : o.topic;
  switch (o.kind) {
    case PublishOutcome::Kind::delivered:
      m->published(topic, o.event_type);
      m->batch_size(1);
      if (duration_ms) m->publish_duration(topic, *duration_ms);
      break;
    case PublishOutcome::Kind::failed:
      m->publish_error(topic, o.event_type, "DeliveryError");
      break;
    // Rejected before sending: the seed raises these from pydantic before publish() runs, but an
    // operator watching a pipeline wants to see them, so they count with their own error type.
    case PublishOutcome::Kind::invalid:
      m->publish_error(topic, o.event_type, "ValidationError");
      break;
    case PublishOutcome::Kind::planned:
      break;
  }
}

void EventPublisher::drain(std::vector<DeliveryReport> reports) {
  for (auto& report : reports) {
    auto it = pending_.find(report.id);
    if (it == pending_.end()) continue;
    PublishOutcome outcome = std::move(it->second.outcome);
    const std::chrono::duration<double, std::milli> took =
        std::chrono::steady_clock::now() - it->second.handed_off;
    pending_.erase(it);
    outcome.partition = report.partition;
    outcome.offset = report.offset;
    if (report.error) {
      outcome.kind = PublishOutcome::Kind::failed;
      outcome.errors.push_back({"", *report.error});
    } else {
      outcome.kind = PublishOutcome::Kind::delivered;
    }
    if (outcome.kind == PublishOutcome::Kind::delivered) record_metrics(outcome, took.count());
    emit(std::move(outcome));
  }
}

void EventPublisher::publish_line(std::string_view line, const std::string& source) {
  if (line.find_first_not_of(" \t\r") == std::string_view::npos) return;
  auto parsed = parse_event_json(line);
  if (!parsed.value) {
    ++summary_.read;
    PublishOutcome outcome;
    outcome.source = source;
    outcome.errors.push_back({"", "not valid JSON: " + parsed.error});
    emit(std::move(outcome));
    return;
  }
  publish_json(*parsed.value, source);
}

void EventPublisher::publish_json(const Json& input, const std::string& source) {
  ++summary_.read;
  PublishOutcome outcome;
  outcome.source = source;
  outcome.topic = config_.topic_name();
  if (!input.is_object()) {
    outcome.errors.push_back({"", "an event must be a JSON object"});
    emit(std::move(outcome));
    return;
  }
  auto built = build_event(input, options_.type, schemas_, defaults_);
  if (!built.event) {
    if (input.contains("event_type") && input["event_type"].is_string())
      outcome.event_type = input["event_type"].get<std::string>();
    else if (options_.type)
      outcome.event_type = *options_.type;
    outcome.errors = std::move(built.errors);
    emit(std::move(outcome));
    return;
  }
  const Event& event = *built.event;
  outcome.event_type = event.event_type;
  outcome.event_id = event.body.value("event_id", "");
  outcome.aggregate_id = event.aggregate_id;
  OutRecord record = to_record(event, config_.topic_name());

  if (options_.dry_run) {
    outcome.kind = PublishOutcome::Kind::planned;
    if (partition_count_ > 0)
      outcome.partition = partition_for_key(event.aggregate_id, partition_count_);
    outcome.record = std::move(record);
    emit(std::move(outcome));
    return;
  }

  const uint64_t id = next_id_++;
  if (auto refused = producer_->send(record, id)) {
    outcome.kind = PublishOutcome::Kind::failed;
    outcome.errors.push_back({"", *refused});
    emit(std::move(outcome));
  } else {
    pending_.emplace(id, Pending{std::move(outcome), std::chrono::steady_clock::now()});
  }
  drain(producer_->poll(std::chrono::milliseconds(0)));
}

PublishSummary EventPublisher::finish() {
  if (!options_.dry_run) drain(producer_->flush(options_.flush_timeout));
  // Anything still without a report was not acknowledged in time: it counts as failed.
  for (auto& [id, pending] : pending_) {
    pending.outcome.kind = PublishOutcome::Kind::failed;
    pending.outcome.errors.push_back({"", "no delivery report before the flush timeout"});
    emit(std::move(pending.outcome));
  }
  pending_.clear();
  return summary_;
}

void EventPublisher::serve(std::chrono::milliseconds timeout) {
  if (!options_.dry_run) drain(producer_->poll(timeout));
}

int64_t EventPublisher::in_flight() const {
  return options_.dry_run ? 0 : producer_->in_flight();
}

RunStats EventPublisher::run_stats() const {
  RunStats s;
  s.events_published = summary_.delivered;
  s.last_publish_at = last_publish_at_;
  s.last_error_at = last_error_at_;
  s.connected_at = connected_at_;
  return s;
}

namespace {

// Reads whatever is available on `fd`, waiting at most `wait` for it. nullopt: nothing yet;
// an empty string: end of input.
std::optional<std::string> read_some(int fd, std::chrono::milliseconds wait) {
  pollfd ready{fd, POLLIN, 0};
  const int n = ::poll(&ready, 1, static_cast<int>(wait.count()));
  if (n == 0 || (n < 0 && errno == EINTR)) return std::nullopt;
  if (n < 0)
    throw Error(ErrorKind::runtime, fmt::format("reading input: {}", std::strerror(errno)));
  std::array<char, 65536> chunk{};
  const ssize_t got = ::read(fd, chunk.data(), chunk.size());
  if (got < 0) {
    if (errno == EINTR || errno == EAGAIN) return std::nullopt;
    throw Error(ErrorKind::runtime, fmt::format("reading input: {}", std::strerror(errno)));
  }
  return std::string(chunk.data(), static_cast<size_t>(got));
}

}  // namespace

InputEnd publish_lines(EventPublisher& publisher, int fd, const std::string& name,
                       const std::atomic<bool>& stop,
                       const std::function<void(uint64_t bytes_read)>& tick) {
  std::string pending;
  uint64_t line_number = 0;
  uint64_t bytes = 0;
  for (;;) {
    if (stop.load()) return InputEnd::stopped;
    // Short waits while deliveries are outstanding, so their reports (and durations) are timely.
    const auto wait = std::chrono::milliseconds(publisher.in_flight() > 0 ? 5 : 100);
    auto chunk = read_some(fd, wait);
    if (!chunk) {
      publisher.serve(std::chrono::milliseconds(0));
      if (tick) tick(bytes);
      continue;
    }
    if (chunk->empty()) break;
    bytes += chunk->size();
    pending += *chunk;
    size_t start = 0;
    for (size_t end; (end = pending.find('\n', start)) != std::string::npos; start = end + 1) {
      if (stop.load()) return InputEnd::stopped;
      publisher.publish_line(std::string_view(pending).substr(start, end - start),
                             fmt::format("{}:{}", name, ++line_number));
    }
    pending.erase(0, start);
    if (tick) tick(bytes);
  }
  // A last line without a newline is still a line.
  if (!pending.empty()) publisher.publish_line(pending, fmt::format("{}:{}", name, ++line_number));
  return InputEnd::finished;
}

}  // namespace evbus
