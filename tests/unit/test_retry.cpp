// Retry policy and the retry/DLQ records, byte for byte as eventsource-py writes them (contract
// §4.1-§4.3). Expected floats were printed by CPython 3.11 repr().
#include <doctest/doctest.h>

#include <cstdint>
#include <limits>
#include <string>

#include "core/retry.hpp"

using namespace evbus;
using namespace std::chrono;

namespace {

RetryPolicy policy(double base, double max, double jitter, int retries, double u) {
  RetryPolicy p;
  p.base_delay = base;
  p.max_delay = max;
  p.jitter = jitter;
  p.max_retries = retries;
  p.unit_random = [u] { return u; };
  return p;
}

InRecord failing_record() {
  InRecord r;
  r.topic = "shop.stream";
  r.partition = 2;
  r.offset = 43;
  r.key = "7d3c2b1a-5e4f-4a6b-8c9d-0e1f2a3b4c5d";
  r.value = std::string("{\"x\":\"caf\xC3\xA9\",\"bin\":\"\xFF\"}");
  r.headers = {
      {"event_id", "0b6f1c3e-8a4d-4e0f-9c1a-2f5e7d9b1a11"},
      {"event_type", "OrderPlaced"},
      {"retry_count", "2"},
      {"retry_after", "1796312852.1414142"},
      {"traceparent", std::nullopt},
      {"dlq_replay_count", "1"},
  };
  return r;
}

Headers headers_of(std::initializer_list<std::pair<const char*, const char*>> list) {
  Headers out;
  for (const auto& [name, value] : list) out.push_back({name, std::string(value)});
  return out;
}

}  // namespace

TEST_CASE("delay_for: min(base*2^n, max), then symmetric jitter after the cap") {
  // u = 0.5 is the middle of random.uniform(-r, r): no jitter.
  const auto mid = policy(1.0, 60.0, 0.1, 3, 0.5);
  CHECK(mid.delay_for(0) == 1.0);
  CHECK(mid.delay_for(1) == 2.0);
  CHECK(mid.delay_for(2) == 4.0);
  CHECK(mid.delay_for(5) == 32.0);
  CHECK(mid.delay_for(6) == 60.0);       // capped
  CHECK(mid.delay_for(100000) == 60.0);  // the exponent is capped, no overflow
  // u = 0 and u -> 1 reach the ends: the delay can exceed max_delay by the jitter (§4.1).
  CHECK(policy(1.0, 60.0, 0.1, 3, 0.0).delay_for(10) == doctest::Approx(54.0));
  CHECK(policy(1.0, 60.0, 0.1, 3, 1.0).delay_for(10) == doctest::Approx(66.0));
  // Python: -r + (r - -r) * u, then added: 8 + (-0.8 + 1.6 * 0.25) == 7.6 exactly as CPython does.
  CHECK(policy(1.0, 60.0, 0.1, 3, 0.25).delay_for(3) == 8.0 + (-0.8 + 1.6 * 0.25));
  // Full jitter at u = 0 clamps at zero, never negative.
  CHECK(policy(0.1, 0.5, 1.0, 3, 0.0).delay_for(0) == 0.0);
  // No jitter: the random source is not consulted.
  RetryPolicy exact = policy(0.1, 0.5, 0.0, 4, 0.0);
  exact.unit_random = [] {
    FAIL("random source used with jitter 0");
    return 0.0;
  };
  CHECK(exact.delay_for(0) == 0.1);
  CHECK(exact.delay_for(1) == 0.2);
  CHECK(exact.delay_for(2) == 0.4);
  CHECK(exact.delay_for(3) == 0.5);
  CHECK(exact.longest_delay() == 0.5);
}

TEST_CASE("should_retry: total attempts are max_retries + 1") {
  const auto p = policy(1.0, 60.0, 0.1, 3, 0.5);
  CHECK(p.should_retry(0));
  CHECK(p.should_retry(2));
  CHECK_FALSE(p.should_retry(3));
  CHECK_FALSE(policy(1.0, 60.0, 0.1, 0, 0.5).should_retry(0));
  BusConfig config;
  config.max_retries = 5;
  config.retry_base_delay = 0.25;
  config.retry_max_delay = 2.0;
  config.retry_jitter = 0.2;
  const auto from = RetryPolicy::from_config(config);
  CHECK(from.max_retries == 5);
  CHECK(from.base_delay == 0.25);
  CHECK(from.max_delay == 2.0);
  CHECK(from.jitter == 0.2);
  CHECK(from.longest_delay() == doctest::Approx(2.4));
}

