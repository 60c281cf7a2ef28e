#include "core/envelope.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <random>
#include <utility>

#include "core/text.hpp"

namespace evbus {
namespace {

// DomainEvent's base fields, in declaration (= wire) order.
constexpr std::array<std::string_view, 12> kBaseFields = {
    "event_id",     "event_type",     "event_version",     "occurred_at",
    "aggregate_id", "aggregate_type", "aggregate_version", "tenant_id",
    "actor_id",     "correlation_id", "causation_id",      "metadata"};

std::string field_pointer(std::string_view field) {
  return "/" + json_pointer_token(field);
}

std::string kind_of(const Json& v) {
  switch (v.type()) {
    case Json::value_t::null:
      return "null";
    case Json::value_t::boolean:
      return "a boolean";
    case Json::value_t::string:
      return "a string";
    case Json::value_t::array:
      return "an array";
    case Json::value_t::object:
      return "an object";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
    case Json::value_t::number_float:
      return "a number";
    default:
      return "an unsupported value";
  }
}

// Every string and key that is not valid UTF-8: nlohmann's dump would throw on them.
void check_utf8(const Json& v, const std::string& pointer, std::vector<ValidationError>& errors) {
  if (v.is_string()) {
    if (!is_valid_utf8(v.get_ref<const std::string&>())) {
      errors.push_back({pointer, "string is not valid UTF-8"});
    }
  } else if (v.is_object()) {
    for (const auto& [key, member] : v.items()) {
      const std::string child = pointer + "/" + json_pointer_token(key);
      if (!is_valid_utf8(key)) errors.push_back({child, "key is not valid UTF-8"});
      check_utf8(member, child, errors);
    }
  } else if (v.is_array()) {
    for (std::size_t i = 0; i < v.size(); ++i) {
      check_utf8(v[i], pointer + "/" + std::to_string(i), errors);
    }
  }
}

bool valid_aggregate_type(std::string_view s) {
  // ^[A-Za-z0-9_.-]+\Z
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
  });
}

bool is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

// Checks one envelope field after another, collecting every problem.
class EnvelopeChecker {
 public:
  explicit EnvelopeChecker(std::vector<ValidationError>& errors) : errors_(errors) {}

  void fail(std::string_view field, std::string message) {
    errors_.push_back({field_pointer(field), std::move(message)});
  }

  std::optional<std::string> uuid(std::string_view field, const Json& v) {
    if (!v.is_string()) {
      fail(field, "must be a UUID string, got " + kind_of(v));
      return std::nullopt;
    }
    const auto& text = v.get_ref<const std::string&>();
    auto canonical = canonical_uuid(text);
    if (!canonical) fail(field, fmt::format("invalid UUID '{}'", printable(text)));
    return canonical;
  }

  // An integer >= 1. A float with no fractional part counts (1.0 -> 1); a boolean does not.
  std::optional<int64_t> positive_int(std::string_view field, const Json& v) {
    std::optional<int64_t> value;
    if (v.is_number_unsigned()) {
      const auto u = v.get<uint64_t>();
      if (u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        value = static_cast<int64_t>(u);
      }
    } else if (v.is_number_integer()) {
      value = v.get<int64_t>();
    } else if (v.is_number_float()) {
      const double d = v.get<double>();
      constexpr double kLimit = 9223372036854775808.0;  // 2^63
      if (std::isfinite(d) && std::trunc(d) == d && d >= -kLimit && d < kLimit) {
        value = static_cast<int64_t>(d);
      } else if (std::isfinite(d) && std::trunc(d) != d) {
        fail(field, fmt::format("must be an integer, got {}", v.dump()));
        return std::nullopt;
      }
    } else {
      fail(field, "must be an integer, got " + kind_of(v));
      return std::nullopt;
    }
    if (!value) {
      fail(field, fmt::format("integer {} is out of range", v.dump()));
      return std::nullopt;
    }
    if (*value < 1) {
      fail(field, fmt::format("must be >= 1, got {}", *value));
      return std::nullopt;
    }
    return value;
  }

  std::optional<Timestamp> timestamp(std::string_view field, const Json& v) {
    std::optional<std::string> text;
    if (v.is_string()) {
      text = v.get<std::string>();
    } else if (v.is_number_unsigned()) {
      text = std::to_string(v.get<uint64_t>());
    } else if (v.is_number_integer()) {
      text = std::to_string(v.get<int64_t>());
    } else if (v.is_number_float()) {
      text = v.dump();
    } else {
      fail(field, "must be a date-time string or epoch seconds, got " + kind_of(v));
      return std::nullopt;
    }
    auto ts = parse_timestamp(*text);
    if (!ts) fail(field, fmt::format("invalid date-time '{}'", printable(*text)));
    return ts;
  }

