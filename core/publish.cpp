#include "core/publish.hpp"

#include <fmt/format.h>

#include "core/error.hpp"
#include "core/partition.hpp"

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
  producer_->ensure_reachable(options_.connect_timeout);
  if (options_.dry_run)
    partition_count_ = producer_->partition_count(config_.topic_name(), options_.connect_timeout);
}

EventPublisher::~EventPublisher() = default;

void EventPublisher::emit(PublishOutcome outcome) {
  switch (outcome.kind) {
    case PublishOutcome::Kind::invalid: ++summary_.invalid; break;
    case PublishOutcome::Kind::delivered: ++summary_.delivered; break;
    case PublishOutcome::Kind::failed: ++summary_.failed; break;
    case PublishOutcome::Kind::planned: ++summary_.planned; break;
  }
  if (sink_) sink_(outcome);
}

void EventPublisher::drain(std::vector<DeliveryReport> reports) {
  for (auto& report : reports) {
    auto it = pending_.find(report.id);
    if (it == pending_.end()) continue;
    PublishOutcome outcome = std::move(it->second);
    pending_.erase(it);
    outcome.partition = report.partition;
    outcome.offset = report.offset;
    if (report.error) {
      outcome.kind = PublishOutcome::Kind::failed;
      outcome.errors.push_back({"", *report.error});
    } else {
      outcome.kind = PublishOutcome::Kind::delivered;
    }
    emit(std::move(outcome));
  }
}

void EventPublisher::publish_line(std::string_view line, const std::string& source) {
  if (line.find_first_not_of(" \t\r") == std::string_view::npos) return;
  Json input;
  try {
    input = Json::parse(line);
  } catch (const Json::parse_error& e) {
    ++summary_.read;
    PublishOutcome outcome;
    outcome.source = source;
    outcome.errors.push_back({"", fmt::format("not valid JSON: {}", e.what())});
    emit(std::move(outcome));
    return;
  }
  publish_json(input, source);
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
    if (partition_count_ > 0) outcome.partition = partition_for_key(event.aggregate_id, partition_count_);
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
    pending_.emplace(id, std::move(outcome));
  }
  drain(producer_->poll(std::chrono::milliseconds(0)));
}

PublishSummary EventPublisher::finish() {
  if (!options_.dry_run) drain(producer_->flush(options_.flush_timeout));
  // Anything still without a report was not acknowledged in time: it counts as failed.
  for (auto& [id, outcome] : pending_) {
    outcome.kind = PublishOutcome::Kind::failed;
    outcome.errors.push_back({"", "no delivery report before the flush timeout"});
    emit(std::move(outcome));
  }
  pending_.clear();
  return summary_;
}

}  // namespace evbus
