#include "core/schema.hpp"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <string_view>
#include <system_error>
#include <utility>

#include "core/envelope.hpp"
#include "core/error.hpp"
#include "core/text.hpp"
#include "core/timefmt.hpp"

namespace evbus {

namespace {

namespace fs = std::filesystem;

// DomainEvent's own fields (contract §2.2): an event schema may not redeclare them.
constexpr std::array<std::string_view, 12> kBaseFields = {
    "event_id",     "event_type",     "event_version",     "occurred_at",
    "aggregate_id", "aggregate_type", "aggregate_version", "tenant_id",
    "actor_id",     "correlation_id", "causation_id",      "metadata"};

constexpr std::array<std::string_view, 7> kTypeNames = {"string", "number", "integer", "boolean",
                                                        "object", "array",  "null"};

constexpr std::array<std::string_view, 5> kEventKeys = {"aggregate_type", "event_version",
                                                        "description", "fields", "required"};

bool contains(const std::vector<std::string>& list, std::string_view item) {
  return std::find(list.begin(), list.end(), item) != list.end();
}

template <std::size_t N>
bool contains(const std::array<std::string_view, N>& list, std::string_view item) {
  return std::find(list.begin(), list.end(), item) != list.end();
}

// ---------------------------------------------------------------------------------------------
// Decimals, rendered the way Python's str(Decimal) does (pydantic serialises Decimal with it).

struct DecimalParts {
  bool negative = false;
  std::string coefficient;  // digits, no leading zeros (a single "0" for zero)
  long long exponent = 0;
};

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

// Python's Decimal() grammar as pydantic applies it: surrounding whitespace and underscores are
// ignored; infinities and NaN are rejected (the models set allow_inf_nan=False).
std::optional<DecimalParts> parse_decimal_text(std::string_view text) {
  std::string s;
  s.reserve(text.size());
  for (char c : text) {
    if (c != '_') s += c;
  }
  std::size_t b = 0, e = s.size();
  while (b < e && is_space(s[b])) ++b;
  while (e > b && is_space(s[e - 1])) --e;
  std::string_view t(s.data() + b, e - b);

  DecimalParts d;
  std::size_t i = 0;
  if (i < t.size() && (t[i] == '+' || t[i] == '-')) d.negative = t[i++] == '-';
  std::string digits;
  long long fraction_digits = 0;
  while (i < t.size() && is_digit(t[i])) digits += t[i++];
  if (i < t.size() && t[i] == '.') {
    ++i;
    while (i < t.size() && is_digit(t[i])) {
      digits += t[i++];
      ++fraction_digits;
    }
  }
  if (digits.empty()) return std::nullopt;
  long long exponent = 0;
  if (i < t.size() && (t[i] == 'e' || t[i] == 'E')) {
    ++i;
    bool exp_negative = false;
    if (i < t.size() && (t[i] == '+' || t[i] == '-')) exp_negative = t[i++] == '-';
    std::size_t start = i;
    while (i < t.size() && is_digit(t[i])) {
      if (i - start >= 15) return std::nullopt;  // absurd exponent
      exponent = exponent * 10 + (t[i++] - '0');
    }
    if (i == start) return std::nullopt;
    if (exp_negative) exponent = -exponent;
  }
  if (i != t.size()) return std::nullopt;
  std::size_t first = digits.find_first_not_of('0');
  d.coefficient = first == std::string::npos ? "0" : digits.substr(first);
  d.exponent = exponent - fraction_digits;
  return d;
}

// Python's Decimal.__str__ (to-scientific-string).
std::string decimal_to_string(const DecimalParts& d) {
  const auto n = static_cast<long long>(d.coefficient.size());
  const long long adjusted = d.exponent + n - 1;
  std::string out = d.negative ? "-" : "";
  if (d.exponent <= 0 && adjusted >= -6) {
    if (d.exponent == 0) {
      out += d.coefficient;
    } else if (n > -d.exponent) {
      const auto point = static_cast<std::size_t>(n + d.exponent);
      out += d.coefficient.substr(0, point);
      out += '.';
      out += d.coefficient.substr(point);
    } else {
      out += "0.";
      out.append(static_cast<std::size_t>(-d.exponent - n), '0');
      out += d.coefficient;
    }
  } else {
    out += d.coefficient[0];
    if (n > 1) {
      out += '.';
      out += d.coefficient.substr(1);
    }
    out += 'E';
    if (adjusted >= 0) out += '+';
    out += std::to_string(adjusted);
  }
  return out;
}

// A JSON number as an eventsource-py DomainEvent turns it into a Decimal: its mode="before"
// validator sees a Python int (kept exactly) or a float, which becomes Decimal(repr(float)) —
// so 1e5 is "100000.0" and 1e16 is "1E+16", not the plain-model rendering.
std::optional<std::string> decimal_from_number(const Json& v) {
  if (v.is_number_unsigned()) return std::to_string(v.get<std::uint64_t>());
  if (v.is_number_integer()) return std::to_string(v.get<std::int64_t>());
  const double x = v.get<double>();
  if (!std::isfinite(x)) return std::nullopt;
  const auto parts = parse_decimal_text(python_float_repr(x));
  if (!parts) return std::nullopt;
  return decimal_to_string(*parts);
}

// ---------------------------------------------------------------------------------------------
// Validation

std::string child_pointer(const std::string& parent, std::string_view token) {
  return parent + "/" + json_pointer_token(token);
}

const char* json_type_name(const Json& v) {
  switch (v.type()) {
    case Json::value_t::null:
      return "null";
    case Json::value_t::boolean:
      return "boolean";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
      return "integer";
    case Json::value_t::number_float:
      return "number";
    case Json::value_t::string:
      return "string";
    case Json::value_t::array:
      return "array";
    case Json::value_t::object:
      return "object";
    default:
      return "binary";
  }
}

bool integral_float(double x) {
  return std::isfinite(x) && std::trunc(x) == x && x >= -9223372036854775808.0 &&
         x < 9223372036854775808.0;
}

bool matches_type(const SchemaNode& s, std::string_view type, const Json& v) {
  if (type == "null") return v.is_null();
  if (type == "boolean") return v.is_boolean();
  if (type == "object") return v.is_object();
  if (type == "array") return v.is_array();
  if (type == "string") {
    if (v.is_string()) return true;
    return s.format == "decimal" && v.is_number();  // Decimal accepts a number or a string
  }
  if (type == "number") {
    if (v.is_number()) return true;
    return s.format == "decimal" && v.is_string();
  }
  if (type == "integer") {
    if (v.is_number_integer()) return true;  // signed and unsigned
    return v.is_number_float() && integral_float(v.get<double>());
  }
  return false;
}

std::string join_types(const std::vector<std::string>& types) {
  std::string out;
  for (std::size_t i = 0; i < types.size(); ++i) {
    if (i > 0) out += i + 1 == types.size() ? " or " : ", ";
    out += types[i];
  }
  return out;
}

const char* plural(std::size_t n) {
  return n == 1 ? "" : "s";
}

std::string number_text(double x) {
  return fmt::format("{}", x);
}

void validate_node(const SchemaNode& s, const Json& v, const std::string& ptr,
                   std::vector<ValidationError>& out) {
  auto report = [&](std::string message) { out.push_back({ptr, std::move(message)}); };

  if (v.is_number_float() && !std::isfinite(v.get<double>())) {
    report("must be a finite number (NaN and infinity are not allowed)");
    return;
  }
  if (!s.types.empty()) {
    bool ok = std::any_of(s.types.begin(), s.types.end(),
                          [&](const std::string& t) { return matches_type(s, t, v); });
    if (!ok) {
      if (v.is_number_float() && contains(s.types, "integer")) {
        report(fmt::format("expected {}, got a number with a fractional part ({})",
                           join_types(s.types), v.dump()));
      } else {
        report(fmt::format("expected {}, got {}", join_types(s.types), json_type_name(v)));
      }
      return;  // the other keywords would only repeat the type mismatch
    }
  }

  if (s.enum_values) {
    bool found = std::any_of(s.enum_values->begin(), s.enum_values->end(),
                             [&](const Json& e) { return e == v; });
    if (!found) report(fmt::format("must be one of {}, got {}", s.enum_values->dump(), v.dump()));
  }
  if (s.const_value && !(*s.const_value == v)) {
    report(fmt::format("must equal {}, got {}", s.const_value->dump(), v.dump()));
  }

  if (v.is_number()) {
    const double x = v.get<double>();
    if (s.minimum && x < *s.minimum) {
      report(fmt::format("must be >= {}, got {}", number_text(*s.minimum), v.dump()));
    }
    if (s.maximum && x > *s.maximum) {
      report(fmt::format("must be <= {}, got {}", number_text(*s.maximum), v.dump()));
    }
    if (s.exclusive_minimum && x <= *s.exclusive_minimum) {
      report(fmt::format("must be > {}, got {}", number_text(*s.exclusive_minimum), v.dump()));
    }
    if (s.exclusive_maximum && x >= *s.exclusive_maximum) {
      report(fmt::format("must be < {}, got {}", number_text(*s.exclusive_maximum), v.dump()));
    }
  }

  if (v.is_string()) {
    const auto& text = v.get_ref<const std::string&>();
    const std::size_t length = code_points(text);
    if (s.min_length && length < *s.min_length) {
      report(fmt::format("must be at least {} character{} long, got {}", *s.min_length,
                         plural(*s.min_length), length));
    }
    if (s.max_length && length > *s.max_length) {
      report(fmt::format("must be at most {} character{} long, got {}", *s.max_length,
                         plural(*s.max_length), length));
    }
    if (s.pattern_regex && !std::regex_search(text, *s.pattern_regex)) {
      report(fmt::format("does not match pattern '{}'", *s.pattern));
    }
    if (s.format == "uuid" && !canonical_uuid(text)) {
      report(fmt::format("not a valid uuid: {}", v.dump()));
    } else if (s.format == "date-time" && !parse_timestamp(text)) {
      report(fmt::format("not a valid date-time: {}", v.dump()));
    } else if (s.format == "decimal" && !parse_decimal_text(text)) {
      report(fmt::format("not a valid decimal: {}", v.dump()));
    }
  }

  if (v.is_array()) {
    if (s.min_items && v.size() < *s.min_items) {
      report(fmt::format("must have at least {} item{}, got {}", *s.min_items, plural(*s.min_items),
                         v.size()));
    }
    if (s.max_items && v.size() > *s.max_items) {
      report(fmt::format("must have at most {} item{}, got {}", *s.max_items, plural(*s.max_items),
                         v.size()));
    }
    if (s.items) {
      for (std::size_t i = 0; i < v.size(); ++i) {
        validate_node(*s.items, v[i], ptr + "/" + std::to_string(i), out);
      }
    }
  }

  if (v.is_object()) {
    for (const auto& prop : s.properties) {
      auto it = v.find(prop.name);
      if (it == v.end()) {
        if (contains(s.required, prop.name)) {
          out.push_back({child_pointer(ptr, prop.name), "required field missing"});
        }
        continue;
      }
      validate_node(*prop.schema, *it, child_pointer(ptr, prop.name), out);
    }
    if (!s.additional_properties) {
      for (auto it = v.begin(); it != v.end(); ++it) {
        bool declared = std::any_of(s.properties.begin(), s.properties.end(),
                                    [&](const Property& p) { return p.name == it.key(); });
        if (!declared) {
          out.push_back({child_pointer(ptr, it.key()),
                         "unknown field (the Python consumer forbids extra fields)"});
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Normalization

Json normalize_node(const SchemaNode& s, const Json& v) {
  if (v.is_null()) return v;
  if (s.format == "decimal") {
    if (v.is_number()) {
      if (auto text = decimal_from_number(v)) return *text;
    } else if (v.is_string()) {
      if (auto d = parse_decimal_text(v.get_ref<const std::string&>())) {
        return decimal_to_string(*d);
      }
    }
    return v;
  }
  if (v.is_string()) {
    const auto& text = v.get_ref<const std::string&>();
    if (s.format == "uuid") {
      if (auto id = canonical_uuid(text)) return *id;
    } else if (s.format == "date-time") {
      if (auto ts = parse_timestamp(text)) return format_body_time(*ts);
    }
    return v;
  }
  if (v.is_number()) {
    const bool number = contains(s.types, "number");
    const bool integer = contains(s.types, "integer");
    if (number && !integer && !v.is_number_float()) return Json(v.get<double>());  // 100 -> 100.0
    if (integer && !number && v.is_number_float() && integral_float(v.get<double>())) {
      return Json(static_cast<std::int64_t>(v.get<double>()));  // 1.0 -> 1
    }
    return v;
  }
  if (v.is_array()) {
    if (!s.items) return v;
    Json out = Json::array();
    for (const auto& item : v) out.push_back(normalize_node(*s.items, item));
    return out;
  }
  if (v.is_object()) {
    if (s.properties.empty()) return v;  // a free-form object: kept as given
    Json out = Json::object();
    for (const auto& prop : s.properties) {
      auto it = v.find(prop.name);
      if (it != v.end()) {
        out[prop.name] = normalize_node(*prop.schema, *it);
      } else if (prop.schema->default_value) {
        out[prop.name] = normalize_node(*prop.schema, *prop.schema->default_value);
      } else if (!contains(s.required, prop.name)) {
        out[prop.name] = nullptr;  // optional without default: pydantic's `= None`
      }
    }
    if (s.additional_properties) {
      for (auto it = v.begin(); it != v.end(); ++it) {
        if (!out.contains(it.key())) out[it.key()] = it.value();
      }
    }
    return out;
  }
  return v;
}

// ---------------------------------------------------------------------------------------------
// YAML loading

int line_of(const YAML::Node& node) {
  return node.Mark().line + 1;
}  // yaml-cpp is 0-based

struct Loader {
  std::string file;
  std::string event_type;

  [[noreturn]] void fail(int line, const std::string& message) const {
    std::string where = event_type.empty() ? "" : fmt::format("event '{}': ", event_type);
    throw Error(ErrorKind::invalid_input, at_place(file, line, where + message));
  }
};

bool is_plain(const YAML::Node& node) {
  return node.Tag() == "?";
}

// YAML 1.2 core-schema resolution of a plain scalar; quoted scalars and !!str stay strings.
Json scalar_to_json(const Loader& ld, const YAML::Node& node) {
  const std::string& s = node.Scalar();
  if (node.Tag() == "!" || node.Tag() == "tag:yaml.org,2002:str") return s;
  if (!is_plain(node)) return s;
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return nullptr;
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  if (s == ".inf" || s == "-.inf" || s == "+.inf" || s == ".nan" || s == ".NaN" || s == ".NAN" ||
      s == ".Inf" || s == ".INF" || s == "-.Inf" || s == "-.INF") {
    ld.fail(line_of(node), fmt::format("'{}' cannot be written in JSON", s));
  }
  std::size_t i = (s[0] == '-' || s[0] == '+') ? 1 : 0;
  bool digits_only = i < s.size() && std::all_of(s.begin() + static_cast<std::ptrdiff_t>(i),
                                                 s.end(), [](char c) { return is_digit(c); });
  if (digits_only) {
    std::string_view text(s);
    if (text[0] == '+') text.remove_prefix(1);
    std::int64_t as_int = 0;
    auto r = std::from_chars(text.data(), text.data() + text.size(), as_int);
    if (r.ec == std::errc() && r.ptr == text.data() + text.size()) return as_int;
    std::uint64_t as_uint = 0;
    r = std::from_chars(text.data(), text.data() + text.size(), as_uint);
    if (r.ec == std::errc() && r.ptr == text.data() + text.size()) return as_uint;
  }
  static const std::regex float_re(R"(^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$)");
  if (std::regex_match(s, float_re)) {
    double x = 0;
    std::string_view text(s);
    if (text[0] == '+') text.remove_prefix(1);
    auto r = std::from_chars(text.data(), text.data() + text.size(), x);
    if (r.ec == std::errc() && std::isfinite(x)) return x;
    ld.fail(line_of(node), fmt::format("number '{}' is out of range", s));
  }
  return s;
}

Json yaml_to_json(const Loader& ld, const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return nullptr;
    case YAML::NodeType::Scalar:
      return scalar_to_json(ld, node);
    case YAML::NodeType::Sequence: {
      Json out = Json::array();
      for (const auto& item : node) out.push_back(yaml_to_json(ld, item));
      return out;
    }
    case YAML::NodeType::Map: {
      Json out = Json::object();
      for (auto it = node.begin(); it != node.end(); ++it) {
        out[it->first.Scalar()] = yaml_to_json(ld, it->second);
      }
      return out;
    }
  }
  return nullptr;
}

std::string prefix(const std::string& what) {
  return what.empty() ? "" : what + ": ";
}

// Iterates a YAML map, rejecting non-scalar and duplicate keys.
template <typename F>
void for_each_entry(const Loader& ld, const YAML::Node& map, const std::string& what, F&& f) {
  std::vector<std::string> seen;
  for (auto it = map.begin(); it != map.end(); ++it) {
    if (!it->first.IsScalar() || it->first.Scalar().empty()) {
      ld.fail(line_of(it->first), prefix(what) + "keys must be non-empty names");
    }
    const std::string& key = it->first.Scalar();
    if (contains(seen, key))
      ld.fail(line_of(it->first), prefix(what) + "duplicate key '" + key + "'");
    seen.push_back(key);
    f(key, it->first, it->second);
  }
}

std::string field_label(const std::string& path) {
  return fmt::format("field '{}'", path);
}

double number_keyword(const Loader& ld, const std::string& path, const std::string& key,
                      const YAML::Node& k, const YAML::Node& v) {
  Json j = v.IsScalar() ? scalar_to_json(ld, v) : Json();
  if (!j.is_number()) {
    ld.fail(line_of(k), fmt::format("{}: '{}' must be a number", field_label(path), key));
  }
  return j.get<double>();
}

std::size_t count_keyword(const Loader& ld, const std::string& path, const std::string& key,
                          const YAML::Node& k, const YAML::Node& v) {
  Json j = v.IsScalar() ? scalar_to_json(ld, v) : Json();
  if (!j.is_number_integer() || j.get<std::int64_t>() < 0) {
    ld.fail(line_of(k),
            fmt::format("{}: '{}' must be a non-negative integer", field_label(path), key));
  }
  return j.get<std::size_t>();
}

std::vector<std::string> required_list(const Loader& ld, const std::string& what,
                                       const YAML::Node& k, const YAML::Node& v) {
  if (!v.IsSequence()) ld.fail(line_of(k), prefix(what) + "'required' must be a list of names");
  std::vector<std::string> names;
  for (const auto& item : v) {
    if (!item.IsScalar() || item.Scalar().empty()) {
      ld.fail(line_of(item), prefix(what) + "'required' must be a list of names");
    }
    if (!contains(names, item.Scalar())) names.push_back(item.Scalar());
  }
  return names;
}

struct RequiredDecl {
  std::vector<std::string> names;
  int line = 0;
};

// Completes an object node once its properties are known: `required` defaults to every property
// without a default (pydantic), names must be declared, and an optional property without a
// default is sent as null, so its type must allow null.
void finish_object(const Loader& ld, const std::string& what, SchemaNode& node,
                   const std::optional<RequiredDecl>& required, int line) {
  if (required) {
    for (const auto& name : required->names) {
      bool declared = std::any_of(node.properties.begin(), node.properties.end(),
                                  [&](const Property& p) { return p.name == name; });
      if (!declared) {
        ld.fail(required->line,
                fmt::format("{}'required' names '{}', which is not declared", prefix(what), name));
      }
    }
    node.required = required->names;
  } else {
    node.required.clear();
    for (const auto& p : node.properties) {
      if (!p.schema->default_value) node.required.push_back(p.name);
    }
  }
  for (const auto& p : node.properties) {
    const SchemaNode& ps = *p.schema;
    if (contains(node.required, p.name) || ps.default_value) continue;
    if (!ps.types.empty() && !contains(ps.types, "null")) {
      ld.fail(ps.line > 0 ? ps.line : line,
              fmt::format("{}field '{}' is optional without a default, so it is sent as "
                          "null, but its type does not allow null (add \"null\" to its type or "
                          "give it a default)",
                          prefix(what), p.name));
    }
  }
}

std::shared_ptr<const SchemaNode> parse_node(const Loader& ld, const std::string& path,
                                             const YAML::Node& key, const YAML::Node& value);

void parse_properties(const Loader& ld, const std::string& path, const YAML::Node& k,
                      const YAML::Node& v, SchemaNode& node, bool top_level) {
  std::string what = path.empty() ? "" : field_label(path);
  if (v.IsNull()) return;
  if (!v.IsMap()) ld.fail(line_of(k), prefix(what) + "expected a map of field names");
  for_each_entry(
      ld, v, what, [&](const std::string& name, const YAML::Node& nk, const YAML::Node& nv) {
        if (top_level && contains(kBaseFields, name)) {
          ld.fail(line_of(nk), fmt::format("field '{}' collides with the DomainEvent base field of "
                                           "the same name",
                                           name));
        }
        std::string child = path.empty() ? name : path + "." + name;
        node.properties.push_back({name, parse_node(ld, child, nk, nv)});
      });
}

std::shared_ptr<const SchemaNode> parse_node(const Loader& ld, const std::string& path,
                                             const YAML::Node& key, const YAML::Node& value) {
  const std::string label = field_label(path);
  if (!value.IsMap()) {
    ld.fail(line_of(key), fmt::format("{}: expected a map of JSON Schema keywords, e.g. "
                                      "{{type: string}}",
                                      label));
  }
  auto node = std::make_shared<SchemaNode>();
  node->line = line_of(key);
  std::optional<RequiredDecl> required;
  bool has_properties = false, has_additional = false;
  std::optional<std::pair<Json, int>> default_decl;

  for_each_entry(
      ld, value, label, [&](const std::string& kw, const YAML::Node& k, const YAML::Node& v) {
        const int line = line_of(k);
        if (kw == "type") {
          std::vector<YAML::Node> names;
          if (v.IsSequence()) {
            for (const auto& item : v) names.push_back(item);
            if (names.empty()) ld.fail(line, fmt::format("{}: 'type' list is empty", label));
          } else {
            names.push_back(v);
          }
          for (const auto& n : names) {
            std::string type_name;
            if (n.IsNull() || (n.IsScalar() && scalar_to_json(ld, n).is_null())) {
              type_name = "null";  // `[string, null]` written without quotes
            } else if (n.IsScalar()) {
              type_name = n.Scalar();
            } else {
              ld.fail(line, fmt::format("{}: 'type' must be a type name or a list of them", label));
            }
            if (!contains(kTypeNames, type_name)) {
              ld.fail(line, fmt::format("{}: unknown type '{}' (expected string, number, integer, "
                                        "boolean, object, array or null)",
                                        label, type_name));
            }
            if (contains(node->types, type_name)) {
              ld.fail(line, fmt::format("{}: type '{}' is listed twice", label, type_name));
            }
            node->types.push_back(type_name);
          }
        } else if (kw == "properties") {
          has_properties = true;
          parse_properties(ld, path, k, v, *node, false);
        } else if (kw == "required") {
          required = RequiredDecl{required_list(ld, label, k, v), line};
        } else if (kw == "additionalProperties") {
          Json j = v.IsScalar() ? scalar_to_json(ld, v) : Json();
          if (!j.is_boolean()) {
            ld.fail(line, fmt::format("{}: 'additionalProperties' must be true or false", label));
          }
          node->additional_properties = j.get<bool>();
          has_additional = true;
        } else if (kw == "enum") {
          Json j = yaml_to_json(ld, v);
          if (!j.is_array() || j.empty()) {
            ld.fail(line, fmt::format("{}: 'enum' must be a non-empty list", label));
          }
          node->enum_values = std::move(j);
        } else if (kw == "const") {
          node->const_value = yaml_to_json(ld, v);
        } else if (kw == "default") {
          default_decl = std::make_pair(yaml_to_json(ld, v), line);
        } else if (kw == "minimum") {
          node->minimum = number_keyword(ld, path, kw, k, v);
        } else if (kw == "maximum") {
          node->maximum = number_keyword(ld, path, kw, k, v);
        } else if (kw == "exclusiveMinimum") {
          node->exclusive_minimum = number_keyword(ld, path, kw, k, v);
        } else if (kw == "exclusiveMaximum") {
          node->exclusive_maximum = number_keyword(ld, path, kw, k, v);
        } else if (kw == "minLength") {
          node->min_length = count_keyword(ld, path, kw, k, v);
        } else if (kw == "maxLength") {
          node->max_length = count_keyword(ld, path, kw, k, v);
        } else if (kw == "minItems") {
          node->min_items = count_keyword(ld, path, kw, k, v);
        } else if (kw == "maxItems") {
          node->max_items = count_keyword(ld, path, kw, k, v);
        } else if (kw == "pattern") {
          if (!v.IsScalar()) ld.fail(line, fmt::format("{}: 'pattern' must be a string", label));
          try {
            node->pattern_regex =
                std::make_shared<const std::regex>(v.Scalar(), std::regex::ECMAScript);
          } catch (const std::regex_error& e) {
            ld.fail(line, fmt::format("{}: 'pattern' '{}' does not compile: {}", label, v.Scalar(),
                                      e.what()));
          }
          node->pattern = v.Scalar();
        } else if (kw == "format") {
          if (!v.IsScalar() || v.Scalar().empty()) {
            ld.fail(line, fmt::format("{}: 'format' must be a name", label));
          }
          node->format = v.Scalar();
        } else if (kw == "items") {
          node->items = parse_node(ld, path + "[]", k, v);
        } else if (kw == "description") {
          // documentation only
        } else {
          ld.fail(line, fmt::format("{}: unknown keyword '{}'", label, kw));
        }
      });

  if (node->format == "decimal" && node->types.empty()) {
    node->types = {"string", "number"};  // what pydantic's Decimal accepts
  }
  if (has_properties || required) {
    // A free-form object (no properties) accepts any key; one with properties forbids extras.
    finish_object(ld, label, *node, required, node->line);
  } else if (!has_additional) {
    node->additional_properties = true;
  }
  if (default_decl) {
    std::vector<ValidationError> errors;
    validate_node(*node, default_decl->first, "", errors);
    if (!errors.empty()) {
      ld.fail(default_decl->second,
              fmt::format("{}: 'default' {} does not fit the field: {}{}", label,
                          default_decl->first.dump(),
                          errors.front().pointer.empty() ? "" : errors.front().pointer + ": ",
                          errors.front().message));
    }
    node->default_value = std::move(default_decl->first);
  }
  return node;
}

bool valid_aggregate_type(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || is_digit(c) || c == '_' ||
           c == '.' || c == '-';
  });
}

EventSchema parse_event(Loader& ld, const YAML::Node& key, const YAML::Node& value) {
  EventSchema ev;
  ev.event_type = key.Scalar();
  ev.file = ld.file;
  ev.line = line_of(key);
  ld.event_type = ev.event_type;
  if (!value.IsMap()) ld.fail(ev.line, "expected a map with aggregate_type and fields");

  ev.payload.types = {"object"};
  ev.payload.line = ev.line;
  std::optional<RequiredDecl> required;
  bool has_aggregate_type = false;
  for_each_entry(
      ld, value, "", [&](const std::string& name, const YAML::Node& k, const YAML::Node& v) {
        const int line = line_of(k);
        if (!contains(kEventKeys, name)) {
          ld.fail(line, fmt::format("unknown key '{}' (expected aggregate_type, event_version, "
                                    "description, fields or required)",
                                    name));
        }
        if (name == "aggregate_type") {
          if (!v.IsScalar() || !valid_aggregate_type(v.Scalar())) {
            ld.fail(line, fmt::format("'aggregate_type' must match ^[A-Za-z0-9_.-]+$, got '{}'",
                                      v.IsScalar() ? v.Scalar() : std::string("(not a string)")));
          }
          ev.aggregate_type = v.Scalar();
          has_aggregate_type = true;
        } else if (name == "event_version") {
          Json j = v.IsScalar() ? scalar_to_json(ld, v) : Json();
          if (!j.is_number_integer() || j.get<std::int64_t>() < 1 ||
              j.get<std::int64_t>() > std::numeric_limits<int>::max()) {
            ld.fail(line, "'event_version' must be an integer >= 1");
          }
          ev.event_version = j.get<int>();
        } else if (name == "fields") {
          parse_properties(ld, "", k, v, ev.payload, true);
        } else if (name == "required") {
          required = RequiredDecl{required_list(ld, "", k, v), line};
        }
      });
  if (!has_aggregate_type) ld.fail(ev.line, "missing required key 'aggregate_type'");
  finish_object(ld, "", ev.payload, required, ev.line);
  ld.event_type.clear();
  return ev;
}

}  // namespace

// -----------------------------------------------------------------------------------------------

void SchemaSet::add(EventSchema schema) {
  if (const EventSchema* existing = find(schema.event_type)) {
    throw Error(ErrorKind::invalid_input,
                at_place(schema.file, schema.line,
                         fmt::format("event '{}': event type already defined at {}:{}",
                                     schema.event_type, existing->file, existing->line)));
  }
  schemas_.push_back(std::move(schema));
}

const EventSchema* SchemaSet::find(std::string_view event_type) const {
  for (const auto& s : schemas_) {
    if (s.event_type == event_type) return &s;
  }
  return nullptr;
}

void load_schema_file(const std::string& path, SchemaSet& into) {
  Loader ld{path, {}};
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    throw Error(ErrorKind::invalid_input, at_place(path, 0, "cannot read schema file"));
  } catch (const YAML::Exception& e) {
    throw Error(ErrorKind::invalid_input,
                at_place(path, e.mark.line >= 0 ? e.mark.line + 1 : 0, "YAML syntax: " + e.msg));
  }
  if (!root.IsMap()) ld.fail(1, "expected a top-level map with the key 'events'");
  std::vector<EventSchema> loaded;
  bool has_events = false;
  for_each_entry(
      ld, root, "", [&](const std::string& name, const YAML::Node& k, const YAML::Node& v) {
        if (name != "events")
          ld.fail(line_of(k), fmt::format("unknown top-level key '{}' (expected 'events')", name));
        has_events = true;
        if (v.IsNull()) return;
        if (!v.IsMap()) ld.fail(line_of(k), "'events' must map event types to their definitions");
        for_each_entry(ld, v, "",
                       [&](const std::string&, const YAML::Node& ek, const YAML::Node& ev) {
                         loaded.push_back(parse_event(ld, ek, ev));
                       });
      });
  if (!has_events) ld.fail(1, "missing top-level key 'events'");
  for (auto& ev : loaded) into.add(std::move(ev));
}

SchemaSet load_schemas(const std::vector<std::string>& paths) {
  SchemaSet set;
  for (const auto& path : paths) {
    std::error_code ec;
    const auto status = fs::status(path, ec);
    if (ec || !fs::exists(status)) {
      throw Error(ErrorKind::invalid_input, fmt::format("schema path '{}' does not exist", path));
    }
    if (!fs::is_directory(status)) {
      load_schema_file(path, set);
      continue;
    }
    std::vector<std::string> files;
    for (const auto& entry : fs::directory_iterator(path, ec)) {
      const auto name = entry.path().filename().string();
      const auto ext = entry.path().extension().string();
      if (name.empty() || name[0] == '.') continue;  // editor and lock files
      if ((ext == ".yaml" || ext == ".yml") && entry.is_regular_file(ec)) {
        files.push_back(entry.path().string());
      }
    }
    if (ec) {
      throw Error(ErrorKind::invalid_input,
                  fmt::format("cannot list schema folder '{}': {}", path, ec.message()));
    }
    std::sort(files.begin(), files.end());
    for (const auto& file : files) load_schema_file(file, set);
  }
  return set;
}

std::vector<ValidationError> validate_payload(const EventSchema& schema, const Json& payload) {
  std::vector<ValidationError> errors;
  validate_node(schema.payload, payload, "", errors);
  return errors;
}

Json normalize_payload(const EventSchema& schema, const Json& payload) {
  return normalize_node(schema.payload, payload);
}

}  // namespace evbus
