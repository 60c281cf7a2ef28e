// DLQ decoding (three header dialects and poison), replay headers (contract §4.6), filters and
// time bounds, and the table's width: everything that needs no broker.
#include <doctest/doctest.h>

#include <algorithm>
#include <sstream>
#include <string>

#include "core/dlq.hpp"

using namespace evbus;

namespace {

InRecord dlq_record(Headers headers) {
  InRecord r;
  r.topic = "shop.stream.dlq";
  r.partition = 1;
  r.offset = 7;
  r.timestamp_ms = 1736937000123;
  r.key = "7d3c2b1a-5e4f-4a6b-8c9d-0e1f2a3b4c5d";
  r.value = R"({"event_type":"OrderPlaced","aggregate_id":"7d3c2b1a-5e4f-4a6b-8c9d-0e1f2a3b4c5d"})";
  r.headers = std::move(headers);
  return r;
}

Headers eventsource_headers() {
  return {{"event_id", "0b6f1c3e-8a4d-4e0f-9c1a-2f5e7d9b1a11"},
          {"event_type", "OrderPlaced"},
          {"aggregate_id", "7d3c2b1a-5e4f-4a6b-8c9d-0e1f2a3b4c5d"},
          {"retry_count", "3"},
          {"retry_after", "1796312855.2640707"},
          {"dlq_reason", "max_retries_exceeded"},
          {"dlq_error_type", "ValueError"},
          {"dlq_error_message", "card declined"},
          {"dlq_retry_count", "3"},
          {"dlq_timestamp", "2026-12-03T15:47:31.157983+00:00"},
          {"dlq_original_topic", "shop.stream"},
          {"dlq_original_partition", "2"},
          {"dlq_original_offset", "43"},
          {"dlq_consumer_group", "billing"}};
}

}  // namespace

TEST_CASE("eventsource-py DLQ headers decode into the entry fields") {
  const auto e = decode_dlq_entry(dlq_record(eventsource_headers()));
  CHECK(e.dialect == DlqDialect::eventsource);
  CHECK(e.event_type == "OrderPlaced");
  CHECK(e.reason == "max_retries_exceeded");
  CHECK(e.error_type == "ValueError");
  CHECK(e.error_message == "card declined");
  CHECK(e.retry_count == 3);
  CHECK(e.replay_count == 0);
  CHECK(e.original_topic == "shop.stream");
  CHECK(e.original_partition == 2);
  CHECK(e.original_offset == 43);
  CHECK(e.consumer_group == "billing");
  CHECK(e.problems.empty());
}

TEST_CASE("Spring's binary big-endian headers decode; a wrong length is a problem, not a crash") {
  const std::string partition{'\0', '\0', '\0', '\x05'};
  const std::string offset{'\0', '\0', '\0', '\0', '\0', '\0', '\x01', '\x00'};
  auto e = decode_dlq_entry(dlq_record({{"kafka_dlt-original-topic", "orders"},
                                        {"kafka_dlt-original-partition", partition},
                                        {"kafka_dlt-original-offset", offset},
                                        {"kafka_dlt-exception-fqcn", "a.b.Boom"},
                                        {"kafka_dlt-exception-message", "boom"}}));
  CHECK(e.dialect == DlqDialect::spring);
  CHECK(e.original_partition == 5);
  CHECK(e.original_offset == 256);
  CHECK(e.error_type == "a.b.Boom");

  e = decode_dlq_entry(dlq_record({{"kafka_dlt-original-partition", std::string("\x01\x02", 2)},
                                   {"kafka_dlt-original-offset", "12"}}));
  CHECK_FALSE(e.original_partition);
  CHECK(e.original_offset == 12);  // decimal text is accepted as well
  REQUIRE(e.problems.size() == 1);
  CHECK(e.problems[0].find("2 byte(s)") != std::string::npos);
}

TEST_CASE("Kafka Connect text headers decode into the same fields") {
  const auto e =
      decode_dlq_entry(dlq_record({{"__connect.errors.topic", "payments"},
                                   {"__connect.errors.partition", "1"},
                                   {"__connect.errors.offset", "77"},
                                   {"__connect.errors.stage", "VALUE_CONVERTER"},
                                   {"__connect.errors.exception.class.name", "x.DataException"},
                                   {"__connect.errors.connector.name", "sink"},
                                   {"__connect.errors.task.id", "3"}}));
  CHECK(e.dialect == DlqDialect::connect);
  CHECK(e.original_topic == "payments");
  CHECK(e.original_partition == 1);
  CHECK(e.original_offset == 77);
  CHECK(e.reason == "VALUE_CONVERTER");
  CHECK(e.connector == "sink/3");
}

