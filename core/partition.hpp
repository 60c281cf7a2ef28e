#pragma once
// Kafka's Java-client murmur2 partitioning (librdkafka's murmur2_random for non-null keys).
#include <cstdint>
#include <string_view>

namespace evbus {

uint32_t murmur2(std::string_view key);
// (murmur2(key) & 0x7fffffff) % partition_count
int32_t partition_for_key(std::string_view key, int32_t partition_count);

}  // namespace evbus
