// YAML event schemas: loading (and every schema-file error with its file:line), payload
// validation with JSON pointers, and normalization byte-exact with pydantic v2 model_dump_json.
// Expected normalized values were produced with pydantic 2.13 (model_validate_json + dump).
#include <doctest/doctest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "core/error.hpp"
#include "core/schema.hpp"

namespace {

namespace fs = std::filesystem;
using evbus::EventSchema;
using evbus::Json;
using evbus::SchemaSet;

struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "evbus-test-schema-XXXXXX").string();
    path = ::mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  std::string write(const std::string& name, const std::string& text) const {
    fs::path file = path / name;
    fs::create_directories(file.parent_path());
    std::ofstream(file) << text;
    return file.string();
  }
};

SchemaSet load_text(const std::string& yaml) {
  TempDir dir;
  return evbus::load_schemas({dir.write("schema.yaml", yaml)});
}

// Loads yaml that must be rejected; returns the message with the temp file's path replaced by
// "F" so the expected text is exact.
std::string load_error(const std::string& yaml) {
  TempDir dir;
  const std::string file = dir.write("schema.yaml", yaml);
  try {
    evbus::load_schemas({file});
  } catch (const evbus::Error& e) {
    CHECK(e.kind() == evbus::ErrorKind::invalid_input);
    std::string message = e.what();
    if (message.rfind(file, 0) == 0) message = "F" + message.substr(file.size());
    return message;
  }
  return "(no error)";
}

using Errors = std::vector<std::pair<std::string, std::string>>;

Errors validate(const EventSchema& schema, const std::string& payload) {
  Errors out;
  for (const auto& e : evbus::validate_payload(schema, Json::parse(payload))) {
    out.emplace_back(e.pointer, e.message);
  }
  return out;
}

std::string normalize(const EventSchema& schema, const std::string& payload) {
  const Json input = Json::parse(payload);
  REQUIRE(evbus::validate_payload(schema, input).empty());
  return evbus::normalize_payload(schema, input).dump();
}

// One event "E" whose fields are the given YAML lines (indented under `fields:`).
SchemaSet one_event(const std::string& fields, const std::string& extra = "") {
  return load_text("events:\n  E:\n    aggregate_type: Thing\n    fields:\n" + fields + extra);
}

const EventSchema& event_of(const SchemaSet& set, const char* type = "E") {
  const EventSchema* schema = set.find(type);
  REQUIRE(schema != nullptr);
  return *schema;
}

const char* kOrders = R"(events:
  OrderPlaced:
    aggregate_type: Order
    event_version: 2
    description: A customer placed an order
    fields:
      customer_id: {type: string, minLength: 1}
      total: {type: number, minimum: 0}
    required: [customer_id, total]
)";

}  // namespace

TEST_CASE("an event schema keeps its aggregate type, version, place and declared field order") {
  auto set = load_text(kOrders);
  const auto& ev = event_of(set, "OrderPlaced");
  CHECK(ev.aggregate_type == "Order");
  CHECK(ev.event_version == 2);
  CHECK(ev.line == 2);
  CHECK(fs::path(ev.file).filename() == "schema.yaml");
  REQUIRE(ev.payload.properties.size() == 2);
  CHECK(ev.payload.properties[0].name == "customer_id");
  CHECK(ev.payload.properties[1].name == "total");
  CHECK(ev.payload.required == std::vector<std::string>{"customer_id", "total"});
  CHECK(set.find("OrderShipped") == nullptr);
}

TEST_CASE("normalize writes declared order and renders number 100 as 100.0") {
  auto set = load_text(kOrders);
  const auto& ev = event_of(set, "OrderPlaced");
  CHECK(normalize(ev, R"({"total":100,"customer_id":"cust-123"})") ==
        R"({"customer_id":"cust-123","total":100.0})");
  CHECK(normalize(ev, R"({"customer_id":"c","total":99.99})") ==
        R"({"customer_id":"c","total":99.99})");
}

