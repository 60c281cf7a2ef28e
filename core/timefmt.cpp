#include "core/timefmt.hpp"

#include <fmt/format.h>

#include <cstdlib>

namespace evbus {
namespace {

using std::chrono::days;
using std::chrono::floor;
using std::chrono::microseconds;
using std::chrono::minutes;
using std::chrono::seconds;
using std::chrono::sys_days;
using std::chrono::year_month_day;

constexpr int64_t kMicrosPerSecond = 1'000'000;
// pydantic reads a number above this magnitude as epoch milliseconds, below it as seconds.
constexpr int64_t kMillisThreshold = 20'000'000'000;

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// Exactly n digits at pos; advances pos past them.
std::optional<int> read_digits(std::string_view s, std::size_t& pos, std::size_t n) {
  if (pos + n > s.size()) return std::nullopt;
  int value = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const char c = s[pos + i];
    if (!is_digit(c)) return std::nullopt;
    value = value * 10 + (c - '0');
  }
  pos += n;
  return value;
}

bool consume(std::string_view s, std::size_t& pos, char c) {
  if (pos < s.size() && s[pos] == c) {
    ++pos;
    return true;
  }
  return false;
}

// Python's datetime range: years 1 to 9999.
bool in_python_range(Micros wall) {
  const year_month_day ymd{floor<days>(wall)};
  return ymd.year() >= std::chrono::year{1} && ymd.year() <= std::chrono::year{9999};
}

// The first `digits` fractional digits as an integer, rounded half up on the next digit.
int64_t rounded_fraction(std::string_view frac, std::size_t digits) {
  int64_t value = 0;
  for (std::size_t i = 0; i < digits; ++i) {
    value = value * 10 + (i < frac.size() ? frac[i] - '0' : 0);
  }
  if (frac.size() > digits && frac[digits] >= '5') ++value;
  return value;
}

// Numeric epoch text: [+-]digits[.digits]. pydantic reads magnitudes above 2e10 as milliseconds.
std::optional<Timestamp> parse_epoch(std::string_view s) {
  std::size_t pos = 0;
  bool negative = false;
  if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) negative = s[pos++] == '-';
  const std::size_t int_start = pos;
  while (pos < s.size() && is_digit(s[pos])) ++pos;
  std::string_view int_digits = s.substr(int_start, pos - int_start);
  std::string_view frac_digits;
  if (consume(s, pos, '.')) {
    const std::size_t frac_start = pos;
    while (pos < s.size() && is_digit(s[pos])) ++pos;
    frac_digits = s.substr(frac_start, pos - frac_start);
  }
  if (pos != s.size() || (int_digits.empty() && frac_digits.empty())) return std::nullopt;
  while (!int_digits.empty() && int_digits.front() == '0') int_digits.remove_prefix(1);
  if (int_digits.size() > 16) return std::nullopt;  // far beyond year 9999 even as milliseconds
  int64_t whole = 0;
  for (const char c : int_digits) whole = whole * 10 + (c - '0');
  const bool frac_nonzero = frac_digits.find_first_not_of('0') != std::string_view::npos;
  const bool millis = whole > kMillisThreshold || (whole == kMillisThreshold && frac_nonzero);
  int64_t total = millis ? whole * 1000 + rounded_fraction(frac_digits, 3)
                         : whole * kMicrosPerSecond + rounded_fraction(frac_digits, 6);
  if (negative) total = -total;
  const Micros utc{microseconds{total}};
  if (!in_python_range(utc)) return std::nullopt;
  return Timestamp{utc, 0};
}

// [Zz] | [+-]HH[:]MM, to the end of the text. nullopt offset = naive (nothing left).
bool parse_offset(std::string_view s, std::size_t pos, std::optional<int>& offset) {
  if (pos == s.size()) {
    offset = std::nullopt;
    return true;
  }
  if (s[pos] == 'Z' || s[pos] == 'z') {
    offset = 0;
    return pos + 1 == s.size();
  }
  if (s[pos] != '+' && s[pos] != '-') return false;
  const int sign = s[pos] == '-' ? -1 : 1;
  ++pos;
  const auto hh = read_digits(s, pos, 2);
  consume(s, pos, ':');
  const auto mm = read_digits(s, pos, 2);
  if (!hh || !mm || *hh > 23 || *mm > 59 || pos != s.size()) return false;
  offset = sign * (*hh * 60 + *mm);
  return true;
}

