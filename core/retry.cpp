#include "core/retry.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

namespace evbus {

RetryPolicy RetryPolicy::from_config(const BusConfig& config) {
  RetryPolicy policy;
  policy.max_retries = config.max_retries;
  policy.base_delay = config.retry_base_delay;
  policy.max_delay = config.retry_max_delay;
  policy.jitter = config.retry_jitter;
  return policy;
}

namespace {

double system_unit_random() {
  // Jitter only decorrelates consumers; it needs no cryptographic source.
  thread_local std::mt19937_64 engine{std::random_device{}()};
  return std::uniform_real_distribution<double>(0.0, 1.0)(engine);
}

}  // namespace

double RetryPolicy::delay_for(int64_t retry_count) const {
  // 2**n overflows for huge counts; eventsource-py caps the exponent at 512 for the same reason.
  const auto exponent = static_cast<int>(std::clamp<int64_t>(retry_count, 0, 512));
  double delay = std::min(base_delay * std::ldexp(1.0, exponent), max_delay);
  if (jitter > 0) {
    const double range = delay * jitter;
    const double u = unit_random ? unit_random() : system_unit_random();
    // random.uniform(-range, range) is -range + 2*range*u.
    delay = std::max(0.0, delay + (-range + 2.0 * range * u));
  }
  return delay;
}

namespace {

std::string_view trim_ascii_space(std::string_view s) {
  const auto is_space = [](char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
  };
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

// Python int() of ASCII text: optional sign, digits with single '_' between them.
std::optional<int64_t> parse_python_int(std::string_view text) {
  std::string_view s = trim_ascii_space(text);
  bool negative = false;
  if (!s.empty() && (s.front() == '+' || s.front() == '-')) {
    negative = s.front() == '-';
    s.remove_prefix(1);
  }
  if (s.empty() || s.front() == '_' || s.back() == '_') return std::nullopt;
  int64_t value = 0;
  bool saturated = false;
  char previous = 0;
  for (const char c : s) {
    if (c == '_') {
      if (previous == '_') return std::nullopt;
    } else if (c >= '0' && c <= '9') {
      if (value > (std::numeric_limits<int64_t>::max() - (c - '0')) / 10) saturated = true;
      if (!saturated) value = value * 10 + (c - '0');
    } else {
      return std::nullopt;
    }
    previous = c;
  }
  if (saturated) value = std::numeric_limits<int64_t>::max();
  return negative ? -value : value;
}

// Printable form of a header value for a warning: the text, or a JSON-escaped rendering of bytes.
std::string shown(std::string_view raw) {
  std::string out = "'";
  for (const char c : raw) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f && c != '\'')
      out += c;
    else
      out += fmt::format("\\x{:02x}", u);
  }
  return out + "'";
}

}  // namespace

int64_t parse_retry_count(const Headers& headers) {
  const Header* h = find_header(headers, kRetryCountHeader);
  if (h == nullptr || !h->value) return 0;
  const auto parsed = parse_python_int(*h->value);
  // eventsource-py reads garbage as 0; a negative count would make its RetryPolicy raise (a
  // poison pill), so evbus reads it as 0 too.
  if (!parsed || *parsed < 0) return 0;
  return *parsed;
}

RetryAfter parse_retry_after(const Headers& headers, double now_epoch, double longest_delay) {
  RetryAfter out;
  const Header* h = find_header(headers, kRetryAfterHeader);
  if (h == nullptr || !h->value || h->value->empty()) return out;  // Python: falsy value, no wait
  std::string_view s = trim_ascii_space(*h->value);
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  double value = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) {
    out.problem = fmt::format("retry_after {} is not a number", shown(*h->value));
    return out;
  }
  if (!std::isfinite(value)) {
    out.problem = fmt::format("retry_after {} is not a finite time", shown(*h->value));
    return out;
  }
  // A copy written by any sane producer is due within the longest delay; a day of slack covers
  // clock skew between hosts. Further ahead would park the partition for good.
  constexpr double kSlackSeconds = 86400.0;
  if (value > now_epoch + longest_delay + kSlackSeconds) {
    out.problem = fmt::format("retry_after {} is {:.0f} s ahead, beyond any retry delay",
                              shown(*h->value), value - now_epoch);
    return out;
  }
  out.due_epoch = value;
  return out;
}

namespace {

// Splits text into code points, each as its UTF-8 bytes; an invalid byte becomes U+FFFD.
std::vector<std::string> split_code_points(std::string_view s) {
  static constexpr std::string_view kReplacement = "\xEF\xBF\xBD";
  std::vector<std::string> out;
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t len = utf8_sequence_length(s, i);
    out.emplace_back(len == 0 ? kReplacement : s.substr(i, len));
    i += len == 0 ? 1 : len;
  }
  return out;
}

}  // namespace

std::string first_code_points(std::string_view text, std::size_t max_code_points) {
  const auto points = split_code_points(text);
  std::string out;
  for (std::size_t i = 0; i < points.size() && i < max_code_points; ++i) out += points[i];
  return out;
}

std::string last_code_points(std::string_view text, std::size_t max_code_points) {
  const auto points = split_code_points(text);
  const std::size_t start = points.size() > max_code_points ? points.size() - max_code_points : 0;
  std::string out;
  for (std::size_t i = start; i < points.size(); ++i) out += points[i];
  return out;
}

OutRecord make_retry_record(const InRecord& failed, int64_t new_count, double retry_after_epoch) {
  OutRecord out;
  out.topic = failed.topic;
  out.key = failed.key;
  out.value = failed.value;
  for (const auto& h : failed.headers)
    if (h.name != kRetryCountHeader && h.name != kRetryAfterHeader) out.headers.push_back(h);
  out.headers.push_back({std::string(kRetryCountHeader), std::to_string(new_count)});
  out.headers.push_back({std::string(kRetryAfterHeader), python_float_repr(retry_after_epoch)});
  return out;
}

std::string_view to_string(DlqReason reason) {
  switch (reason) {
    case DlqReason::max_retries_exceeded:
      return "max_retries_exceeded";
    case DlqReason::deserialization_error:
      return "deserialization_error";
    case DlqReason::republish_failed:
      return "republish_failed";
  }
  return "max_retries_exceeded";
}

OutRecord make_dlq_record(const InRecord& failed, const DeadLetter& letter,
                          const std::string& dlq_topic, const std::string& consumer_group,
                          const Timestamp& now) {
  constexpr std::size_t kMessageCodePoints = 1000;  // eventsource-py: str(error)[:1000]
  OutRecord out;
  out.topic = dlq_topic;
  out.key = failed.key;
  out.value = failed.value;
  out.headers = failed.headers;
  const auto add = [&](const char* name, std::string value) {
    out.headers.push_back({name, std::move(value)});
  };
  add("dlq_reason", std::string(to_string(letter.reason)));
  add("dlq_error_type", letter.error_type);
  add("dlq_error_message", first_code_points(letter.error_message, kMessageCodePoints));
  add("dlq_retry_count", std::to_string(letter.retry_count));
  add("dlq_timestamp", format_header_time(Timestamp{now.utc, 0}));
  add("dlq_original_topic", failed.topic);
  add("dlq_original_partition", std::to_string(failed.partition));
  add("dlq_original_offset", std::to_string(failed.offset));
  add("dlq_consumer_group", consumer_group);
  return out;
}

}  // namespace evbus
