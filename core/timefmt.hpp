#pragma once
// Timestamps the way pydantic (body) and Python isoformat() (headers) write them.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace evbus {

using Micros = std::chrono::sys_time<std::chrono::microseconds>;

struct Timestamp {
  Micros utc{};                          // the instant
  std::optional<int> offset_minutes = 0;  // nullopt = naive (no offset written)
};

// RFC 3339 / ISO 8601 input: "2025-01-15T10:30:00.123456Z", "+05:30" offsets, naive, a space
// instead of T, more than 6 fractional digits (truncated), or numeric epoch seconds.
std::optional<Timestamp> parse_timestamp(std::string_view text);

// Body rendering: UTC as "Z", microseconds only when non-zero (6 digits), offsets kept.
std::string format_body_time(const Timestamp& ts);
// Header rendering (isoformat): UTC as "+00:00", microseconds only when non-zero.
std::string format_header_time(const Timestamp& ts);

Timestamp now_utc();
// Epoch milliseconds as "2025-01-15T10:30:00.123Z" (consume output timestamps).
std::string format_epoch_ms(int64_t epoch_ms);

}  // namespace evbus
