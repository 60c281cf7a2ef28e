#pragma once
// Retries and dead letters as eventsource-py writes them (contract §4.1-§4.3): the backoff
// policy, tolerant readers of the retry headers, and the retry and DLQ records built from a
// consumed record. Pure functions: no client, no clock unless passed in.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "core/config.hpp"
#include "core/record.hpp"
#include "core/text.hpp"
#include "core/timefmt.hpp"

namespace evbus {

// Exponential backoff with symmetric jitter applied after the cap, clamped at >= 0 (§4.1).
struct RetryPolicy {
  int max_retries = 3;
  double base_delay = 1.0;  // seconds
  double max_delay = 60.0;  // caps the exponential term, before jitter
  double jitter = 0.1;      // fraction, symmetric
  // Uniform in [0, 1); the system random source when empty. Injectable for exact tests.
  std::function<double()> unit_random;

  static RetryPolicy from_config(const BusConfig& config);

  // Seconds to wait before handling the copy republished after attempt `retry_count` (0-based).
  double delay_for(int64_t retry_count) const;
  // Another retry is allowed after `retry_count` retries.
  bool should_retry(int64_t retry_count) const { return retry_count < max_retries; }
  // The longest delay the policy can produce: max_delay * (1 + jitter).
  double longest_delay() const { return max_delay * (1.0 + jitter); }
};

// Header names evbus reads and writes.
inline constexpr std::string_view kRetryCountHeader = "retry_count";
inline constexpr std::string_view kRetryAfterHeader = "retry_after";

// retry_count as the consumer reads it: the first header, a decimal integer (Python int()
// syntax: surrounding whitespace, a sign, '_' between digits). Missing, unparseable, non-UTF-8 or
// negative values read as 0; a value too large for int64 saturates (it is exhausted anyway).
int64_t parse_retry_count(const Headers& headers);

// When a record becomes due, read from its first retry_after header.
struct RetryAfter {
  double due_epoch = 0;  // absolute epoch seconds; 0 = due now
  // Set when the header was present but not usable (not a number, inf/nan, or further ahead than
  // any delay the policy can produce plus a day). Such a record is due now: never a poison pill.
  std::optional<std::string> problem;
};
RetryAfter parse_retry_after(const Headers& headers, double now_epoch, double longest_delay);

// The first `max_code_points` code points of `text`, with invalid UTF-8 replaced by U+FFFD so
// the result is always valid UTF-8 (Python's str(error)[:1000]).
std::string first_code_points(std::string_view text, std::size_t max_code_points);
// The last `max_code_points` code points, likewise (the useful end of a stderr capture).
std::string last_code_points(std::string_view text, std::size_t max_code_points);

// §4.2: same topic, key and value bytes; every header except retry_count and retry_after, in
// order; then retry_count=<new_count> and retry_after=<python_float_repr(retry_after_epoch)>.
// The partition is left to the partitioner, as aiokafka does: the same key lands on the same
// partition, at its tail.
OutRecord make_retry_record(const InRecord& failed, int64_t new_count, double retry_after_epoch);

enum class DlqReason { max_retries_exceeded, deserialization_error, republish_failed };
std::string_view to_string(DlqReason reason);

struct DeadLetter {
  DlqReason reason = DlqReason::max_retries_exceeded;
  std::string error_type;     // e.g. HandlerError, HandlerTimeout, DeserializationError
  std::string error_message;  // cut to its first 1000 code points in the header
  int64_t retry_count = 0;    // the failing record's retry_count
};

// §4.3: topic `dlq_topic`, original key and value bytes, all original headers in order, then
// dlq_reason, dlq_error_type, dlq_error_message, dlq_retry_count, dlq_timestamp (isoformat with
// +00:00), dlq_original_topic, dlq_original_partition, dlq_original_offset, dlq_consumer_group.
OutRecord make_dlq_record(const InRecord& failed, const DeadLetter& letter,
                          const std::string& dlq_topic, const std::string& consumer_group,
                          const Timestamp& now);

}  // namespace evbus