TEST_CASE("without `required`, every field without a default is required (pydantic)") {
  auto set = one_event(
      "      a: {type: string}\n"
      "      b: {type: integer, default: 7}\n"
      "      c: {type: [string, null]}\n");
  const auto& ev = event_of(set);
  CHECK(ev.payload.required == std::vector<std::string>{"a", "c"});
  CHECK(validate(ev, R"({})") ==
        Errors{{"/a", "required field missing"}, {"/c", "required field missing"}});
  CHECK(normalize(ev, R"({"c":null,"a":"x"})") == R"({"a":"x","b":7,"c":null})");
}

TEST_CASE("with `required`, a missing optional field is rendered as null") {
  auto set = one_event(
      "      a: {type: string}\n"
      "      note: {type: [string, \"null\"]}\n"
      "      n: {type: number, default: 0}\n",
      "    required: [a]\n");
  const auto& ev = event_of(set);
  CHECK(validate(ev, R"({"note":"x"})") == Errors{{"/a", "required field missing"}});
  // Defaults are normalized too: pydantic dumps `n: float = 0` as 0.0.
  CHECK(normalize(ev, R"({"a":"x"})") == R"({"a":"x","note":null,"n":0.0})");
}

TEST_CASE("unknown payload fields are rejected") {
  auto set = load_text(kOrders);
  CHECK(validate(event_of(set, "OrderPlaced"), R"({"customer_id":"c","total":1,"note":"x"})") ==
        Errors{{"/note", "unknown field (the Python consumer forbids extra fields)"}});
}

TEST_CASE("type keyword: each type accepts its own values and names both sides on a mismatch") {
  auto set = one_event(
      "      s: {type: string}\n"
      "      n: {type: number}\n"
      "      i: {type: integer}\n"
      "      b: {type: boolean}\n"
      "      o: {type: object}\n"
      "      a: {type: array}\n"
      "      z: {type: \"null\"}\n");
  const auto& ev = event_of(set);
  CHECK(validate(ev, R"({"s":"x","n":1.5,"i":3,"b":false,"o":{"k":1},"a":[1],"z":null})").empty());
  CHECK(validate(ev, R"({"s":1,"n":"1.5","i":"3","b":1,"o":[],"a":{},"z":0})") ==
        Errors{{"/s", "expected string, got integer"},
               {"/n", "expected number, got string"},
               {"/i", "expected integer, got string"},
               {"/b", "expected boolean, got integer"},
               {"/o", "expected object, got array"},
               {"/a", "expected array, got object"},
               {"/z", "expected null, got integer"}});
}

TEST_CASE("integer accepts an integral float and writes it as an int; rejects a fraction") {
  auto set = one_event("      i: {type: integer}\n");
  const auto& ev = event_of(set);
  CHECK(normalize(ev, R"({"i":1.0})") == R"({"i":1})");
  CHECK(normalize(ev, R"({"i":-42})") == R"({"i":-42})");
  CHECK(validate(ev, R"({"i":1.5})") ==
        Errors{{"/i", "expected integer, got a number with a fractional part (1.5)"}});
}

TEST_CASE("a list type with null, written quoted or plain") {
  auto set = one_event(
      "      q: {type: [string, \"null\"]}\n"
      "      p: {type: [integer, null]}\n");
  const auto& ev = event_of(set);
  CHECK(event_of(set).payload.properties[1].schema->types ==
        std::vector<std::string>{"integer", "null"});
  CHECK(validate(ev, R"({"q":null,"p":null})").empty());
  CHECK(validate(ev, R"({"q":"x","p":2})").empty());
  CHECK(validate(ev, R"({"q":1,"p":"2"})") ==
        Errors{{"/q", "expected string or null, got integer"},
               {"/p", "expected integer or null, got string"}});
}