 private:
  std::vector<ValidationError>& errors_;
};

bool has_payload_field(const EventSchema& schema, std::string_view name) {
  const auto& props = schema.payload.properties;
  return std::any_of(props.begin(), props.end(), [&](const Property& p) { return p.name == name; });
}

std::string known_types(const SchemaSet& schemas) {
  std::vector<std::string> names;
  for (const auto& s : schemas.all()) names.push_back(s.event_type);
  std::sort(names.begin(), names.end());
  return names.empty() ? std::string("none") : fmt::format("{}", fmt::join(names, ", "));
}

// Takes (and removes) a key from an object.
std::optional<Json> take(Json& object, std::string_view key) {
  auto it = object.find(key);
  if (it == object.end()) return std::nullopt;
  Json value = std::move(*it);
  object.erase(it);
  return value;
}

void write_wire_json(const Json& v, std::string& out) {
  switch (v.type()) {
    case Json::value_t::object: {
      out += '{';
      bool first = true;
      for (const auto& [key, member] : v.items()) {
        if (!first) out += ',';
        first = false;
        out += Json(key).dump();
        out += ':';
        write_wire_json(member, out);
      }
      out += '}';
      break;
    }
    case Json::value_t::array: {
      out += '[';
      for (std::size_t i = 0; i < v.size(); ++i) {
        if (i > 0) out += ',';
        write_wire_json(v[i], out);
      }
      out += ']';
      break;
    }
    case Json::value_t::number_float:
      out += format_wire_float(v.get<double>());
      break;
    default:  // strings (escaped as serde_json does), integers, booleans, null
      out += v.dump();
      break;
  }
}

}  // namespace

std::string format_wire_float(double value) {
  if (!std::isfinite(value)) return "null";  // as nlohmann; pydantic rejects inf/nan anyway
  // The ryu layout pydantic-core uses: fixed notation for -5 < point <= 16, then "1e-7", "1e+16".
  return format_shortest_float(value, -5, 1);
}

std::string to_wire_json(const Json& value) {
  std::string out;
  write_wire_json(value, out);
  return out;
}

EnvelopeDefaults EnvelopeDefaults::system() {
  return EnvelopeDefaults{new_uuid4, now_utc};
}

std::string new_uuid4() {
  thread_local std::mt19937_64 rng = [] {
    std::random_device device;
    std::seed_seq seq{device(), device(), device(), device(),
                      device(), device(), device(), device()};
    return std::mt19937_64(seq);
  }();
  std::array<unsigned char, 16> bytes{};
  const uint64_t hi = rng();
  const uint64_t lo = rng();
  for (std::size_t i = 0; i < 8; ++i) {
    bytes[i] = static_cast<unsigned char>(hi >> (56 - 8 * i));
    bytes[8 + i] = static_cast<unsigned char>(lo >> (56 - 8 * i));
  }
  bytes[6] = static_cast<unsigned char>((bytes[6] & 0x0FU) | 0x40U);  // version 4
  bytes[8] = static_cast<unsigned char>((bytes[8] & 0x3FU) | 0x80U);  // RFC 4122 variant
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(36);
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
    out += kHex[bytes[i] >> 4];
    out += kHex[bytes[i] & 0x0FU];
  }
  return out;
}

// The forms pydantic (the Rust uuid crate) accepts: 32 hex digits, the hyphenated 8-4-4-4-12 form,
// and the hyphenated form in braces or after a lowercase "urn:uuid:". Any case.
std::optional<std::string> canonical_uuid(std::string_view text) {
  if (text.size() == 38 && text.front() == '{' && text.back() == '}') {
    text = text.substr(1, 36);
  } else if (text.size() == 45 && text.substr(0, 9) == "urn:uuid:") {
    text = text.substr(9);
  } else if (text.size() == 32) {
    if (!std::all_of(text.begin(), text.end(), is_hex)) return std::nullopt;
    std::string out;
    out.reserve(36);
    for (std::size_t i = 0; i < 32; ++i) {
      if (i == 8 || i == 12 || i == 16 || i == 20) out += '-';
      out += lower(text[i]);
    }
    return out;
  }
  if (text.size() != 36) return std::nullopt;
  std::string out;
  out.reserve(36);
  for (std::size_t i = 0; i < 36; ++i) {
    const bool hyphen_position = i == 8 || i == 13 || i == 18 || i == 23;
    if (hyphen_position ? text[i] != '-' : !is_hex(text[i])) return std::nullopt;
    out += lower(text[i]);
  }
  return out;
}

