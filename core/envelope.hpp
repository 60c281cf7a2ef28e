#pragma once
// DomainEvent envelopes: filling the base fields the way eventsource-py does, the record value
// (compact JSON, base fields in contract order then schema fields), key and headers (§2).
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/record.hpp"
#include "core/schema.hpp"
#include "core/timefmt.hpp"

namespace evbus {

// Sources of fresh values, injectable for byte-exact tests.
struct EnvelopeDefaults {
  std::function<std::string()> new_uuid;  // lowercase hyphenated uuid4
  std::function<Timestamp()> now;
  static EnvelopeDefaults system();
};

struct Event {
  Json body;  // full DomainEvent JSON, in wire order
  std::string event_type;
  std::string aggregate_id;  // canonical lowercase hyphenated
  std::string value;         // body.dump() compact, raw UTF-8
  Headers headers;           // contract §2.3, in order
};

struct BuildResult {
  std::optional<Event> event;
  std::vector<ValidationError> errors;  // every problem found, with JSON pointers
};

// input: a partial or full event object (envelope fields and payload fields side by side; a
// "data" object is merged in as payload fields). type: --type, used when the input has no
// event_type (and must agree with it when both are given).
BuildResult build_event(const Json& input, const std::optional<std::string>& type,
                        const SchemaSet& schemas, const EnvelopeDefaults& defaults);

// The record for an event: topic, key = aggregate id, headers, value.
OutRecord to_record(const Event& event, const std::string& topic);

// Compact JSON exactly as pydantic's model_dump_json writes it: like nlohmann's dump (raw UTF-8,
// control characters escaped), but floats in pydantic's notation (1e-7, 0.00001,
// 1000000000000000.0, 1e+16), where nlohmann writes 1e-07, 1e-05 and 1e+15. Throws
// nlohmann::json::type_error (316) on a string that is not valid UTF-8.
std::string to_wire_json(const Json& value);
// One float as pydantic writes it (shortest round-trip digits).
std::string format_wire_float(double value);

// Parses an event body or input line. The reason it is not acceptable JSON (syntax errors, numbers
// out of range and nesting deeper than kMaxJsonDepth, which pydantic's JSON parser refuses too)
// comes back as `error`, never as an exception, so one bad record cannot stop the others.
inline constexpr int kMaxJsonDepth = 200;
struct ParsedJson {
  std::optional<Json> value;
  std::string error;
};
ParsedJson parse_event_json(std::string_view text);

std::string new_uuid4();
// Canonical lowercase hyphenated form of a UUID given with or without hyphens, any case.
std::optional<std::string> canonical_uuid(std::string_view text);

}  // namespace evbus