TEST_CASE("enum and const") {
  auto set = one_event(
      "      e: {type: string, enum: [a, b]}\n"
      "      k: {const: 3}\n");
  const auto& ev = event_of(set);
  CHECK(validate(ev, R"({"e":"b","k":3})").empty());
  CHECK(validate(ev, R"({"e":"c","k":3.0})") ==
        Errors{{"/e", R"(must be one of ["a","b"], got "c")"}});
  CHECK(validate(ev, R"({"e":"a","k":"3"})") == Errors{{"/k", R"(must equal 3, got "3")"}});
}

TEST_CASE("quoted YAML scalars stay strings, plain ones are typed") {
  auto set = one_event("      v: {enum: [1, \"1\", true, 'null', 2.5]}\n");
  const auto& ev = event_of(set);
  CHECK(ev.payload.properties[0].schema->enum_values->dump() == R"([1,"1",true,"null",2.5])");
}

TEST_CASE("minimum, maximum, exclusiveMinimum, exclusiveMaximum") {
  auto set = one_event(
      "      lo: {type: number, minimum: 0}\n"
      "      hi: {type: integer, maximum: 10}\n"
      "      xlo: {type: number, exclusiveMinimum: 0}\n"
      "      xhi: {type: number, exclusiveMaximum: 2.5}\n");
  const auto& ev = event_of(set);
  CHECK(validate(ev, R"({"lo":0,"hi":10,"xlo":0.001,"xhi":2.4})").empty());
  CHECK(validate(ev, R"({"lo":-1,"hi":11,"xlo":0,"xhi":2.5})") ==
        Errors{{"/lo", "must be >= 0, got -1"},
               {"/hi", "must be <= 10, got 11"},
               {"/xlo", "must be > 0, got 0"},
               {"/xhi", "must be < 2.5, got 2.5"}});
}

TEST_CASE("minLength and maxLength count code points, not bytes") {
  auto set = one_event("      s: {type: string, minLength: 2, maxLength: 5}\n");
  const auto& ev = event_of(set);
  CHECK(validate(ev, R"({"s":"héllo"})").empty());  // 6 bytes, 5 code points
  CHECK(validate(ev, R"({"s":"héllo!"})") ==
        Errors{{"/s", "must be at most 5 characters long, got 6"}});
  CHECK(validate(ev, R"({"s":"é"})") ==
        Errors{{"/s", "must be at least 2 characters long, got 1"}});
}

TEST_CASE("pattern has search semantics and names the pattern") {
  auto set = one_event(
      "      anywhere: {type: string, pattern: 'C-'}\n"
      "      anchored: {type: string, pattern: '^C'}\n");
  const auto& ev = event_of(set);
  CHECK(validate(ev, R"({"anywhere":"ABC-1","anchored":"CUST"})").empty());
  CHECK(validate(ev, R"({"anywhere":"ABC","anchored":"XC"})") ==
        Errors{{"/anywhere", "does not match pattern 'C-'"},
               {"/anchored", "does not match pattern '^C'"}});
}

TEST_CASE("format uuid accepts any case and no hyphens, and writes canonical lowercase") {
  auto set = one_event("      id: {type: string, format: uuid}\n");
  const auto& ev = event_of(set);
  CHECK(normalize(ev, R"({"id":"0B6F1C3E8A4D4E0F9C1A2F5E7D9B1A11"})") ==
        R"({"id":"0b6f1c3e-8a4d-4e0f-9c1a-2f5e7d9b1a11"})");
  CHECK(normalize(ev, R"({"id":"0B6F1C3E-8A4D-4E0F-9C1A-2F5E7D9B1A11"})") ==
        R"({"id":"0b6f1c3e-8a4d-4e0f-9c1a-2f5e7d9b1a11"})");
  CHECK(validate(ev, R"({"id":"nope"})") == Errors{{"/id", R"(not a valid uuid: "nope")"}});
}

