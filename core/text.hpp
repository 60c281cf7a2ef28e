#pragma once
// Text helpers shared by envelopes, schemas and formatters: UTF-8 checks and JSON pointers.
#include <cstddef>
#include <string>
#include <string_view>

namespace evbus {

// Length of the well-formed UTF-8 sequence at s[i]; 0 when malformed (overlong forms,
// surrogates and code points past U+10FFFF are malformed, as for nlohmann's dump).
std::size_t utf8_sequence_length(std::string_view s, std::size_t i);
bool is_valid_utf8(std::string_view s);
// Malformed bytes written as \xNN, so the text is safe inside a message.
std::string printable(std::string_view s);
// Unicode code points in well-formed UTF-8 (what Python's len() counts).
std::size_t code_points(std::string_view s);
// One reference token of a JSON pointer (RFC 6901: ~ -> ~0, / -> ~1).
std::string json_pointer_token(std::string_view key);

// Shortest round-trip digits of a finite double, in fixed notation (with ".0" when integral)
// when min_point < digits-before-the-point <= 16, otherwise d.ddde±XX with at least
// `exponent_digits` exponent digits. Python and pydantic differ only in those two parameters.
std::string format_shortest_float(double value, int min_point, int exponent_digits);

// Python's repr(float): shortest round-trip digits, fixed notation with ".0" for
// 1e-4 <= |x| < 1e16, exponent form ("1e+16", "1e-05") outside.
std::string python_float_repr(double value);

}  // namespace evbus
