#pragma once
// YAML event schemas: event types with their aggregate type and payload fields, described with
// JSON Schema keywords. Field order is declaration order, because it is the JSON order on the wire.
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace evbus {

using Json = nlohmann::ordered_json;

struct SchemaNode;
struct Property {
  std::string name;
  std::shared_ptr<const SchemaNode> schema;
};

struct SchemaNode {
  std::vector<std::string> types;  // empty = any; e.g. {"string","null"}
  std::vector<Property> properties;  // ordered; for type object
  std::vector<std::string> required;
  bool additional_properties = false;  // nested objects: extra keys rejected unless true
  std::optional<Json> enum_values;     // array
  std::optional<Json> const_value;
  std::optional<Json> default_value;
  std::optional<double> minimum, maximum, exclusive_minimum, exclusive_maximum;
  std::optional<std::size_t> min_length, max_length, min_items, max_items;
  std::optional<std::string> pattern;
  std::shared_ptr<const std::regex> pattern_regex;
  std::optional<std::string> format;  // uuid | date-time | decimal (others accepted, not checked)
  std::shared_ptr<const SchemaNode> items;
  int line = 0;  // where it was declared, for error messages
};

struct EventSchema {
  std::string event_type;      // wire name (header and body `event_type`)
  std::string aggregate_type;  // default for the body's aggregate_type
  std::optional<int> event_version;
  SchemaNode payload;  // type object; its properties are the event's own fields
  std::string file;
  int line = 0;
};

struct ValidationError {
  std::string pointer;  // JSON pointer into the event body, e.g. "/items/0/qty"
  std::string message;
};

class SchemaSet {
 public:
  void add(EventSchema schema);  // throws Error{invalid_input} on a duplicate event_type
  const EventSchema* find(std::string_view event_type) const;
  const std::vector<EventSchema>& all() const { return schemas_; }
  bool empty() const { return schemas_.empty(); }

 private:
  std::vector<EventSchema> schemas_;
};

// Loads files, or every *.yaml / *.yml in a folder (sorted by name). Throws Error{invalid_input}
// naming file:line and the offending key for any malformed schema.
SchemaSet load_schemas(const std::vector<std::string>& paths);
void load_schema_file(const std::string& path, SchemaSet& into);

// Every violation of the payload (the event's own fields, not the envelope), each with a pointer
// relative to the event body. Unknown fields are errors (eventsource-py forbids extra fields).
std::vector<ValidationError> validate_payload(const EventSchema& schema, const Json& payload);

// The payload as eventsource-py would serialise it: declared order, defaults filled in, numbers
// of type "number" rendered as floats (100 -> 100.0), uuid lowercased and hyphenated, date-time
// in pydantic's rendering, decimal as a string. Call only after validate_payload found nothing.
Json normalize_payload(const EventSchema& schema, const Json& payload);

}  // namespace evbus
