#include "core/error.hpp"

#include <fmt/format.h>

namespace evbus {

std::string at_place(const std::string& file, int line, const std::string& message) {
  if (file.empty()) return message;
  if (line <= 0) return fmt::format("{}: {}", file, message);
  return fmt::format("{}:{}: {}", file, line, message);
}

}  // namespace evbus
