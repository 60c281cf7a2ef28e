// evbus schema list | check: the event catalogue, and checking schema files and event files.
#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <iostream>

#include "commands.hpp"
#include "core/envelope.hpp"
#include "core/error.hpp"
#include "core/output.hpp"

namespace evbus::app {

namespace {

struct SchemaFlags {
  std::vector<std::string> files;
  std::string events;
  std::string output = "text";
};

Json describe(const EventSchema& s) {
  Json fields = Json::array();
  for (const auto& p : s.payload.properties) fields.push_back(p.name);
  return Json{{"event_type", s.event_type},
              {"aggregate_type", s.aggregate_type},
              {"event_version", s.event_version ? Json(*s.event_version) : Json(nullptr)},
              {"fields", fields},
              {"file", s.file}};
}

void print_catalogue(const SchemaSet& schemas, const std::string& output) {
  if (output == "json") {
    Json all = Json::array();
    for (const auto& s : schemas.all()) all.push_back(describe(s));
    std::cout << all.dump(2) << '\n';
    return;
  }
  std::cout << fmt::format("{:<28} {:<16} {:<8} {}\n", "EVENT TYPE", "AGGREGATE", "VERSION",
                           "FIELDS");
  for (const auto& s : schemas.all()) {
    std::string fields;
    for (const auto& p : s.payload.properties) fields += (fields.empty() ? "" : ", ") + p.name;
    std::cout << fmt::format("{:<28} {:<16} {:<8} {}\n", s.event_type, s.aggregate_type,
                             s.event_version ? std::to_string(*s.event_version) : "-", fields);
  }
}

int run_list(const SchemaFlags& f, const GlobalOptions& global) {
  print_catalogue(load_bus_schemas(load_bus_config(global)), f.output);
  return 0;
}

// Validates each line of an events file without publishing; every error is reported.
uint64_t check_events(const SchemaSet& schemas, const std::string& path) {
  std::ifstream in(path);
  if (!in || std::filesystem::is_directory(path))
    throw Error(ErrorKind::invalid_input, fmt::format("cannot open {}", path));
  uint64_t bad = 0, n = 0;
  std::string line;
  const auto defaults = EnvelopeDefaults::system();
  while (std::getline(in, line)) {
    ++n;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    std::vector<ValidationError> errors;
    auto parsed = parse_event_json(line);
    if (!parsed.value)
      errors.push_back({"", "not valid JSON: " + parsed.error});
    else if (!parsed.value->is_object())
      errors.push_back({"", "an event must be a JSON object"});
    else
      errors = build_event(*parsed.value, std::nullopt, schemas, defaults).errors;
    for (const auto& e : errors)
      std::cerr << fmt::format("{}:{}: {}{}\n", path, n, e.pointer.empty() ? "" : e.pointer + ": ",
                               e.message);
    if (!errors.empty()) ++bad;
  }
  return bad;
}

int run_check(const SchemaFlags& f, const GlobalOptions& global) {
  SchemaSet schemas;
  if (f.files.empty()) {
    schemas = load_bus_schemas(load_bus_config(global));
  } else {
    schemas = load_schemas(f.files);
  }
  std::cerr << fmt::format("evbus: schema check: {} event type(s) OK\n", schemas.all().size());
  if (!f.events.empty()) {
    const uint64_t bad = check_events(schemas, f.events);
    if (bad > 0)
      throw Error(ErrorKind::invalid_input, fmt::format("{}: {} invalid event(s)", f.events, bad));
    std::cerr << fmt::format("evbus: {}: every event is valid\n", f.events);
  }
  return 0;
}

}  // namespace

void register_schema(CLI::App& app, const GlobalOptions& global, Runner& runner) {
  auto flags = std::make_shared<SchemaFlags>();
  auto* cmd = app.add_subcommand("schema", "The event schemas");
  add_examples(
      *cmd,
      "  evbus schema list -c examples/bus.yaml\n"
      "  evbus schema check examples/schemas/orders.yaml --events examples/orders.jsonl\n");
  cmd->require_subcommand(1);
  auto* list = cmd->add_subcommand("list", "List the event types of the configured schemas");
  list->add_option("-o,--output", flags->output, "text or json")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  add_examples(*list, "  evbus schema list -c examples/bus.yaml\n");
  list->callback([flags, &global, &runner] {
    runner = [flags, &global] { return run_list(*flags, global); };
  });

  auto* check = cmd->add_subcommand(
      "check", "Check schema files (default: the configured ones), and optionally an events file");
  check->add_option("files", flags->files, "Schema files or folders");
  check->add_option("--events", flags->events, "JSON-lines file of events to validate, not send");
  add_examples(*check,
               "  evbus schema check examples/schemas/orders.yaml\n"
               "  evbus schema check -c bus.yaml --events examples/orders.jsonl\n");
  check->callback([flags, &global, &runner] {
    runner = [flags, &global] { return run_check(*flags, global); };
  });
}

}  // namespace evbus::app
