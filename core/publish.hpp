#pragma once
// Publishing domain events: input lines or objects -> validated envelopes -> records on the bus
// topic, each ending as exactly one outcome (invalid, delivered, failed or planned).
#include <atomic>
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
#include "core/stats.hpp"
#include "core/timefmt.hpp"

namespace evbus {

class BusMetrics;

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
  // When set, every outcome is also recorded as the seed's instruments (not owned; must outlive
  // the publisher). evbus publishes event by event: each event is one publish of batch size 1,
  // and its duration runs from hand-off to the broker's acknowledgement.
  BusMetrics* metrics = nullptr;
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
  // Dry run: false when the topic does not exist yet (partition_count is then the broker's
  // num.partitions, which auto-creation would use).
  bool topic_exists() const { return topic_exists_; }

  // Serves delivery reports for up to `timeout` (for idle moments between input lines), so
  // outcomes and metrics do not wait for the next event.
  void serve(std::chrono::milliseconds timeout);
  // Records handed to the producer and not yet acknowledged.
  int64_t in_flight() const;
  // The seed's stats dict for this run: events_published, last_publish_at, last_error_at and
  // connected_at apply to publishing; the rest stay 0.
  RunStats run_stats() const;

 private:
  struct Pending {
    PublishOutcome outcome;
    std::chrono::steady_clock::time_point handed_off;
  };
  void emit(PublishOutcome outcome);
  void drain(std::vector<DeliveryReport> reports);
  void record_metrics(const PublishOutcome& outcome, std::optional<double> duration_ms);

  BusConfig config_;
  const SchemaSet& schemas_;
  PublishOptions options_;
  OutcomeSink sink_;
  EnvelopeDefaults defaults_;
  std::unique_ptr<Producer> producer_;
  int partition_count_ = -1;  // dry run
  bool topic_exists_ = true;  // dry run
  uint64_t next_id_ = 1;
  std::map<uint64_t, Pending> pending_;  // awaiting delivery reports
  PublishSummary summary_;
  std::optional<Timestamp> connected_at_;
  std::optional<Timestamp> last_publish_at_;
  std::optional<Timestamp> last_error_at_;
};

// How reading an input ended.
enum class InputEnd { finished, stopped };

// Publishes every JSON line read from `fd` (a file or a pipe) until its end or `stop`. Sources
// are named "<name>:<line>". The input is read without blocking forever: while it is idle,
// delivery reports are served (every 5 ms while deliveries are outstanding, else every 100 ms), so
// outcomes, metrics and progress keep up with a slow writer, and a stop request (SIGINT/SIGTERM) is
// noticed even when no line comes. `tick` runs on this thread after every chunk read and every idle
// wait, with the bytes read. Throws Error{runtime} when the input cannot be read.
InputEnd publish_lines(EventPublisher& publisher, int fd, const std::string& name,
                       const std::atomic<bool>& stop,
                       const std::function<void(uint64_t bytes_read)>& tick = {});

}  // namespace evbus
