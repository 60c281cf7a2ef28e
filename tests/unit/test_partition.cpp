// Kafka's Java-client murmur2 (the partitioner aiokafka and librdkafka's murmur2_random use).
#include <doctest/doctest.h>

#include <cstdint>
#include <string>

#include "core/error.hpp"
#include "core/partition.hpp"

using evbus::murmur2;
using evbus::partition_for_key;

namespace {
int32_t as_java_int(uint32_t h) {
  return static_cast<int32_t>(h);
}
}  // namespace

TEST_CASE("murmur2 matches Kafka's UtilsTest.testMurmur2 vectors") {
  CHECK(as_java_int(murmur2("21")) == -973932308);
  CHECK(as_java_int(murmur2("foobar")) == -790332482);
  CHECK(as_java_int(murmur2("a-little-bit-long-string")) == -985981536);
  CHECK(as_java_int(murmur2("a-little-bit-longer-string")) == -1486304829);
  CHECK(as_java_int(murmur2("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8")) == -58897971);
  CHECK(as_java_int(murmur2(std::string{'a', 'b', 'c'})) == 479470107);
}

TEST_CASE("murmur2 covers every tail length and bytes above 0x7f") {
  // Checked against an independent Python port and librdkafka's rd_kafka_msg_partitioner_murmur2.
  CHECK(murmur2("") == 275646681U);
  CHECK(murmur2("abc") == 479470107U);           // tail of 3, no full block
  CHECK(murmur2("\xff") == 3983499611U);         // bytes are unsigned (Java's & 0xff)
  CHECK(murmur2("caf\xc3\xa9") == 2936959922U);  // one block + a tail of 1, UTF-8
  CHECK(as_java_int(murmur2("7d3c2b1a-5e4f-4a6b-8c9d-0e1f2a3b4c5d")) == -1085864612);
}

TEST_CASE("partition_for_key is (murmur2 & 0x7fffffff) % n") {
  for (const char* key :
       {"21", "foobar", "a-little-bit-long-string", "7d3c2b1a-5e4f-4a6b-8c9d-0e1f2a3b4c5d"}) {
    for (int32_t n : {1, 3, 12, 100}) {
      const auto expected =
          static_cast<int32_t>((murmur2(key) & 0x7fffffffU) % static_cast<uint32_t>(n));
      CHECK(partition_for_key(key, n) == expected);
      CHECK(partition_for_key(key, n) >= 0);
      CHECK(partition_for_key(key, n) < n);
    }
  }
  // Worked by hand from the vectors: "21" -> -973932308 & 0x7fffffff = 1173551340.
  CHECK(partition_for_key("21", 12) == 1173551340 % 12);
  CHECK(partition_for_key("foobar", 3) == 1357151166 % 3);
  CHECK(partition_for_key("abc", 1) == 0);
  // The same partitions librdkafka's murmur2_random picks (checked with librdkafka 2.0.2).
  CHECK(partition_for_key("foobar", 12) == 6);
  CHECK(partition_for_key("foobar", 100) == 66);
  CHECK(partition_for_key("abc", 12) == 3);
  CHECK(partition_for_key("7d3c2b1a-5e4f-4a6b-8c9d-0e1f2a3b4c5d", 100) == 36);
  CHECK(partition_for_key("caf\xc3\xa9", 12) == 6);
  CHECK_THROWS_AS(partition_for_key("k", 0), evbus::Error);
}