TEST_CASE("format date-time is parsed and written in pydantic's body rendering") {
  auto set = one_event("      at: {type: string, format: date-time}\n");
  const auto& ev = event_of(set);
  CHECK(normalize(ev, R"({"at":"2025-01-15T10:30:00.123456+00:00"})") ==
        R"({"at":"2025-01-15T10:30:00.123456Z"})");
  CHECK(normalize(ev, R"({"at":"2025-01-15T10:30:00+05:30"})") ==
        R"({"at":"2025-01-15T10:30:00+05:30"})");
  CHECK(validate(ev, R"({"at":"yesterday"})") ==
        Errors{{"/at", R"(not a valid date-time: "yesterday")"}});
}

// A float reaches Decimal through DomainEvent's before-validator as Decimal(repr(float)).
TEST_CASE("format decimal takes a number or a string and writes Python's str(Decimal)") {
  auto set = one_event(
      "      d: {format: decimal}\n"
      "      s: {type: string, format: decimal}\n");
  const auto& ev = event_of(set);
  CHECK(normalize(ev, R"({"d":99.9,"s":"-12.50"})") == R"({"d":"99.9","s":"-12.50"})");
  CHECK(normalize(ev, R"({"d":100,"s":99.90})") == R"({"d":"100","s":"99.9"})");
  CHECK(normalize(ev, R"({"d":1e16,"s":1e-7})") == R"({"d":"1E+16","s":"1E-7"})");
  CHECK(normalize(ev, R"({"d":1e5,"s":1.0})") == R"({"d":"100000.0","s":"1.0"})");
  CHECK(normalize(ev, R"({"d":-0.0,"s":0.5})") == R"({"d":"-0.0","s":"0.5"})");
  CHECK(normalize(ev, R"({"d":"+1.5","s":"1e5"})") == R"({"d":"1.5","s":"1E+5"})");
  CHECK(normalize(ev, R"({"d":"0.00","s":"001.2340"})") == R"({"d":"0.00","s":"1.2340"})");
  CHECK(validate(ev, R"({"d":"12,5","s":true})") ==
        Errors{{"/d", R"(not a valid decimal: "12,5")"}, {"/s", "expected string, got boolean"}});
  CHECK(validate(ev, R"({"d":"NaN","s":"1.5"})") ==
        Errors{{"/d", R"(not a valid decimal: "NaN")"}});
}

TEST_CASE("nested objects and arrays report exact pointers and normalize recursively") {
  auto set = one_event(
      "      items:\n"
      "        type: array\n"
      "        minItems: 1\n"
      "        items:\n"
      "          type: object\n"
      "          properties:\n"
      "            sku: {type: string}\n"
      "            qty: {type: integer, minimum: 1}\n"
      "            price: {type: number}\n"
      "      shipping:\n"
      "        type: object\n"
      "        properties:\n"
      "          city: {type: string}\n"
      "        additionalProperties: true\n"
      "      tags: {type: array, maxItems: 2, items: {type: string}}\n");
  const auto& ev = event_of(set);
  CHECK(validate(ev, R"({"items":[{"sku":"a","qty":0,"price":1},{"sku":"b","qty":2,"price":1,
                         "extra":1}],"shipping":{"city":"x"},"tags":["a",1,"c"]})") ==
        Errors{{"/items/0/qty", "must be >= 1, got 0"},
               {"/items/1/extra", "unknown field (the Python consumer forbids extra fields)"},
               {"/tags", "must have at most 2 items, got 3"},
               {"/tags/1", "expected string, got integer"}});
  CHECK(validate(ev, R"({"items":[{"qty":1,"price":2}],"shipping":{},"tags":[]})") ==
        Errors{{"/items/0/sku", "required field missing"},
               {"/shipping/city", "required field missing"}});
  CHECK(validate(ev, R"({"items":[],"shipping":{"city":"x"},"tags":[]})") ==
        Errors{{"/items", "must have at least 1 item, got 0"}});
  CHECK(normalize(ev, R"({"tags":["t"],"shipping":{"zip":"1","city":"x"},
                          "items":[{"price":5,"qty":2.0,"sku":"a"}]})") ==
        R"({"items":[{"sku":"a","qty":2,"price":5.0}],"shipping":{"city":"x","zip":"1"},)"
        R"("tags":["t"]})");
}

