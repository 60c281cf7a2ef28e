// evbus consume: read the bus topic in the consumer group, validate, print.
#include <fmt/format.h>

#include <iostream>

#include "commands.hpp"
#include "core/consumer.hpp"
#include "core/error.hpp"
#include "core/output.hpp"

namespace evbus::app {

namespace {

struct ConsumeFlags {
  std::vector<std::string> types;
  std::string from = "stored";
  uint64_t max = 0;
  bool exit_at_end = false;
  std::string output = "jsonl";
  std::string group;
  double timeout = 10.0;
};

int run_consume(const ConsumeFlags& f, const GlobalOptions& global) {
  BusConfig config = load_bus_config(global);
  if (!f.group.empty()) {
    config.consumer_group = f.group;
    config.sources["consumer_group"] = ValueSource::flag;
  }
  const SchemaSet schemas = load_bus_schemas(config);

  ConsumeRequest request;
  request.from = *parse_start_from(f.from);
  request.exit_at_end = f.exit_at_end;
  if (f.max > 0) request.max = f.max;
  request.types = f.types;
  request.connect_timeout = seconds_to_ms(f.timeout);

  const bool pretty = f.output == "pretty";
  auto sink = [&](const ConsumedEvent& event) {
    if (!event.problems.empty())
      std::cerr << fmt::format("evbus: invalid event at {}[{}]@{}: {}\n", event.record.topic,
                               event.record.partition, event.record.offset,
                               describe_errors(event.problems));
    if (pretty)
      write_consumed_pretty(std::cout, event);
    else
      write_consumed_jsonl(std::cout, event);
    std::cout.flush();
    // A closed pipe is a normal end; this record was not delivered, so it is not committed.
    return std::cout.good() ? Verdict::handled : Verdict::stop;
  };

  const ConsumeSummary s =
      consume_events(config, schemas, request, sink, stop_requested(), stderr_diagnostics(global));
  if (s.topic_missing)
    std::cerr << fmt::format("evbus: topic {} does not exist yet\n", config.topic_name());
  if (s.invalid > 0)
    std::cerr << fmt::format("evbus: consume: {} record(s) failed validation (see above)\n",
                             s.invalid);
  return 0;
}

}  // namespace

void register_consume(CLI::App& app, const GlobalOptions& global, Runner& runner) {
  auto flags = std::make_shared<ConsumeFlags>();
  auto* cmd = app.add_subcommand("consume", "Consume events from {prefix}.stream in the group");
  cmd->add_option("-t,--type", flags->types, "Only this event type (repeatable); default: all");
  cmd->add_option("--from", flags->from, "Start: beginning, end, or stored (committed offsets)")
      ->check(CLI::IsMember({"beginning", "end", "stored"}))
      ->capture_default_str();
  cmd->add_option("-n,--max", flags->max, "Stop after N events");
  cmd->add_flag("-e,--exit-at-end", flags->exit_at_end,
                "Stop at the high watermarks snapshotted when partitions are assigned");
  cmd->add_option("-o,--output", flags->output, "jsonl or pretty")
      ->check(CLI::IsMember({"jsonl", "pretty"}))
      ->capture_default_str();
  cmd->add_option("-g,--group", flags->group, "Override consumer_group from the config");
  cmd->add_option("--timeout", flags->timeout, "Seconds to wait for the cluster to answer")
      ->capture_default_str();
  add_examples(*cmd,
               "  evbus consume -c bus.yaml --from beginning --exit-at-end\n"
               "  evbus consume -c bus.yaml --type OrderPlaced --max 10 --output pretty\n");
  cmd->callback([flags, &global, &runner] { runner = [flags, &global] { return run_consume(*flags, global); }; });
}

}  // namespace evbus::app
