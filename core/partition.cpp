#include "core/partition.hpp"

#include "core/error.hpp"

namespace evbus {

// org.apache.kafka.common.utils.Utils.murmur2, in unsigned arithmetic (Java's int wraps the same
// way; >>> is a logical shift).
uint32_t murmur2(std::string_view key) {
  const auto* data = reinterpret_cast<const unsigned char*>(key.data());
  const std::size_t length = key.size();
  constexpr uint32_t seed = 0x9747b28c;
  constexpr uint32_t m = 0x5bd1e995;
  constexpr int r = 24;

  uint32_t h = seed ^ static_cast<uint32_t>(length);
  const std::size_t length4 = length / 4;
  for (std::size_t i = 0; i < length4; ++i) {
    const std::size_t i4 = i * 4;
    uint32_t k = static_cast<uint32_t>(data[i4 + 0]) | static_cast<uint32_t>(data[i4 + 1]) << 8 |
                 static_cast<uint32_t>(data[i4 + 2]) << 16 |
                 static_cast<uint32_t>(data[i4 + 3]) << 24;
    k *= m;
    k ^= k >> r;
    k *= m;
    h *= m;
    h ^= k;
  }
  const std::size_t tail = length & ~static_cast<std::size_t>(3);
  switch (length % 4) {
    case 3:
      h ^= static_cast<uint32_t>(data[tail + 2]) << 16;
      [[fallthrough]];
    case 2:
      h ^= static_cast<uint32_t>(data[tail + 1]) << 8;
      [[fallthrough]];
    case 1:
      h ^= static_cast<uint32_t>(data[tail]);
      h *= m;
      break;
    default:
      break;
  }
  h ^= h >> 13;
  h *= m;
  h ^= h >> 15;
  return h;
}

int32_t partition_for_key(std::string_view key, int32_t partition_count) {
  if (partition_count <= 0) {
    throw Error(ErrorKind::runtime,
                "partition count must be positive, got " + std::to_string(partition_count));
  }
  return static_cast<int32_t>((murmur2(key) & 0x7fffffffU) %
                              static_cast<uint32_t>(partition_count));
}

}  // namespace evbus