TEST_CASE("parse_retry_count reads like Python int(), never fails") {
  CHECK(parse_retry_count({}) == 0);
  CHECK(parse_retry_count(headers_of({{"retry_count", "3"}})) == 3);
  CHECK(parse_retry_count(headers_of({{"retry_count", " 2\n"}})) == 2);
  CHECK(parse_retry_count(headers_of({{"retry_count", "+4"}})) == 4);
  CHECK(parse_retry_count(headers_of({{"retry_count", "1_0"}})) == 10);
  CHECK(parse_retry_count(headers_of({{"retry_count", "1__0"}})) == 0);
  CHECK(parse_retry_count(headers_of({{"retry_count", "abc"}})) == 0);
  CHECK(parse_retry_count(headers_of({{"retry_count", "2.0"}})) == 0);
  CHECK(parse_retry_count(headers_of({{"retry_count", ""}})) == 0);
  CHECK(parse_retry_count(headers_of({{"retry_count", "-1"}})) == 0);
  CHECK(parse_retry_count(headers_of({{"retry_count", "\xFF"}})) == 0);
  CHECK(parse_retry_count(headers_of({{"retry_count", "99999999999999999999999"}})) ==
        std::numeric_limits<int64_t>::max());
  // The first header wins, as eventsource-py reads it.
  CHECK(parse_retry_count(headers_of({{"retry_count", "1"}, {"retry_count", "3"}})) == 1);
  Headers null_value{{"retry_count", std::nullopt}};
  CHECK(parse_retry_count(null_value) == 0);
}

TEST_CASE("parse_retry_after: unusable values are due now with a reason") {
  const double now = 1796312850.0;
  const double longest = 66.0;
  auto parse = [&](const char* value) {
    return parse_retry_after(headers_of({{"retry_after", value}}), now, longest);
  };
  CHECK(parse_retry_after({}, now, longest).due_epoch == 0);
  CHECK_FALSE(parse_retry_after({}, now, longest).problem);
  CHECK(parse("1796312852.1414142").due_epoch == 1796312852.1414142);
  CHECK_FALSE(parse("1796312852.1414142").problem);
  CHECK(parse(" 1796312852.5 ").due_epoch == 1796312852.5);
  CHECK(parse("1.7e9").due_epoch == 1.7e9);
  CHECK(parse("100").due_epoch == 100.0);  // long past: due
  CHECK_FALSE(parse("").problem);          // Python: a falsy value means no wait
  for (const char* bad : {"inf", "-inf", "nan", "abc", "12abc", "\xFF\xFE", "1e400"}) {
    CAPTURE(bad);
    const auto r = parse(bad);
    CHECK(r.due_epoch == 0);
    CHECK(r.problem.has_value());
  }
  // Beyond the longest delay plus a day: absurd (years ahead), due now.
  const auto years = parse("1999999999.0");
  CHECK(years.due_epoch == 0);
  REQUIRE(years.problem);
  CHECK(years.problem->find("ahead") != std::string::npos);
  // Within the longest delay plus a day (clock skew): honoured.
  CHECK(parse("1796399000.0").due_epoch == 1796399000.0);
  // The message never carries raw bytes.
  CHECK(parse("\xFF").problem->find("\\xff") != std::string::npos);
}

TEST_CASE("python_float_repr matches CPython repr()") {
  CHECK(python_float_repr(1796312852.1414142) == "1796312852.1414142");
  CHECK(python_float_repr(1796312855.2640707) == "1796312855.2640707");
  CHECK(python_float_repr(1796312852.0) == "1796312852.0");
  CHECK(python_float_repr(5.0) == "5.0");
  CHECK(python_float_repr(0.1 + 0.2) == "0.30000000000000004");
  CHECK(python_float_repr(1e16) == "1e+16");
  CHECK(python_float_repr(1e22) == "1e+22");
  CHECK(python_float_repr(9999999999999998.0) == "9999999999999998.0");
  CHECK(python_float_repr(1234567890123456.7) == "1234567890123456.8");
  CHECK(python_float_repr(12345678901234567.0) == "1.2345678901234568e+16");
  CHECK(python_float_repr(1e-05) == "1e-05");
  CHECK(python_float_repr(1.5e-07) == "1.5e-07");
  CHECK(python_float_repr(0.0001) == "0.0001");
  CHECK(python_float_repr(-0.0) == "-0.0");
  CHECK(python_float_repr(0.0) == "0.0");
  CHECK(python_float_repr(-2.5) == "-2.5");
}

