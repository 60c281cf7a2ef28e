#pragma once
// Publishing domain events: input lines or objects -> validated envelopes -> records on the bus
// topic, each ending as exactly one outcome (invalid, delivered, failed or planned).
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/config.hpp"
#include "core/envelope.hpp"
#include "core/producer.hpp"
#include "core/schema.hpp"

namespace evbus {

struct PublishOutcome {
  enum class Kind { invalid, delivered, failed, planned };
  Kind kind = Kind::invalid;
  std::string source;  // "line 3" / "flags" / "stdin:3" ...
  std::string event_type;
  std::string event_id;
  std::string aggregate_id;
  std::string topic;
  int32_t partition = -1;
  int64_t offset = -1;
  std::vector<ValidationError> errors;  // invalid: every problem; failed: one with the reason
  std::optional<OutRecord> record;      // planned (dry run): the full record
};

struct PublishSummary {
  uint64_t read = 0;
  uint64_t invalid = 0;
  uint64_t delivered = 0;
  uint64_t failed = 0;
  uint64_t planned = 0;
};

using OutcomeSink = std::function<void(const PublishOutcome&)>;

struct PublishOptions {
  std::optional<std::string> type;  // --type, for input without event_type
  bool dry_run = false;
  std::chrono::milliseconds connect_timeout{10000};
  std::chrono::milliseconds flush_timeout{60000};
};

class EventPublisher {
 public:
  // Connects (bounded by connect_timeout, Error{runtime} otherwise). In dry-run mode nothing is
  // sent; the topic's real partition count is read to predict partitions.
  EventPublisher(const BusConfig& config, const SchemaSet& schemas, PublishOptions options,
                 OutcomeSink sink, EnvelopeDefaults defaults = EnvelopeDefaults::system(),
                 Diagnostics diagnostics = {});
  ~EventPublisher();

  // One JSON line (blank lines are skipped and not counted).
  void publish_line(std::string_view line, const std::string& source);
  void publish_json(const Json& input, const std::string& source);
  // Waits for every delivery report; every event has had its outcome afterwards.
  PublishSummary finish();
  const PublishSummary& summary() const { return summary_; }
  // Dry run: the bus topic's partition count, -1 when it does not exist yet.
  int partition_count() const { return partition_count_; }

 private:
  void emit(PublishOutcome outcome);
  void drain(std::vector<DeliveryReport> reports);

  BusConfig config_;
  const SchemaSet& schemas_;
  PublishOptions options_;
  OutcomeSink sink_;
  EnvelopeDefaults defaults_;
  std::unique_ptr<Producer> producer_;
  int partition_count_ = -1;  // dry run
  uint64_t next_id_ = 1;
  std::map<uint64_t, PublishOutcome> pending_;  // awaiting delivery reports
  PublishSummary summary_;
};

}  // namespace evbus
