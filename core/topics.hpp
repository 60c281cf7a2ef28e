#pragma once
// The bus's topics: {prefix}.stream and its DLQ. Creation is idempotent; listing never creates.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/config.hpp"
#include "core/producer.hpp"  // Diagnostics

namespace evbus {

struct TopicInfo {
  std::string name;
  bool exists = false;
  int partitions = 0;
  int replication = 0;
};

struct TopicCreateResult {
  std::string name;
  bool created = false;  // false: it already existed
  int partitions = 0;
};

// Creates the main topic and the DLQ topic. partitions/replication unset: the broker's defaults.
std::vector<TopicCreateResult> create_bus_topics(const BusConfig& config,
                                                 std::optional<int> partitions,
                                                 std::optional<int> replication,
                                                 std::chrono::milliseconds timeout,
                                                 Diagnostics diagnostics = {});

std::vector<TopicInfo> describe_bus_topics(const BusConfig& config,
                                           std::chrono::milliseconds timeout,
                                           Diagnostics diagnostics = {});

// The broker's num.partitions (what an auto-created topic gets), if it can be read.
std::optional<int> broker_default_partitions(const BusConfig& config,
                                             std::chrono::milliseconds timeout,
                                             Diagnostics diagnostics = {});

}  // namespace evbus
