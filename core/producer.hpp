#pragma once
// An idempotent-by-default librdkafka producer that reports every delivery as a value.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/record.hpp"

namespace evbus {

struct DeliveryReport {
  uint64_t id = 0;  // the caller's id given to send()
  std::string topic;
  int32_t partition = -1;
  int64_t offset = -1;
  std::optional<std::string> error;  // nullopt = acknowledged by the broker
};

using Diagnostics = std::function<void(int level, const std::string& message)>;

// The librdkafka version this binary runs with (for --version).
std::string librdkafka_version();

class Producer {
 public:
  // Throws Error{invalid_input} for a property librdkafka rejects.
  explicit Producer(const ClientProperties& properties, Diagnostics diagnostics = {});
  // Receives librdkafka's statistics JSON (needs statistics.interval.ms > 0 in `properties`),
  // on the thread calling poll/flush. Set before the first poll.
  void on_statistics(std::function<void(std::string_view json)> sink);
  ~Producer();
  Producer(const Producer&) = delete;
  Producer& operator=(const Producer&) = delete;

  // Fails fast with Error{runtime} when no broker answers metadata within `timeout`.
  void ensure_reachable(std::chrono::milliseconds timeout);
  // -1 when the topic does not exist (asking never creates it).
  int partition_count(const std::string& topic, std::chrono::milliseconds timeout);

  // Enqueues a record. When the local queue is full it serves delivery reports and retries
  // (back-pressure), so memory stays bounded. A record librdkafka refuses outright (too large,
  // unknown partition) is returned as an error string and produces no report.
  std::optional<std::string> send(const OutRecord& record, uint64_t id);

  // Serves callbacks for up to `timeout` and returns the reports gathered so far.
  std::vector<DeliveryReport> poll(std::chrono::milliseconds timeout);
  // Waits for every outstanding delivery (up to `timeout`) and returns the remaining reports.
  std::vector<DeliveryReport> flush(std::chrono::milliseconds timeout);
  int64_t in_flight() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace evbus
