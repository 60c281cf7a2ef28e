#pragma once
// Two kinds of statistics:
//  - RunStats: what one evbus run did, with the 12 keys of eventsource-py's
//    KafkaEventBusStats.get_stats_dict() (contract §7), for --stats-json and the summary line;
//  - BusStats: the state of the bus named by a config (`evbus stats`): topics, watermarks,
//    consumer groups and their lag, the DLQ's depth and age, and event types over a bounded scan.
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "core/config.hpp"
#include "core/producer.hpp"  // Diagnostics
#include "core/schema.hpp"    // Json
#include "core/timefmt.hpp"

namespace evbus {

// ---------------------------------------------------------------------------------------------
// Run statistics (the seed's stats dict)

// The counters eventsource-py's get_stats_dict() keeps (contract §7), for one run.
struct RunStats {
  uint64_t events_published = 0;  // evbus consume publishes nothing (retry copies do not count)
  uint64_t events_consumed = 0;   // every record polled, retry copies and malformed ones included
  uint64_t events_processed_success = 0;  // handled, or no handler for its type
  uint64_t events_processed_failed = 0;   // failed handler runs sent to retry or DLQ
  uint64_t messages_sent_to_dlq = 0;      // DLQ copies acknowledged by the broker
  uint64_t handler_errors = 0;            // failing handler runs
  uint64_t reconnections = 0;             // librdkafka reconnects by itself: always 0
  uint64_t rebalance_count = 0;
  std::optional<Timestamp> last_publish_at, last_consume_at, last_error_at, connected_at;
};

// Exactly the 12 keys in get_stats_dict()'s order; times as Python's isoformat()
// ("2026-01-15T10:30:00.123456+00:00"), or null.
Json run_stats_to_json(const RunStats& stats);

// One line for stderr, e.g. "published 300, consumed 0, processed 0 ok / 0 failed,
// 0 to DLQ, 0 handler errors, 0 rebalances, 0 reconnections in 1.2s".
std::string run_stats_summary(const RunStats& stats, std::chrono::duration<double> elapsed);

// Writes run_stats_to_json to `path` (pretty, newline-terminated) through a temporary file and a
// rename, so a reader never sees half a file. Throws Error{runtime} naming the path.
void write_run_stats_file(const std::string& path, const RunStats& stats);

// ---------------------------------------------------------------------------------------------
// Bus statistics (`evbus stats`)

struct PartitionStats {
  int32_t partition = 0;
  int32_t leader = -1;
  int64_t low = 0;   // log start offset
  int64_t high = 0;  // high watermark
  int64_t messages() const { return high - low; }
};

struct TopicStats {
  std::string name;
  bool exists = false;
  std::vector<PartitionStats> partitions;
  int64_t messages() const;
  int64_t high_sum() const;
  const PartitionStats* partition(int32_t id) const;
};

struct GroupPartitionStats {
  int32_t partition = 0;
  std::optional<int64_t> committed;  // nullopt: the group has no committed offset here
  int64_t high = 0;
  int64_t lag = 0;
};

struct GroupStats {
  std::string name;
  bool configured = false;  // the config's consumer_group: always shown
  bool known = false;       // the broker knows the group (it has members or committed offsets)
  std::string state;        // Stable, Empty, PreparingRebalance, ..., Dead, Unknown
  int members = 0;
  std::vector<GroupPartitionStats> partitions;  // of the main topic
  int64_t lag() const;
  bool has_commits() const;
};

struct DlqRecordInfo {
  int32_t partition = 0;
  int64_t offset = 0;
  int64_t timestamp_ms = -1;                 // the record's own timestamp
  std::optional<std::string> dlq_timestamp;  // the dlq_timestamp header, when present
  double age_seconds = 0;  // from dlq_timestamp when it parses, else from the record timestamp
};

struct DlqStats {
  int64_t depth = 0;  // Σ(high − low): records retained, replayed ones included
  std::optional<DlqRecordInfo> oldest;
  std::optional<DlqRecordInfo> newest;
};

struct TypeScanPartition {
  int32_t partition = 0;
  int64_t from = 0;  // first offset scanned
  int64_t to = 0;    // one past the last offset scanned
};

struct TypeScan {
  uint64_t limit = 0;
  uint64_t scanned = 0;
  int64_t available = 0;  // records in the topic when the scan started
  bool complete = false;  // every retained record was scanned
  std::vector<TypeScanPartition> partitions;
  std::map<std::string, uint64_t> counts;  // first event_type header -> records
  uint64_t without_event_type = 0;
};

struct BusStats {
  std::string bootstrap_servers;
  Timestamp taken_at;
  std::chrono::steady_clock::time_point taken_steady;
  TopicStats main;
  TopicStats dlq_topic;
  std::vector<GroupStats> groups;  // the configured group first, then by name
  DlqStats dlq;
  std::optional<TypeScan> by_type;
};

struct StatsRequest {
  bool by_type = false;
  uint64_t scan_limit = 100000;
  std::chrono::milliseconds timeout{10000};
};

// Change between two snapshots (for --watch).
struct StatsRates {
  double seconds = 0;
  double messages_in_per_second = 0;  // main topic high watermarks
  double dlq_in_per_second = 0;
  std::map<std::string, double> lag_change_per_second;  // per group (+ = falling behind)
};
StatsRates compute_rates(const BusStats& before, const BusStats& after);

// Called during the --by-type scan with records scanned so far and the target; first with 0
// when the scan starts.
using ScanProgress = std::function<void(uint64_t scanned, uint64_t target)>;

// Holds its Kafka clients across collect() calls, so --watch refreshes are cheap.
class BusInspector {
 public:
  // Throws Error{runtime} when no broker answers within `timeout` (on the first collect).
  explicit BusInspector(const BusConfig& config, Diagnostics diagnostics = {});
  ~BusInspector();
  BusInspector(const BusInspector&) = delete;
  BusInspector& operator=(const BusInspector&) = delete;

  BusStats collect(const StatsRequest& request, const ScanProgress& progress = {});

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// Formatters. Absent topics and groups are stated plainly ("absent"), never as errors.
void write_stats_table(std::ostream& out, const BusStats& stats, const StatsRates* rates = nullptr);
Json stats_to_json(const BusStats& stats, const StatsRates* rates = nullptr);
// Gauges in the text exposition format 0.0.4, labelled like the seed's instruments.
void write_stats_prometheus(std::ostream& out, const BusStats& stats);

}  // namespace evbus