TEST_CASE("an object without properties is a free-form dict kept as given") {
  auto set = one_event("      attrs: {type: object}\n");
  const auto& ev = event_of(set);
  CHECK(normalize(ev, R"({"attrs":{"z":1,"a":{"b":2}}})") == R"({"attrs":{"z":1,"a":{"b":2}}})");
}

TEST_CASE("every error is reported at once") {
  auto set = load_text(kOrders);
  const auto errors = validate(event_of(set, "OrderPlaced"), R"({"total":-1,"x":1,"y":2})");
  CHECK(errors.size() == 4);
  CHECK(errors == Errors{{"/customer_id", "required field missing"},
                         {"/total", "must be >= 0, got -1"},
                         {"/x", "unknown field (the Python consumer forbids extra fields)"},
                         {"/y", "unknown field (the Python consumer forbids extra fields)"}});
}

TEST_CASE("pointers escape ~ and / (RFC 6901)") {
  auto set = one_event("      a: {type: string}\n");
  CHECK(validate(event_of(set), R"({"a":"x","a/b":1,"m~n":2})") ==
        Errors{{"/a~1b", "unknown field (the Python consumer forbids extra fields)"},
               {"/m~0n", "unknown field (the Python consumer forbids extra fields)"}});
}

TEST_CASE("a payload that is not an object is one error at the root") {
  auto set = load_text(kOrders);
  CHECK(validate(event_of(set, "OrderPlaced"), "[1]") ==
        Errors{{"", "expected object, got array"}});
}

TEST_CASE("schema file errors name file:line, the event type and the key") {
  const std::string head = "events:\n  E:\n    aggregate_type: Thing\n    fields:\n";
  CHECK(load_error(head + "      total: {type: number, minimun: 0}\n") ==
        "F:5: event 'E': field 'total': unknown keyword 'minimun'");
  CHECK(load_error(head + "      total: {type: float}\n") ==
        "F:5: event 'E': field 'total': unknown type 'float' (expected string, number, integer, "
        "boolean, object, array or null)");
  CHECK(load_error(head + "      code:\n        type: string\n        pattern: '([a-z'\n")
            .rfind("F:7: event 'E': field 'code': 'pattern' '([a-z' does not compile: ", 0) == 0);
  CHECK(load_error(head + "      event_id: {type: string}\n") ==
        "F:5: event 'E': field 'event_id' collides with the DomainEvent base field of the same "
        "name");
  CHECK(load_error(head + "      a: {type: string}\n    required: [a, b]\n") ==
        "F:6: event 'E': 'required' names 'b', which is not declared");
  CHECK(load_error(head + "      a: {type: string}\n    owner: me\n") ==
        "F:6: event 'E': unknown key 'owner' (expected aggregate_type, event_version, "
        "description, fields or required)");
  CHECK(load_error("events:\n  E:\n    fields:\n      a: {type: string}\n") ==
        "F:2: event 'E': missing required key 'aggregate_type'");
  CHECK(load_error("events:\n  E:\n    aggregate_type: 'Order:1'\n") ==
        "F:3: event 'E': 'aggregate_type' must match ^[A-Za-z0-9_.-]+$, got 'Order:1'");
  CHECK(load_error(head + "      items:\n        type: array\n        items: {type: object, "
                          "properties: {qty: {type: integer, minimum: one}}}\n") ==
        "F:7: event 'E': field 'items[].qty': 'minimum' must be a number");
  CHECK(load_error(head + "      a: {type: string}\n      a: {type: number}\n") ==
        "F:6: event 'E': duplicate key 'a'");
  CHECK(load_error(head + "      n: {type: integer, default: 1.5}\n") ==
        "F:5: event 'E': field 'n': 'default' 1.5 does not fit the field: expected integer, got "
        "a number with a fractional part (1.5)");
  CHECK(
      load_error(head + "      a: {type: string}\n      b: {type: string}\n    required: [a]\n") ==
      "F:6: event 'E': field 'b' is optional without a default, so it is sent as null, but its "
      "type does not allow null (add \"null\" to its type or give it a default)");
  CHECK(load_error(head + "      a: string\n") ==
        "F:5: event 'E': field 'a': expected a map of JSON Schema keywords, e.g. {type: string}");
  CHECK(load_error("event:\n  E: {}\n") ==
        "F:1: unknown top-level key 'event' (expected 'events')");
  CHECK(load_error("events:\n  E: [\n").rfind("F:3: YAML syntax: ", 0) == 0);
}