TEST_CASE("code point cuts keep valid UTF-8") {
  CHECK(first_code_points("abc", 2) == "ab");
  CHECK(first_code_points("caf\xC3\xA9!", 4) == "caf\xC3\xA9");  // é is one code point
  CHECK(last_code_points("caf\xC3\xA9!", 2) == "\xC3\xA9!");
  CHECK(first_code_points("a\xFF"
                          "b",
                          3) ==
        "a\xEF\xBF\xBD"
        "b");                                                              // invalid byte -> U+FFFD
  CHECK(last_code_points("x\xE2\x82", 5) == "x\xEF\xBF\xBD\xEF\xBF\xBD");  // truncated sequence
  const std::string emoji_run(2000 * 4 / 4, 'a');
  CHECK(first_code_points(emoji_run, 1000).size() == 1000);
  std::string four_byte;
  for (int i = 0; i < 1200; ++i) four_byte += "\xF0\x9F\x98\x80";
  CHECK(first_code_points(four_byte, 1000).size() == 4000);
}

TEST_CASE("make_retry_record: same key and value, headers without retry_*, then the new two") {
  const InRecord in = failing_record();
  const OutRecord out = make_retry_record(in, 3, 1796312855.2640707);
  CHECK(out.topic == "shop.stream");
  CHECK_FALSE(out.partition.has_value());  // the partitioner places the key, as aiokafka does
  CHECK(out.key == in.key);
  CHECK(out.value == in.value);
  const Headers expected{
      {"event_id", "0b6f1c3e-8a4d-4e0f-9c1a-2f5e7d9b1a11"},
      {"event_type", "OrderPlaced"},
      {"traceparent", std::nullopt},
      {"dlq_replay_count", "1"},
      {"retry_count", "3"},
      {"retry_after", "1796312855.2640707"},
  };
  REQUIRE(out.headers.size() == expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    CAPTURE(i);
    CHECK(out.headers[i].name == expected[i].name);
    CHECK(out.headers[i].value == expected[i].value);
  }
}

TEST_CASE("make_dlq_record: original record, then the 9 dlq_* headers in order") {
  const InRecord in = failing_record();
  DeadLetter letter;
  letter.reason = DlqReason::max_retries_exceeded;
  letter.error_type = "HandlerError";
  letter.error_message = std::string(1500, 'x') + "tail";
  letter.retry_count = 3;
  const Timestamp at{Micros{sys_days{year{2026} / December / 3} + hours{15} + minutes{47} +
                            seconds{31} + microseconds{157983}},
                     0};
  const OutRecord out = make_dlq_record(in, letter, "shop.stream.dlq", "billing", at);
  CHECK(out.topic == "shop.stream.dlq");
  CHECK(out.key == in.key);
  CHECK(out.value == in.value);
  REQUIRE(out.headers.size() == in.headers.size() + 9);
  for (size_t i = 0; i < in.headers.size(); ++i) {
    CHECK(out.headers[i].name == in.headers[i].name);
    CHECK(out.headers[i].value == in.headers[i].value);
  }
  const Headers expected{
      {"dlq_reason", "max_retries_exceeded"},
      {"dlq_error_type", "HandlerError"},
      {"dlq_error_message", std::string(1000, 'x')},
      {"dlq_retry_count", "3"},
      {"dlq_timestamp", "2026-12-03T15:47:31.157983+00:00"},
      {"dlq_original_topic", "shop.stream"},
      {"dlq_original_partition", "2"},
      {"dlq_original_offset", "43"},
      {"dlq_consumer_group", "billing"},
  };
  for (size_t i = 0; i < expected.size(); ++i) {
    const Header& h = out.headers[in.headers.size() + i];
    CAPTURE(h.name);
    CHECK(h.name == expected[i].name);
    CHECK(h.value == expected[i].value);
  }
  // Whole seconds: isoformat() omits the microseconds.
  const Timestamp whole{Micros{sys_days{year{2026} / December / 3} + hours{15}}, 0};
  letter.reason = DlqReason::deserialization_error;
  const OutRecord again = make_dlq_record(in, letter, "d", "g", whole);
  CHECK(find_header(again.headers, "dlq_timestamp")->value == "2026-12-03T15:00:00+00:00");
  CHECK(find_header(again.headers, "dlq_reason")->value == "deserialization_error");
  CHECK(to_string(DlqReason::republish_failed) == "republish_failed");
}
