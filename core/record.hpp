#pragma once
// Kafka records as evbus value types. Public headers never expose rd_kafka_* types.
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace evbus {

struct Header {
  std::string name;
  std::optional<std::string> value;  // nullopt = null header value
};
using Headers = std::vector<Header>;

// First header with that name, as eventsource-py reads it.
const Header* find_header(const Headers& headers, std::string_view name);

// A record to produce. partition = nullopt lets the configured partitioner (murmur2_random) choose.
struct OutRecord {
  std::string topic;
  std::optional<int32_t> partition;
  std::optional<std::string> key;
  std::optional<std::string> value;
  Headers headers;
};

// A consumed record.
struct InRecord {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = 0;
  int64_t timestamp_ms = -1;  // -1 when the broker gave none
  std::optional<std::string> key;
  std::optional<std::string> value;
  Headers headers;
};

// Client properties handed to librdkafka, in the order they are applied.
using ClientProperties = std::vector<std::pair<std::string, std::string>>;

}  // namespace evbus
