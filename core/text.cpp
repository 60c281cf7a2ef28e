#include "core/text.hpp"

#include <fmt/format.h>

#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>

namespace evbus {

// Length of the well-formed UTF-8 sequence starting at s[i], 0 if it is malformed (overlong
// forms, surrogates and code points past U+10FFFF are malformed, as for nlohmann's dump).
std::size_t utf8_sequence_length(std::string_view s, std::size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  if (c < 0x80) return 1;
  std::size_t len = 0;
  uint32_t cp = 0;
  if ((c & 0xE0U) == 0xC0U) {
    len = 2;
    cp = c & 0x1FU;
  } else if ((c & 0xF0U) == 0xE0U) {
    len = 3;
    cp = c & 0x0FU;
  } else if ((c & 0xF8U) == 0xF0U) {
    len = 4;
    cp = c & 0x07U;
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  for (std::size_t k = 1; k < len; ++k) {
    const auto cc = static_cast<unsigned char>(s[i + k]);
    if ((cc & 0xC0U) != 0x80U) return 0;
    cp = (cp << 6) | (cc & 0x3FU);
  }
  if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
      cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
    return 0;
  }
  return len;
}

bool is_valid_utf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t len = utf8_sequence_length(s, i);
    if (len == 0) return false;
    i += len;
  }
  return true;
}

// Text safe to put in a message: malformed bytes are written as \xNN.
std::string printable(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t len = utf8_sequence_length(s, i);
    if (len == 0) {
      out += fmt::format("\\x{:02x}", static_cast<unsigned char>(s[i]));
      ++i;
    } else {
      out.append(s.substr(i, len));
      i += len;
    }
  }
  return out;
}

std::string json_pointer_token(std::string_view key) {
  std::string out;
  for (const char c : printable(key)) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

std::size_t code_points(std::string_view s) {
  std::size_t n = 0;
  for (const unsigned char c : s)
    if ((c & 0xC0U) != 0x80U) ++n;
  return n;
}

std::string format_shortest_float(double value, int min_point, int exponent_digits) {
  // Shortest round-trip digits, as d.ddd x 10^exp.
  std::array<char, 64> buf{};
  const auto res =
      std::to_chars(buf.data(), buf.data() + buf.size(), value, std::chars_format::scientific);
  const std::string_view sci(buf.data(), static_cast<std::size_t>(res.ptr - buf.data()));
  const std::size_t e_pos = sci.find('e');
  std::string_view mantissa = sci.substr(0, e_pos);
  std::string out;
  if (!mantissa.empty() && mantissa.front() == '-') {
    out += '-';
    mantissa.remove_prefix(1);
  }
  std::string digits;
  for (const char c : mantissa)
    if (c != '.') digits += c;
  int exp = 0;
  const char* exp_begin = sci.data() + e_pos + 1;
  if (*exp_begin == '+') ++exp_begin;
  std::from_chars(exp_begin, sci.data() + sci.size(), exp);
  const int n = static_cast<int>(digits.size());
  const int point = exp + 1;  // digits before the decimal point
  if (point > min_point && point <= 16) {
    if (point <= 0) {
      out += "0.";
      out.append(static_cast<std::size_t>(-point), '0');
      out += digits;
    } else if (point >= n) {
      out += digits;
      out.append(static_cast<std::size_t>(point - n), '0');
      out += ".0";
    } else {
      out += digits.substr(0, static_cast<std::size_t>(point));
      out += '.';
      out += digits.substr(static_cast<std::size_t>(point));
    }
    return out;
  }
  out += digits.front();
  if (n > 1) {
    out += '.';
    out += digits.substr(1);
  }
  out += fmt::format("e{}{:0{}d}", exp < 0 ? '-' : '+', std::abs(exp), exponent_digits);
  return out;
}

std::string python_float_repr(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value < 0 ? "-inf" : "inf";
  // CPython's float_repr_style 'short': exponent form outside -4 < point <= 16, "e-05".
  return format_shortest_float(value, -4, 2);
}

}  // namespace evbus