TEST_CASE("a missing schema path is an error naming it") {
  try {
    evbus::load_schemas({"/nonexistent/evbus/schemas.yaml"});
    FAIL("expected an error");
  } catch (const evbus::Error& e) {
    CHECK(e.kind() == evbus::ErrorKind::invalid_input);
    CHECK(std::string(e.what()) == "schema path '/nonexistent/evbus/schemas.yaml' does not exist");
  }
}

TEST_CASE("a folder loads its *.yaml and *.yml files in sorted order") {
  TempDir dir;
  dir.write("b.yml", "events:\n  Second: {aggregate_type: T}\n");
  dir.write("a.yaml", "events:\n  First: {aggregate_type: T}\n  Also: {aggregate_type: T}\n");
  dir.write("c.txt", "not: [yaml\n");
  dir.write("sub/d.yaml", "events:\n  Nested: {aggregate_type: T}\n");
  auto set = evbus::load_schemas({dir.path.string()});
  std::vector<std::string> types;
  for (const auto& ev : set.all()) types.push_back(ev.event_type);
  CHECK(types == std::vector<std::string>{"First", "Also", "Second"});
  CHECK(event_of(set, "Also").payload.properties.empty());
  CHECK(validate(event_of(set, "Also"), "{}").empty());
}

TEST_CASE("the same event type in two files is an error naming both places") {
  TempDir dir;
  const auto a = dir.write("a.yaml", "events:\n  Dup: {aggregate_type: T}\n");
  const auto b =
      dir.write("b.yaml", "\nevents:\n  Other: {aggregate_type: T}\n  Dup: {aggregate_type: T}\n");
  try {
    evbus::load_schemas({dir.path.string()});
    FAIL("expected an error");
  } catch (const evbus::Error& e) {
    CHECK(e.kind() == evbus::ErrorKind::invalid_input);
    CHECK(std::string(e.what()) ==
          b + ":4: event 'Dup': event type already defined at " + a + ":2");
  }
}

TEST_CASE("the example schemas load with the tutorial's event types") {
  const std::string root = EVBUS_SOURCE_DIR;
  auto set = evbus::load_schemas({root + "/examples/schemas"});
  std::vector<std::string> types;
  for (const auto& ev : set.all()) types.push_back(ev.event_type + "/" + ev.aggregate_type);
  CHECK(types == std::vector<std::string>{"OrderPlaced/Order", "OrderShipped/Order",
                                          "SensorReading/Sensor"});
  CHECK(normalize(event_of(set, "SensorReading"), R"({"humidity":45,"temperature":20})") ==
        R"({"temperature":20.0,"humidity":45.0})");

  // Every line of examples/orders.jsonl is valid once the envelope fields are set aside.
  std::ifstream lines(root + "/examples/orders.jsonl");
  std::string line;
  int count = 0;
  while (std::getline(lines, line)) {
    Json input = Json::parse(line);
    const EventSchema& ev = event_of(set, input.at("event_type").get<std::string>().c_str());
    for (const char* base : {"event_type", "aggregate_id", "aggregate_version"}) input.erase(base);
    CHECK(validate(ev, input.dump()).empty());
    ++count;
  }
  CHECK(count == 8);
}