std::optional<Timestamp> parse_iso(std::string_view s) {
  std::size_t pos = 0;
  const auto y = read_digits(s, pos, 4);
  if (!y || !consume(s, pos, '-')) return std::nullopt;
  const auto mo = read_digits(s, pos, 2);
  if (!mo || !consume(s, pos, '-')) return std::nullopt;
  const auto d = read_digits(s, pos, 2);
  if (!d || *y < 1) return std::nullopt;
  const year_month_day ymd{std::chrono::year{*y}, std::chrono::month{static_cast<unsigned>(*mo)},
                           std::chrono::day{static_cast<unsigned>(*d)}};
  if (!ymd.ok()) return std::nullopt;
  Micros wall{sys_days{ymd}};
  if (pos == s.size()) return Timestamp{wall, std::nullopt};  // a date alone: naive midnight

  const char sep = s[pos++];
  if (sep != 'T' && sep != 't' && sep != ' ' && sep != '_') return std::nullopt;
  const auto hh = read_digits(s, pos, 2);
  if (!hh || !consume(s, pos, ':')) return std::nullopt;
  const auto mm = read_digits(s, pos, 2);
  if (!mm) return std::nullopt;
  int ss = 0;
  int64_t micros = 0;
  if (consume(s, pos, ':')) {
    const auto sec = read_digits(s, pos, 2);
    if (!sec) return std::nullopt;
    ss = *sec;
    if (consume(s, pos, '.') || consume(s, pos, ',')) {
      const std::size_t frac_start = pos;
      while (pos < s.size() && is_digit(s[pos])) ++pos;
      if (pos == frac_start) return std::nullopt;
      // Digits past the sixth are dropped, not rounded.
      for (std::size_t i = 0; i < 6; ++i) {
        micros = micros * 10 + (frac_start + i < pos ? s[frac_start + i] - '0' : 0);
      }
    }
  }
  if (*hh > 23 || *mm > 59 || ss > 59) return std::nullopt;
  std::optional<int> offset;
  if (!parse_offset(s, pos, offset)) return std::nullopt;
  wall += std::chrono::hours{*hh} + minutes{*mm} + seconds{ss} + microseconds{micros};
  return Timestamp{wall - minutes{offset.value_or(0)}, offset};
}

std::string format_wall(const Timestamp& ts, std::string_view utc_suffix) {
  const Micros wall = ts.utc + minutes{ts.offset_minutes.value_or(0)};
  const auto day = floor<days>(wall);
  const year_month_day ymd{day};
  const int64_t tod = (wall - day).count();
  const int64_t secs = tod / kMicrosPerSecond;
  const int64_t micros = tod % kMicrosPerSecond;
  std::string out =
      fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}", static_cast<int>(ymd.year()),
                  static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()), secs / 3600,
                  secs / 60 % 60, secs % 60);
  if (micros != 0) out += fmt::format(".{:06}", micros);
  if (!ts.offset_minutes) return out;
  const int offset = *ts.offset_minutes;
  if (offset == 0) return out.append(utc_suffix);
  const int magnitude = std::abs(offset);
  return out + fmt::format("{}{:02}:{:02}", offset < 0 ? '-' : '+', magnitude / 60, magnitude % 60);
}

}  // namespace

std::optional<Timestamp> parse_timestamp(std::string_view text) {
  if (text.empty()) return std::nullopt;
  if (auto ts = parse_iso(text)) return ts;
  return parse_epoch(text);
}

std::string format_body_time(const Timestamp& ts) {
  return format_wall(ts, "Z");
}

std::string format_header_time(const Timestamp& ts) {
  return format_wall(ts, "+00:00");
}

Timestamp now_utc() {
  return Timestamp{floor<microseconds>(std::chrono::system_clock::now()), 0};
}

std::string format_epoch_ms(int64_t epoch_ms) {
  const std::chrono::sys_time<std::chrono::milliseconds> t{std::chrono::milliseconds{epoch_ms}};
  const auto day = floor<days>(t);
  const year_month_day ymd{day};
  const int64_t tod = (t - day).count();
  const int64_t secs = tod / 1000;
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", static_cast<int>(ymd.year()),
                     static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                     secs / 3600, secs / 60 % 60, secs % 60, tod % 1000);
}

}  // namespace evbus
