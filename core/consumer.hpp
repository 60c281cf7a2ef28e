#pragma once
// A group consumer on the bus topic with explicit commits, and the consume loop that subcommands
// (consume, later consume --exec with retries and the DLQ) plug their record handling into.
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
#include "core/producer.hpp"  // Diagnostics
#include "core/record.hpp"
#include "core/schema.hpp"

namespace evbus {

enum class StartFrom { beginning, end, stored };
std::optional<StartFrom> parse_start_from(std::string_view text);

struct ConsumerOptions {
  std::string topic;
  StartFrom from = StartFrom::stored;
  bool exit_at_end = false;
  bool reset_to_earliest = true;  // for `stored` with no committed offset (auto_offset_reset)
};

class GroupConsumer {
 public:
  GroupConsumer(const ClientProperties& properties, ConsumerOptions options,
                Diagnostics diagnostics = {});
  ~GroupConsumer();
  GroupConsumer(const GroupConsumer&) = delete;
  GroupConsumer& operator=(const GroupConsumer&) = delete;

  void ensure_reachable(std::chrono::milliseconds timeout);
  bool topic_exists(std::chrono::milliseconds timeout);
  void subscribe();

  // The next record for this consumer, or nullopt when none arrived within `timeout`. With
  // exit_at_end, records at or past a partition's snapshotted high watermark are never returned.
  std::optional<InRecord> poll(std::chrono::milliseconds timeout);
  // `record` was fully handled: its offset + 1 becomes committable.
  void mark_done(const InRecord& record);
  // Synchronously commits every marked offset. Throws Error{runtime} if the broker refuses.
  void commit();
  // exit_at_end: the first assignment happened and every assigned partition reached its snapshot.
  bool reached_end() const;
  int rebalances() const;
  void close();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// One consumed record as the loop hands it to a subcommand.
struct ConsumedEvent {
  InRecord record;
  std::optional<std::string> event_type;  // first event_type header, if UTF-8
  std::optional<Json> body;               // the value parsed as JSON, if it is JSON
  std::vector<ValidationError> problems;  // schema validation; empty = valid
};

enum class Verdict {
  handled,  // commit it and go on
  stop,     // stop now without committing this record (e.g. output pipe closed)
};
using EventSink = std::function<Verdict(const ConsumedEvent&)>;

struct ConsumeRequest {
  StartFrom from = StartFrom::stored;
  bool exit_at_end = false;
  std::optional<uint64_t> max;     // stop after this many records reached the sink
  std::vector<std::string> types;  // empty = every type; others are committed without the sink
  std::chrono::milliseconds connect_timeout{10000};
};

struct ConsumeSummary {
  uint64_t polled = 0;
  uint64_t delivered_to_sink = 0;
  uint64_t filtered = 0;
  uint64_t invalid = 0;
  int rebalances = 0;
  bool topic_missing = false;
};

// Runs until exit-at-end, --max, a stop verdict, or `stop` becoming true. Commits after records
// were handled (batched, and always before returning).
ConsumeSummary consume_events(const BusConfig& config, const SchemaSet& schemas,
                              const ConsumeRequest& request, const EventSink& sink,
                              const std::atomic<bool>& stop, Diagnostics diagnostics = {});

// Validates a consumed record against the schemas as eventsource-py would deserialize it.
ConsumedEvent inspect_record(InRecord record, const SchemaSet& schemas);

}  // namespace evbus
