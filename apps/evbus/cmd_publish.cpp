// evbus publish: events from flags, a JSON-lines file or stdin, validated, then delivered.
#include <fmt/format.h>

#include <fstream>
#include <iostream>

#include "commands.hpp"
#include "core/error.hpp"
#include "core/output.hpp"
#include "core/publish.hpp"

namespace evbus::app {

namespace {

struct PublishFlags {
  std::string type;
  std::string aggregate_id;
  std::string data;
  std::string file;
  std::string output = "text";
  bool quiet = false;
  bool background = false;
  bool dry_run = false;
  double timeout = 10.0;
  double flush_timeout = 60.0;
};

// The single event given with --type/--aggregate-id/--data.
Json event_from_flags(const PublishFlags& f) {
  Json input = Json::object();
  if (!f.data.empty()) {
    try {
      input = Json::parse(f.data);
    } catch (const Json::parse_error& e) {
      throw Error(ErrorKind::invalid_input, fmt::format("--data is not valid JSON: {}", e.what()));
    }
    if (!input.is_object()) throw Error(ErrorKind::invalid_input, "--data must be a JSON object");
  }
  if (!f.aggregate_id.empty()) input["aggregate_id"] = f.aggregate_id;
  return input;
}

int run_publish(const PublishFlags& f, const GlobalOptions& global) {
  const bool from_flags = !f.aggregate_id.empty() || !f.data.empty();
  if (from_flags && !f.file.empty())
    throw Error(ErrorKind::usage, "give either --aggregate-id/--data or --file, not both");
  if (from_flags && f.type.empty())
    throw Error(ErrorKind::usage, "--type is required with --aggregate-id/--data");

  const BusConfig config = load_bus_config(global);
  const SchemaSet schemas = load_bus_schemas(config);
  if (schemas.empty())
    throw Error(ErrorKind::invalid_input,
                "no event schemas: add `schemas:` to the bus config (see examples/bus.yaml)");
  for (const auto& w : config_warnings(config)) std::cerr << "evbus: warning: " << w << '\n';

  PublishOptions options;
  if (!f.type.empty()) options.type = f.type;
  options.dry_run = f.dry_run;
  options.connect_timeout = seconds_to_ms(f.timeout);
  options.flush_timeout = seconds_to_ms(f.flush_timeout);

  const bool json = f.output == "json";
  const bool per_event = !f.quiet && !f.background;
  int partition_count = -1;
  auto sink = [&](const PublishOutcome& o) {
    using Kind = PublishOutcome::Kind;
    // Problems always reach stderr, even with --quiet/--background: nothing fails silently.
    if ((o.kind == Kind::invalid || o.kind == Kind::failed) && !per_event)
      std::cerr << "evbus: " << (o.kind == Kind::invalid ? "invalid " : "failed ") << o.source
                << ": " << describe_errors(o.errors) << '\n';
    if (!per_event && o.kind != Kind::planned) return;
    if (json)
      std::cout << outcome_to_json(o).dump() << '\n';
    else if (o.kind == Kind::planned)
      write_planned_text(std::cout, o, partition_count);
    else
      write_outcome_text(o.kind == Kind::delivered ? std::cout : std::cerr, o);
  };

  EventPublisher publisher(config, schemas, options, sink, EnvelopeDefaults::system(),
                           stderr_diagnostics(global));
  if (f.dry_run) partition_count = publisher.partition_count();

  bool interrupted = false;
  if (from_flags) {
    publisher.publish_json(event_from_flags(f), "flags");
  } else {
    std::ifstream file;
    std::istream* in = &std::cin;
    const std::string name = f.file.empty() || f.file == "-" ? "stdin" : f.file;
    if (name != "stdin") {
      file.open(f.file);
      if (!file) throw Error(ErrorKind::invalid_input, fmt::format("cannot open {}", f.file));
      in = &file;
    }
    std::string line;
    for (uint64_t n = 1; std::getline(*in, line); ++n) {
      if (stop_requested().load()) {
        interrupted = true;
        break;
      }
      publisher.publish_line(line, fmt::format("{}:{}", name, n));
    }
  }
  const PublishSummary s = publisher.finish();

  std::cerr << fmt::format("evbus: publish: {} read, {} {}, {} invalid, {} failed\n", s.read,
                           f.dry_run ? s.planned : s.delivered,
                           f.dry_run ? "planned (dry run, nothing sent)" : "delivered", s.invalid,
                           s.failed);
  if (s.failed > 0)
    throw Error(ErrorKind::undelivered, fmt::format("{} event(s) not delivered", s.failed));
  if (s.invalid > 0)
    throw Error(ErrorKind::invalid_input, fmt::format("{} event(s) rejected", s.invalid));
  if (interrupted) throw Error(ErrorKind::interrupted, "interrupted; input not fully read");
  return 0;
}

}  // namespace

void register_publish(CLI::App& app, const GlobalOptions& global, Runner& runner) {
  auto flags = std::make_shared<PublishFlags>();
  auto* cmd = app.add_subcommand("publish", "Validate events against the schemas and publish them");
  cmd->add_option("-t,--type", flags->type,
                  "Event type, for --data or for input lines without event_type");
  cmd->add_option("-a,--aggregate-id", flags->aggregate_id, "Aggregate id (UUID) for --data");
  cmd->add_option("-d,--data", flags->data, "The event's fields as a JSON object");
  cmd->add_option("-f,--file", flags->file, "JSON-lines file of events; - for stdin (default)");
  cmd->add_option("-o,--output", flags->output, "Result lines: text or json")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  cmd->add_flag("-q,--quiet", flags->quiet, "Only the summary (problems still go to stderr)");
  cmd->add_flag("--background", flags->background,
                "No per-event lines; still waits for every delivery and counts failures");
  cmd->add_flag("--dry-run", flags->dry_run,
                "Print topic, partition, key, headers and value of each record; send nothing");
  cmd->add_option("--timeout", flags->timeout, "Seconds to wait for the cluster to answer")
      ->capture_default_str();
  cmd->add_option("--flush-timeout", flags->flush_timeout,
                  "Seconds to wait for outstanding deliveries at the end")
      ->capture_default_str();
  add_examples(*cmd,
               "  evbus publish -c bus.yaml --type OrderPlaced --aggregate-id "
               "7d3c2b1a-5e4f-4a6b-8c9d-0e1f2a3b4c5d --data '{\"customer_id\":\"C-1\",\"total\":9.5}'\n"
               "  evbus publish -c bus.yaml --file examples/orders.jsonl --output json\n"
               "  generate-events | evbus publish -c bus.yaml --quiet\n");
  cmd->callback([flags, &global, &runner] { runner = [flags, &global] { return run_publish(*flags, global); }; });
}

}  // namespace evbus::app
