#include "core/record.hpp"

namespace evbus {

const Header* find_header(const Headers& headers, std::string_view name) {
  for (const auto& h : headers)
    if (h.name == name) return &h;
  return nullptr;
}

}  // namespace evbus
