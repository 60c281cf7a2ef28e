#pragma once
// The dead-letter queue as an operator sees it: list, count and replay (contract §4.3-§4.6).
// Reading assigns every DLQ partition from its low watermark to the high watermark snapshotted at
// start, so a short or empty DLQ returns at once (unlike eventsource-py's get_dlq_messages).
// Records written by eventsource-py (dlq_* headers), Spring Kafka (kafka_dlt-*) and Kafka Connect
// (__connect.errors.*) decode into the same fields. Replay never deletes or alters the DLQ.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "core/config.hpp"
#include "core/producer.hpp"  // Diagnostics
#include "core/record.hpp"
#include "core/schema.hpp"  // Json

namespace evbus {

enum class DlqDialect { eventsource, spring, connect, unknown };
std::string_view to_string(DlqDialect dialect);

// One DLQ record, decoded. Text fields keep the header bytes as they are (they may be non-UTF-8;
// formatters show those as base64 with a marker). nullopt = the header is absent or null.
struct DlqEntry {
  InRecord record;  // topic, partition, offset, timestamp, key, value and headers, untouched
  DlqDialect dialect = DlqDialect::unknown;

  std::optional<std::string> event_type;  // event_type header, else the body's field
  std::optional<std::string> event_id;
  std::optional<std::string> aggregate_id;

  std::optional<std::string> reason;         // dlq_reason; Connect: the failing stage
  std::optional<std::string> error_type;     // exception class name
  std::optional<std::string> error_cause;    // Spring's kafka_dlt-exception-cause-fqcn
  std::optional<std::string> error_message;  // full text; only the table cuts it
  std::optional<int64_t> retry_count;

  // dlq_replay_count: 0 when absent; nullopt when present but not a non-negative integer, which
  // blocks replay unless forced (eventsource-py crashes on it instead).
  std::optional<int64_t> replay_count = 0;
  std::optional<std::string> replay_count_text;  // the raw header, kept for the refusal message

  std::optional<std::string> original_topic;
  std::optional<int32_t> original_partition;
  std::optional<int64_t> original_offset;
  std::optional<int64_t> original_timestamp_ms;  // Spring only
  std::optional<std::string> consumer_group;
  std::optional<std::string> connector;  // Connect: "<connector name>/<task id>"
  std::optional<std::string> failed_at;  // dlq_timestamp (isoformat text)
  std::optional<Json> body;              // the value as JSON, when it is JSON
  std::vector<std::string> problems;     // headers that could not be decoded, and why
};

// Never throws: every malformed header becomes a problem on the entry.
DlqEntry decode_dlq_entry(InRecord record);

// Contract §4.6: drop every header starting with "dlq_" and every "retry_count", keep the rest
// in order, then append retry_count=0 and dlq_replay_count=<next_replay_count>.
Headers replay_headers(const Headers& dlq_headers, int64_t next_replay_count);

struct DlqFilter {
  std::optional<uint64_t> limit;
  std::vector<std::string> types;          // any of (exact)
  std::vector<std::string> reasons;        // any of (exact)
  std::vector<std::string> error_types;    // any of; matches the type, its cause, or a suffix
                                           // after '.' (ValueError matches a.b.ValueError)
  std::vector<std::string> aggregate_ids;  // any of (UUIDs compared in canonical form)
  std::optional<int64_t> since_ms;         // DLQ record timestamp >= since
  std::optional<int64_t> until_ms;         // DLQ record timestamp < until
  std::optional<int32_t> partition;        // DLQ partition

