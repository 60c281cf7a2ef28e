// Timestamps as pydantic parses and renders them (body) and as Python's isoformat() writes them
// (headers). Expected values were checked against pydantic 2.13 / Python 3.11.
#include <doctest/doctest.h>

#include <string>

#include "core/timefmt.hpp"

using namespace std::chrono;
using evbus::format_body_time;
using evbus::format_epoch_ms;
using evbus::format_header_time;
using evbus::Micros;
using evbus::parse_timestamp;
using evbus::Timestamp;

namespace {

// 2025-01-15 10:30:00 UTC plus the given microseconds.
Micros jan15(int64_t micros = 0) {
  return Micros{sys_days{year{2025} / January / 15} + hours{10} + minutes{30} +
                microseconds{micros}};
}

std::string body(std::string_view text) {
  const auto ts = parse_timestamp(text);
  REQUIRE_MESSAGE(ts.has_value(), text);
  return format_body_time(*ts);
}

std::string header(std::string_view text) {
  const auto ts = parse_timestamp(text);
  REQUIRE_MESSAGE(ts.has_value(), text);
  return format_header_time(*ts);
}

}  // namespace

TEST_CASE("UTC with microseconds: Z in the body, +00:00 in the header") {
  const auto ts = parse_timestamp("2025-01-15T10:30:00.123456Z");
  REQUIRE(ts);
  CHECK(ts->utc == jan15(123456));
  CHECK(ts->offset_minutes == 0);
  CHECK(format_body_time(*ts) == "2025-01-15T10:30:00.123456Z");
  CHECK(format_header_time(*ts) == "2025-01-15T10:30:00.123456+00:00");
}

TEST_CASE("zero microseconds are omitted, non-zero ones are always 6 digits") {
  CHECK(format_body_time(Timestamp{jan15(), 0}) == "2025-01-15T10:30:00Z");
  CHECK(format_header_time(Timestamp{jan15(), 0}) == "2025-01-15T10:30:00+00:00");
  CHECK(format_body_time(Timestamp{jan15(123000), 0}) == "2025-01-15T10:30:00.123000Z");
  CHECK(format_body_time(Timestamp{jan15(1), 0}) == "2025-01-15T10:30:00.000001Z");
  CHECK(body("2025-01-15T10:30:00.123Z") == "2025-01-15T10:30:00.123000Z");
  CHECK(body("2025-01-15T10:30:00.000000Z") == "2025-01-15T10:30:00Z");
}

TEST_CASE("round trips through parse and both renderings") {
  for (const char* text :
       {"2025-01-15T10:30:00.123456Z", "2025-01-15T10:30:00Z", "2025-01-15T10:30:00+05:30",
        "2025-01-15T10:30:00.5-08:00", "2025-01-15T10:30:00", "2024-02-29T23:59:59.999999Z"}) {
    const auto ts = parse_timestamp(text);
    REQUIRE_MESSAGE(ts, text);
    const auto again = parse_timestamp(format_body_time(*ts));
    REQUIRE(again);
    CHECK(again->utc == ts->utc);
    CHECK(again->offset_minutes == ts->offset_minutes);
    const auto from_header = parse_timestamp(format_header_time(*ts));
    REQUIRE(from_header);
    CHECK(from_header->utc == ts->utc);
  }
}

TEST_CASE("more than 6 fractional digits are truncated, not rounded") {
  CHECK(body("2025-01-15T10:30:00.1234567891Z") == "2025-01-15T10:30:00.123456Z");
  CHECK(body("2025-01-15T10:30:00.9999999Z") == "2025-01-15T10:30:00.999999Z");
  CHECK(body("2025-01-15T10:30:00.123456789012345678901Z") == "2025-01-15T10:30:00.123456Z");
  CHECK(body("2025-01-15T10:30:00,5Z") == "2025-01-15T10:30:00.500000Z");
}

TEST_CASE("offsets are kept; the wall time is written, the instant is UTC") {
  const auto ts = parse_timestamp("2025-01-15T16:00:00+05:30");
  REQUIRE(ts);
  CHECK(ts->utc == jan15());
  CHECK(ts->offset_minutes == 330);
  CHECK(format_body_time(*ts) == "2025-01-15T16:00:00+05:30");
  CHECK(format_header_time(*ts) == "2025-01-15T16:00:00+05:30");

  const auto west = parse_timestamp("2025-01-15T02:30:00-0800");
  REQUIRE(west);
  CHECK(west->utc == jan15());
  CHECK(west->offset_minutes == -480);
  CHECK(format_body_time(*west) == "2025-01-15T02:30:00-08:00");

  CHECK(body("2025-01-15T10:30:00+00:00") == "2025-01-15T10:30:00Z");
  CHECK(body("2025-01-15T10:30:00-00:00") == "2025-01-15T10:30:00Z");
  CHECK(header("2025-01-15T10:30:00Z") == "2025-01-15T10:30:00+00:00");
  CHECK(body("2025-01-15t10:30:00z") == "2025-01-15T10:30:00Z");
  CHECK(body("2025-01-15T10:30:00+23:59") == "2025-01-15T10:30:00+23:59");
  // Formatting a UTC instant with an offset writes the local wall time.
  CHECK(format_body_time(Timestamp{jan15(), 60}) == "2025-01-15T11:30:00+01:00");
  CHECK(format_body_time(Timestamp{jan15(), -90}) == "2025-01-15T09:00:00-01:30");
}