BuildResult build_event(const Json& input, const std::optional<std::string>& type,
                        const SchemaSet& schemas, const EnvelopeDefaults& defaults) {
  BuildResult result;
  auto& errors = result.errors;
  if (!input.is_object()) {
    errors.push_back({"", "an event must be a JSON object, got " + kind_of(input)});
    return result;
  }
  check_utf8(input, "", errors);

  // The event type: --type, else the input's event_type ("" and null count as absent, as in
  // DomainEvent's before-validator). A disagreement is reported below, after the data merge.
  std::optional<std::string> name;
  if (type && !type->empty()) name = *type;
  if (!name) {
    if (auto it = input.find("event_type");
        it != input.end() && it->is_string() && !it->get_ref<const std::string&>().empty()) {
      name = it->get<std::string>();
    }
  }
  const EventSchema* schema = nullptr;
  if (!name) {
    errors.push_back({"/event_type", "no event type: give an event_type field or a type"});
  } else if (schema = schemas.find(*name); schema == nullptr) {
    errors.push_back({"/event_type", fmt::format("unknown event type '{}' (known: {})",
                                                 printable(*name), known_types(schemas))});
  }

  // A "data" object holds payload fields, unless the schema declares a field called data.
  Json fields = input;
  if (auto it = fields.find("data");
      it != fields.end() && it->is_object() && !(schema && has_payload_field(*schema, "data"))) {
    Json data = take(fields, "data").value();
    for (auto& [key, value] : data.items()) {
      if (fields.contains(key)) {
        errors.push_back({"/data/" + json_pointer_token(key),
                          fmt::format("field '{}' is given both inside data and at the top level",
                                      printable(key))});
      } else {
        fields[key] = std::move(value);
      }
    }
  }

  EnvelopeChecker check(errors);
  std::array<std::optional<Json>, kBaseFields.size()> given;
  for (std::size_t i = 0; i < kBaseFields.size(); ++i) given[i] = take(fields, kBaseFields[i]);
  auto field = [&](std::string_view which) -> const std::optional<Json>& {
    const auto at = std::find(kBaseFields.begin(), kBaseFields.end(), which);
    return given[static_cast<std::size_t>(at - kBaseFields.begin())];
  };

  // Fresh values are drawn in wire order: event_id first, then correlation_id.
  std::optional<std::string> event_id;
  if (const auto& v = field("event_id")) {
    event_id = check.uuid("event_id", *v);
  } else {
    event_id = defaults.new_uuid ? defaults.new_uuid() : new_uuid4();
  }

  if (const auto& v = field("event_type")) {
    if (v->is_string()) {
      const auto& text = v->get_ref<const std::string&>();
      if (name && !text.empty() && text != *name) {
        check.fail("event_type", fmt::format("event_type '{}' differs from the requested type '{}'",
                                             printable(text), printable(*name)));
      }
    } else if (!v->is_null()) {
      check.fail("event_type", "must be a string, got " + kind_of(*v));
    }
  }

  std::optional<int64_t> event_version =
      schema && schema->event_version ? int64_t{*schema->event_version} : int64_t{1};
  if (const auto& v = field("event_version"))
    event_version = check.positive_int("event_version", *v);

  std::optional<Timestamp> occurred_at;
  if (const auto& v = field("occurred_at")) {
    occurred_at = check.timestamp("occurred_at", *v);
  } else {
    occurred_at = defaults.now ? defaults.now() : now_utc();
  }

  std::optional<std::string> aggregate_id;
  if (const auto& v = field("aggregate_id")) {
    aggregate_id = check.uuid("aggregate_id", *v);
  } else {
    check.fail("aggregate_id", "field required");
  }

  std::optional<std::string> aggregate_type;
  if (const auto& v = field("aggregate_type")) {
    if (v->is_string()) {
      aggregate_type = v->get<std::string>();
    } else {
      check.fail("aggregate_type", "must be a string, got " + kind_of(*v));
    }
  } else if (schema && !schema->aggregate_type.empty()) {
    aggregate_type = schema->aggregate_type;
  } else if (schema) {
    check.fail("aggregate_type", "field required (the schema gives no aggregate_type)");
  }
  if (aggregate_type && !valid_aggregate_type(*aggregate_type)) {
    check.fail("aggregate_type",
               fmt::format("'{}' must match ^[A-Za-z0-9_.-]+$", printable(*aggregate_type)));
    aggregate_type.reset();
  }

  std::optional<int64_t> aggregate_version = 1;
  if (const auto& v = field("aggregate_version")) {
    aggregate_version = check.positive_int("aggregate_version", *v);
  }

  // Nullable UUIDs: absent or null -> null.
  auto nullable_uuid = [&](std::string_view which) -> std::optional<std::string> {
    const auto& v = field(which);
    if (!v || v->is_null()) return std::nullopt;
    return check.uuid(which, *v);
  };
  const auto tenant_id = nullable_uuid("tenant_id");

  std::optional<std::string> actor_id;
  if (const auto& v = field("actor_id"); v && !v->is_null()) {
    if (v->is_string()) {
      actor_id = v->get<std::string>();
    } else {
      check.fail("actor_id", "must be a string or null, got " + kind_of(*v));
    }
  }

  std::optional<std::string> correlation_id;
  if (const auto& v = field("correlation_id")) {
    correlation_id = check.uuid("correlation_id", *v);
  } else {
    correlation_id = defaults.new_uuid ? defaults.new_uuid() : new_uuid4();
  }

  const auto causation_id = nullable_uuid("causation_id");

  Json metadata = Json::object();
  if (const auto& v = field("metadata")) {
    if (v->is_object()) {
      metadata = *v;
    } else {
      check.fail("metadata", "must be an object, got " + kind_of(*v));
    }
  }

  // Whatever is left is the payload.
  Json payload_out = Json::object();
  if (schema) {
    auto payload_errors = validate_payload(*schema, fields);
    errors.insert(errors.end(), std::make_move_iterator(payload_errors.begin()),
                  std::make_move_iterator(payload_errors.end()));
    if (errors.empty()) {
      try {
        payload_out = normalize_payload(*schema, fields);
      } catch (const std::exception& e) {
        errors.push_back({"", fmt::format("cannot normalise the payload: {}", e.what())});
      }
    }
  }
  if (!errors.empty()) return result;

  auto nullable = [](const std::optional<std::string>& s) { return s ? Json(*s) : Json(nullptr); };
  Event event;
  event.event_type = *name;
  event.aggregate_id = *aggregate_id;
  Json& body = event.body;
  body = Json::object();
  body["event_id"] = *event_id;
  body["event_type"] = *name;
  body["event_version"] = *event_version;
  body["occurred_at"] = format_body_time(*occurred_at);
  body["aggregate_id"] = *aggregate_id;
  body["aggregate_type"] = *aggregate_type;
  body["aggregate_version"] = *aggregate_version;
  body["tenant_id"] = nullable(tenant_id);
  body["actor_id"] = nullable(actor_id);
  body["correlation_id"] = *correlation_id;
  body["causation_id"] = nullable(causation_id);
  body["metadata"] = std::move(metadata);
  for (auto& [key, value] : payload_out.items()) body[key] = std::move(value);

  try {
    event.value = to_wire_json(body);
  } catch (const Json::exception& e) {  // invalid UTF-8 that slipped past the checks above
    errors.push_back({"", fmt::format("cannot serialise the event: {}", e.what())});
    return result;
  }

  auto& headers = event.headers;
  headers.push_back({"event_id", *event_id});
  headers.push_back({"event_type", *name});
  headers.push_back({"aggregate_id", *aggregate_id});
  headers.push_back({"aggregate_type", *aggregate_type});
  headers.push_back({"aggregate_version", std::to_string(*aggregate_version)});
  headers.push_back({"occurred_at", format_header_time(*occurred_at)});
  headers.push_back({"correlation_id", *correlation_id});
  if (tenant_id) headers.push_back({"tenant_id", *tenant_id});
  if (causation_id) headers.push_back({"causation_id", *causation_id});
  if (actor_id && !actor_id->empty()) headers.push_back({"actor_id", *actor_id});

  result.event = std::move(event);
  return result;
}

OutRecord to_record(const Event& event, const std::string& topic) {
  return OutRecord{topic, std::nullopt, event.aggregate_id, event.value, event.headers};
}

namespace {
struct TooDeep {};
}  // namespace

ParsedJson parse_event_json(std::string_view text) {
  ParsedJson out;
  const auto limit_depth = [](int depth, Json::parse_event_t, Json&) {
    if (depth > kMaxJsonDepth) throw TooDeep{};
    return true;
  };
  try {
    out.value = Json::parse(text.begin(), text.end(), limit_depth);
  } catch (const TooDeep&) {
    out.error = fmt::format("nested deeper than {} levels", kMaxJsonDepth);
  } catch (const Json::exception& e) {
    out.error = e.what();
  }
  return out;
}

}  // namespace evbus