TEST_CASE("poison never throws: null values, bytes that are not UTF-8, a non-int replay count") {
  InRecord r = dlq_record({{"event_type", std::nullopt},
                           {"dlq_reason", std::string("\xff\xfe", 2)},
                           {"dlq_replay_count", "three"}});
  r.key.reset();
  r.value.reset();
  const auto e = decode_dlq_entry(r);
  CHECK_FALSE(e.event_type);
  CHECK(e.reason == std::string("\xff\xfe", 2));
  CHECK_FALSE(e.replay_count);
  CHECK(e.replay_count_text == "three");
  const auto json = dlq_entry_to_json(e);
  CHECK(json["reason"]["base64"] == "//4=");
  CHECK(json["replay_count"].is_null());
  CHECK(json["key"].is_null());
  CHECK(json["value"].is_null());
  CHECK(decode_dlq_entry(dlq_record({{"dlq_replay_count", "-1"}})).replay_count == std::nullopt);
  CHECK(decode_dlq_entry(dlq_record({{"dlq_replay_count", " 2 "}})).replay_count == 2);
}

TEST_CASE("replay headers drop dlq_* and retry_count, keep the rest in order, then append") {
  Headers in = eventsource_headers();
  in.insert(in.begin() + 5, {"dlq_replay_count", "1"});
  in.push_back({"traceparent", "00-abc-def-01"});
  const Headers out = replay_headers(in, 2);
  std::vector<std::string> names;
  for (const auto& h : out) names.push_back(h.name);
  CHECK(names == std::vector<std::string>{"event_id", "event_type", "aggregate_id", "retry_after",
                                          "traceparent", "retry_count", "dlq_replay_count"});
  CHECK(out[5].value == "0");
  CHECK(out[6].value == "2");
}

TEST_CASE("time bounds: durations ago and ISO times") {
  const int64_t now = 1'800'000'000'000;
  CHECK(parse_time_bound("30s", now) == now - 30'000);
  CHECK(parse_time_bound("2h", now) == now - 7'200'000);
  CHECK(parse_time_bound("7d", now) == now - 7 * 86'400'000LL);
  CHECK(parse_time_bound("2025-01-15T10:30:00.123Z", now) == 1736937000123);
  CHECK(parse_time_bound("2025-01-15T10:30:00.123", now) == 1736937000123);  // naive = UTC
  CHECK_FALSE(parse_time_bound("soon", now));
  CHECK_FALSE(parse_time_bound("2x", now));
}

TEST_CASE("filters: error types match qualified names, aggregate ids in any UUID form") {
  const auto e = decode_dlq_entry(dlq_record(eventsource_headers()));
  DlqFilter f;
  f.error_types = {"ValueError"};
  CHECK(f.matches(e));
  f.error_types = {"Error"};
  CHECK_FALSE(f.matches(e));
  f = {};
  f.aggregate_ids = {"7D3C2B1A5E4F4A6B8C9D0E1F2A3B4C5D"};
  CHECK(f.matches(e));
  f.since_ms = e.record.timestamp_ms + 1;
  CHECK_FALSE(f.matches(e));
  CHECK(f.narrows());
}

TEST_CASE("the list table stays within 120 columns and cuts long errors with an ellipsis") {
  Headers h = eventsource_headers();
  h[7].value = std::string(300, 'x') + "é";
  DlqListing listing;
  listing.topic = "shop.stream.dlq";
  listing.topic_exists = true;
  listing.entries.push_back(decode_dlq_entry(dlq_record(h)));
  std::ostringstream out;
  write_dlq_table(out, listing);
  std::istringstream lines(out.str());
  std::string line;
  while (std::getline(lines, line)) {
    // Columns are code points: "…" is 3 bytes but one column.
    const auto columns = std::count_if(line.begin(), line.end(), [](char c) {
      return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
    });
    CHECK(columns <= 120);
  }
  CHECK(out.str().find("…") != std::string::npos);
}
