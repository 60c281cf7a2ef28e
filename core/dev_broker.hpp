#pragma once
// librdkafka's in-process mock cluster, hosted for other processes (`evbus dev-broker`) and for
// fault-injection tests. It keeps nothing on disk.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace evbus {

class DevBroker {
 public:
  explicit DevBroker(int broker_count = 1);
  ~DevBroker();
  DevBroker(const DevBroker&) = delete;
  DevBroker& operator=(const DevBroker&) = delete;

  std::string bootstrap_servers() const;
  void create_topic(const std::string& name, int partitions);

  // Fault injection: the next `errors.size()` requests of Kafka API `api_key` (0 = Produce,
  // 1 = Fetch, 3 = Metadata, 8 = OffsetCommit, ...) fail with these Kafka error codes.
  void fail_next_requests(int16_t api_key, const std::vector<int>& errors);
  void set_broker_down(int32_t broker_id, bool down);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace evbus