  // True when something narrows the selection (limit excluded).
  bool narrows() const;
  bool matches(const DlqEntry& entry) const;
};

// "2025-01-15T10:30:00Z" (naive = UTC), epoch seconds, or a duration ago: 30s, 15m, 2h, 7d, 1w.
// Returns epoch milliseconds, nullopt when the text is neither.
std::optional<int64_t> parse_time_bound(std::string_view text, int64_t now_ms);
int64_t now_epoch_ms();

struct DlqSource {
  std::string topic;  // the DLQ topic to read (config.dlq_topic_name() unless --topic)
  std::chrono::milliseconds timeout{10000};
  Diagnostics diagnostics;
  // Called as records are read (and, in a bulk replay, replayed): done so far, out of total.
  std::function<void(uint64_t done, uint64_t total)> progress;
};

// ---- list ----------------------------------------------------------------------------------
struct DlqListing {
  std::string topic;
  bool topic_exists = false;
  uint64_t scanned = 0;  // records read before the filter
  bool interrupted = false;
  std::vector<DlqEntry> entries;
};

// Partitions in order, each by offset. Stops at the snapshot, at `limit`, or when `stop` is set.
DlqListing list_dlq(const BusConfig& config, const DlqSource& source, const DlqFilter& filter,
                    const std::atomic<bool>& stop);

// ---- count ---------------------------------------------------------------------------------
struct PartitionRange {
  int32_t partition = 0;
  int64_t low = 0;
  int64_t high = 0;
  int64_t count() const { return high > low ? high - low : 0; }
};

struct DlqCount {
  std::string topic;
  bool topic_exists = false;
  std::vector<PartitionRange> partitions;
  int64_t total = 0;  // Σ(high − low): retained records, never reading one
};
DlqCount count_dlq(const BusConfig& config, const DlqSource& source);

enum class CountBy { reason, type, error_type, partition, original_partition };
std::optional<CountBy> parse_count_by(std::string_view text);
std::string_view to_string(CountBy by);

struct CountGroup {
  std::string value;  // "(none)" when the field is missing
  uint64_t count = 0;
  int64_t oldest_ms = -1;  // timestamp of the oldest DLQ record in the group
};
struct DlqGroupedCount {
  std::string topic;
  bool topic_exists = false;
  CountBy by = CountBy::reason;
  uint64_t total = 0;
  std::vector<CountGroup> groups;  // largest first
};
DlqGroupedCount count_dlq_by(const BusConfig& config, const DlqSource& source, CountBy by,
                             const DlqFilter& filter, const std::atomic<bool>& stop);

// ---- replay --------------------------------------------------------------------------------
struct ReplayOutcome {
  enum class Kind { replayed, refused, failed, planned };
  Kind kind = Kind::planned;
  DlqEntry entry;
  std::string target_topic;
  int32_t target_partition = -1;  // replayed: where the broker put the copy
  int64_t target_offset = -1;
  int64_t next_replay_count = 0;
  OutRecord copy;      // what was (or would be) sent
  std::string reason;  // refused / failed: why
};

struct ReplayOptions {
  std::string target_topic;  // config.topic_name() unless --to
  bool force = false;
  std::chrono::milliseconds delivery_timeout{30000};
};

// Replays exactly the record at partition/offset. A missing, compacted or out-of-range offset
// throws Error{invalid_input} naming topic, partition and offset. Refusal and delivery failure
// come back as outcomes; `dry_run` sends nothing (Kind::planned).
ReplayOutcome replay_one(const BusConfig& config, const DlqSource& source, int32_t partition,
                         int64_t offset, const ReplayOptions& options, bool dry_run);

struct BulkReplayRequest {
  DlqFilter filter;
  ReplayOptions options;
  bool execute = false;                 // --yes; otherwise only a preview
  std::optional<double> rate;           // records per second
  std::optional<std::string> group;     // resumable progress in this group on the DLQ topic
  uint64_t reorder_scan_limit = 10000;  // main-topic records read per partition for the check
};

// A main-topic record of the same aggregate that the replay copy would land after.
struct ReorderWarning {
  std::string aggregate_key;
  int32_t dlq_partition = 0;
  int64_t dlq_offset = 0;
  int32_t original_partition = -1;
  int64_t original_offset = -1;
  uint64_t newer_events = 0;
  int64_t newest_offset = -1;
  std::optional<std::string> newest_type;
};

struct ReplayPreview {
  std::string source_topic;
  std::string target_topic;
  bool topic_exists = false;
  uint64_t selected = 0;  // matched the filter (including the refused)
  uint64_t refused = 0;   // over the replay limit or unparseable count, without --force
  struct Group {
    std::string event_type;
    std::string reason;
    uint64_t count = 0;
  };
  std::vector<Group> groups;  // by type and reason, largest first
  std::optional<std::string> resume_group;
  bool resumed = false;      // the group had committed offsets on the DLQ topic
  std::string reorder_rule;  // how the reorder check decided, in words
  bool reorder_scan_truncated = false;
  uint64_t reorder_unchecked = 0;  // no key, or no original position in the target topic
  std::vector<ReorderWarning> reorder_warnings;
  uint64_t already_replayed = 0;  // a copy with the same event_id and dlq_replay_count exists
};

struct BulkReplayReport {
  ReplayPreview preview;  // always filled (the run also starts with the preview's selection)
  bool executed = false;
  bool interrupted = false;
  uint64_t replayed = 0;
  uint64_t refused = 0;
  uint64_t failed = 0;
};

using ReplaySink = std::function<void(const ReplayOutcome&)>;

// Without `execute`: only the preview. With it: replays each selected record in DLQ order
// (partition by partition), waits for the broker's ack of each copy, and with a group commits
// offset+1 in that group only after the ack. `stop` ends it cleanly between records.
BulkReplayReport replay_bulk(const BusConfig& config, const DlqSource& source,
                             const BulkReplayRequest& request, const ReplaySink& on_outcome,
                             const std::atomic<bool>& stop);

// ---- formatters ----------------------------------------------------------------------------
Json dlq_entry_to_json(const DlqEntry& entry);
// A table for ~120 columns: long errors are cut with "…" (JSON never cuts).
void write_dlq_table(std::ostream& out, const DlqListing& listing);
void write_dlq_json(std::ostream& out, const DlqListing& listing);   // one array
void write_dlq_jsonl(std::ostream& out, const DlqListing& listing);  // one object per line

void write_count_table(std::ostream& out, const DlqCount& count);
void write_count_json(std::ostream& out, const DlqCount& count);
void write_grouped_count_table(std::ostream& out, const DlqGroupedCount& count, int64_t now_ms);
void write_grouped_count_json(std::ostream& out, const DlqGroupedCount& count, int64_t now_ms);

void write_replay_outcome_text(std::ostream& out, const ReplayOutcome& outcome);
Json replay_outcome_to_json(const ReplayOutcome& outcome);
// --dry-run of a single replay: the record that would be sent.
void write_replay_plan_text(std::ostream& out, const ReplayOutcome& outcome);
void write_replay_preview_text(std::ostream& out, const ReplayPreview& preview);
Json replay_preview_to_json(const ReplayPreview& preview);
// "replayed N, refused N, failed N" (+ interrupted).
void write_replay_summary_text(std::ostream& out, const BulkReplayReport& report);
Json replay_report_to_json(const BulkReplayReport& report);

}  // namespace evbus
