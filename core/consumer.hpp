#pragma once
// A group consumer on the bus topic with explicit commits, and the consume loop that subcommands
// plug their record handling into: plain `consume` (print every record) and `consume --exec`
// (handlers with eventsource-py's retries and dead-letter queue, contract §3-§5).
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
#include "core/metrics.hpp"
#include "core/producer.hpp"  // Diagnostics
#include "core/record.hpp"
#include "core/schema.hpp"
#include "core/stats.hpp"
#include "core/timefmt.hpp"

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
  // Revocations of a non-empty set of partitions (eventsource-py's rebalance_count).
  int rebalances() const;
  void close();

  // Stops fetching one partition (its prefetched records are dropped by librdkafka; fetching
  // resumes after the last record returned by poll()).
  void pause(int32_t partition);
  void resume(int32_t partition);
  bool is_assigned(int32_t partition) const;
  // exit_at_end: also read up to `end` on this partition (a retry copy this run appended). Ignored
  // once a record past the snapshot was seen there, so nothing someone else appended is skipped.
  void extend_end(int32_t partition, int64_t end);
  // Called with the partitions being revoked (or lost), inside poll(), before their marked
  // offsets are committed.
  void set_revoke_hook(std::function<void(const std::vector<int32_t>&)> hook);
  // librdkafka's statistics JSON (needs statistics.interval.ms > 0), on the polling thread.
  void on_statistics(std::function<void(std::string_view json)> sink);

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
  int64_t retry_count = 0;                // the retry_count header, read tolerantly
};

enum class Verdict {
  handled,  // commit it and go on
  stop,     // stop now without committing this record (e.g. output pipe closed)
};
using EventSink = std::function<Verdict(const ConsumedEvent&)>;

// What a handler made of one event (handle_events).
struct Disposition {
  enum class Kind { handled, failed, stop };
  Kind kind = Kind::handled;
  std::string error_type;  // failed: e.g. HandlerError, HandlerTimeout (becomes dlq_error_type)
  std::string message;     // failed: becomes dlq_error_message (cut to 1000 code points)

  static Disposition handled() { return {}; }
  static Disposition failed(std::string type, std::string text) {
    return {Kind::failed, std::move(type), std::move(text)};
  }
  static Disposition stop() { return {Kind::stop, {}, {}}; }
};
using EventHandler = std::function<Disposition(const ConsumedEvent&)>;

// Things worth telling the operator while handling: warnings always, info with -v.
enum class NoticeLevel { warning, info };
using Notices = std::function<void(NoticeLevel, const std::string&)>;

struct ConsumeRequest {
  StartFrom from = StartFrom::stored;
  bool exit_at_end = false;
  std::optional<uint64_t> max;     // stop after this many records reached the sink
  std::vector<std::string> types;  // empty = every type; others are committed without the sink
  std::chrono::milliseconds connect_timeout{10000};
  // handle_events: with enable_dlq false, a record that exhausted its retries (or cannot be
  // deserialized) is committed and counted instead of stopping the run.
  bool skip_failed = false;
  // handle_events: how long a retry or DLQ copy may take to be acknowledged by the broker.
  std::chrono::milliseconds delivery_timeout{60000};
  // Live instruments for --metrics-port (optional; owned by the caller) and the handler's name
  // in their labels.
  BusMetrics* metrics = nullptr;
  std::string handler_name = "exec";
  // Receives the run's statistics when the run ends, also when it ends with an error, so
  // --stats-json is written on every path.
  std::function<void(const RunStats&)> on_finish;
};

struct ConsumeSummary {
  uint64_t polled = 0;
  uint64_t delivered_to_sink = 0;  // records that reached the sink or handler
  uint64_t filtered = 0;
  uint64_t invalid = 0;
  int rebalances = 0;
  bool topic_missing = false;
  // handle_events only.
  uint64_t retried = 0;        // retry copies acknowledged
  uint64_t dead_lettered = 0;  // DLQ copies acknowledged
  uint64_t skipped = 0;        // failed but committed because of skip_failed
  uint64_t retry_waits = 0;    // records parked until their retry_after
  RunStats stats;
};

// Runs until exit-at-end, --max, a stop verdict, or `stop` becoming true. Commits after records
// were handled (batched, and always before returning).
ConsumeSummary consume_events(const BusConfig& config, const SchemaSet& schemas,
                              const ConsumeRequest& request, const EventSink& sink,
                              const std::atomic<bool>& stop, Diagnostics diagnostics = {});

// consume --exec: like consume_events, with eventsource-py's failure handling (contract §3-§5):
// - a record whose retry_after is ahead waits, pausing only its own partition;
// - a record that cannot be deserialized (no event_type header, unknown type, not JSON, schema
//   violation) goes straight to the DLQ with dlq_reason=deserialization_error (when the config
//   names no schemas, types are not checked);
// - a failed handler run is republished to the topic tail with retry_count+1 and retry_after,
//   or dead-lettered with max_retries_exceeded once retries are exhausted;
// - a record is committed only after its handler succeeded or its copy was acknowledged;
// - with enable_dlq false, a record that would be dead-lettered stops the run with
//   Error{runtime} and stays uncommitted, unless request.skip_failed.
// One record at a time: handlers never run concurrently or out of order within a partition.
// Retry copies go to the partition tail, as in eventsource-py, so a retried event can be handled
// after newer events of its aggregate. With exit_at_end, retry copies written by this run are
// followed too.
ConsumeSummary handle_events(const BusConfig& config, const SchemaSet& schemas,
                             const ConsumeRequest& request, const EventHandler& handler,
                             const std::atomic<bool>& stop, Diagnostics diagnostics = {},
                             Notices notices = {});

// Validates a consumed record against the schemas as eventsource-py would deserialize it.
ConsumedEvent inspect_record(InRecord record, const SchemaSet& schemas);

}  // namespace evbus
