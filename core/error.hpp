#pragma once
// Typed errors. Setup failures are thrown as evbus::Error; per-record problems are values.
// apps/evbus/main.cpp maps ErrorKind to the README's exit-code table, and nothing else does.
#include <stdexcept>
#include <string>

namespace evbus {

enum class ErrorKind {
  runtime,        // broker or runtime failure (exit 1)
  usage,          // bad flags or arguments (exit 2)
  invalid_input,  // config, schema or event rejected (exit 3)
  undelivered,    // some events were not delivered (exit 4)
  handler_failed,  // a record could not be handled nor dead-lettered (exit 5)
  interrupted,    // stopped by SIGINT/SIGTERM (exit 130)
};

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, std::string message, int kafka_code = 0, bool retriable = false)
      : std::runtime_error(std::move(message)),
        kind_(kind),
        kafka_code_(kafka_code),
        retriable_(retriable) {}

  ErrorKind kind() const noexcept { return kind_; }
  // librdkafka's rd_kafka_resp_err_t value, 0 when the error did not come from librdkafka.
  int kafka_code() const noexcept { return kafka_code_; }
  bool retriable() const noexcept { return retriable_; }

 private:
  ErrorKind kind_;
  int kafka_code_;
  bool retriable_;
};

// "file:line: message" when the place is known, so every config/schema error names its place.
std::string at_place(const std::string& file, int line, const std::string& message);

}  // namespace evbus