TEST_CASE("naive date-times have no offset and are written without one") {
  const auto ts = parse_timestamp("2025-01-15 10:30:00.25");
  REQUIRE(ts);
  CHECK_FALSE(ts->offset_minutes.has_value());
  CHECK(ts->utc == jan15(250000));
  CHECK(format_body_time(*ts) == "2025-01-15T10:30:00.250000");
  CHECK(format_header_time(*ts) == "2025-01-15T10:30:00.250000");
  CHECK(body("2025-01-15T10:30") == "2025-01-15T10:30:00");
  CHECK(body("2025-01-15_10:30:00") == "2025-01-15T10:30:00");
  CHECK(body("2025-01-15") == "2025-01-15T00:00:00");
}

TEST_CASE("numeric epoch seconds (milliseconds above 2e10) are UTC") {
  CHECK(body("1736937000") == "2025-01-15T10:30:00Z");
  CHECK(body("1736937000.5") == "2025-01-15T10:30:00.500000Z");
  CHECK(body("+1736937000") == "2025-01-15T10:30:00Z");
  CHECK(body("-1.5") == "1969-12-31T23:59:58.500000Z");
  CHECK(body("0") == "1970-01-01T00:00:00Z");
  CHECK(body(".5") == "1970-01-01T00:00:00.500000Z");
  CHECK(body("1736937000123") == "2025-01-15T10:30:00.123000Z");
  CHECK(body("20000000000") == "2603-10-11T11:33:20Z");
  CHECK(body("20000000001") == "1970-08-20T11:33:20.001000Z");
  CHECK(header("1736937000") == "2025-01-15T10:30:00+00:00");
}

TEST_CASE("impossible or malformed date-times are rejected") {
  for (const char* text : {"",
                           "2025-02-30T00:00:00",
                           "2025-02-29T00:00:00",
                           "2025-13-01T00:00:00",
                           "2025-01-15T24:00:00",
                           "2025-01-15T23:60:00",
                           "2025-01-15T23:59:60",
                           "0000-01-01T00:00:00",
                           "2025-01-15T10:30:00.",
                           "2025-01-15T10:30.5",
                           "2025-01-15T10:30:00+05",
                           "2025-01-15T10:30:00+24:00",
                           "2025-01-15T10:30:00+05:60",
                           "2025-01-15T10:30:00+05:30:15",
                           "2025-01-15T10:30:00Z ",
                           " 2025-01-15T10:30:00Z",
                           "2025-01-15T10:30:00 +05:30",
                           "2025-1-15T10:30:00Z",
                           "2025-01-15T1:30:00",
                           "2025-01-15 ",
                           "2025-01-15X10:30:00",
                           "1e9",
                           "abc",
                           ".",
                           "1.2.3",
                           "99999999999999999999"}) {
    CHECK_MESSAGE(!parse_timestamp(text).has_value(), text);
  }
  CHECK(parse_timestamp("2024-02-29T00:00:00"));
  CHECK(parse_timestamp("0001-01-01T00:00:00+01:00"));
  CHECK(parse_timestamp("9999-12-31T23:59:59.999999-01:00"));
}

TEST_CASE("now_utc has microsecond precision and offset 0") {
  const auto before = floor<microseconds>(system_clock::now());
  const auto ts = evbus::now_utc();
  const auto after = system_clock::now();
  CHECK(ts.offset_minutes == 0);
  CHECK(ts.utc >= before);
  CHECK(ts.utc <= after);
  CHECK(format_body_time(ts).back() == 'Z');
}

TEST_CASE("epoch milliseconds always show 3 digits") {
  CHECK(format_epoch_ms(1736937000123) == "2025-01-15T10:30:00.123Z");
  CHECK(format_epoch_ms(1736937000000) == "2025-01-15T10:30:00.000Z");
  CHECK(format_epoch_ms(0) == "1970-01-01T00:00:00.000Z");
  CHECK(format_epoch_ms(-1) == "1969-12-31T23:59:59.999Z");
}
