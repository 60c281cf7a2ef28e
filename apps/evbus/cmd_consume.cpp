// evbus consume: read the bus topic in the consumer group and print it, or run a handler command
// per event (--exec) with eventsource-py's retries and dead-letter queue.
#include <fmt/format.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>

#include "commands.hpp"
#include "core/consumer.hpp"
#include "core/error.hpp"
#include "core/handler.hpp"
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
  std::string exec;
  bool exec_given = false;  // --exec "" (an unset variable) must not mean "no handler"
  double handler_timeout = 30.0;
  bool skip_failed = false;
  std::string stats_json;
  MetricsFlags metrics;
};

// output_errno is set when stdout fails for a reason other than a closed pipe (disk full, I/O).
Verdict print_event(const ConsumedEvent& event, bool pretty, int& output_errno) {
  if (!event.problems.empty())
    std::cerr << fmt::format("evbus: invalid event at {}[{}]@{}: {}\n", event.record.topic,
                             event.record.partition, event.record.offset,
                             describe_errors(event.problems));
  if (pretty)
    write_consumed_pretty(std::cout, event);
  else
    write_consumed_jsonl(std::cout, event);
  errno = 0;
  std::cout.flush();
  if (std::cout.good()) return Verdict::handled;
  // A closed pipe is a normal end; anything else is an error. Either way this record was not
  // written, so it is not committed.
  if (errno != EPIPE) output_errno = errno != 0 ? errno : EIO;
  return Verdict::stop;
}

// True when nobody reads our stdout any more (`| head` exited): handlers writing to it then die
// of SIGPIPE through no fault of the event, so the run must stop rather than dead-letter them.
bool stdout_reader_gone() {
  pollfd out{STDOUT_FILENO, POLLOUT, 0};
  return ::poll(&out, 1, 0) == 1 && (out.revents & POLLERR) != 0;
}

ConsumeSummary run_handlers(const ConsumeFlags& f, const GlobalOptions& global,
                            const BusConfig& config, const SchemaSet& schemas,
                            const ConsumeRequest& request) {
  const bool verbose = global.verbosity > 0;
  Notices notices = [verbose](NoticeLevel level, const std::string& text) {
    if (level == NoticeLevel::warning)
      std::cerr << "evbus: warning: " << text << '\n';
    else if (verbose)
      std::cerr << "evbus: " << text << '\n';
  };
  auto on_result = [verbose](const ConsumedEvent& event, const CommandResult& result) {
    if (!verbose) return;
    const InRecord& r = event.record;
    std::cerr << fmt::format(
        "evbus: {}[{}]@{} {} retry_count={}: {} in {} ms\n", r.topic, r.partition, r.offset,
        event.event_type.value_or("?"), event.retry_count,
        result.succeeded() ? "handled" : result.error_type(), result.elapsed.count());
    // A failure's stderr goes into the DLQ record; a success's would otherwise be lost.
    if (result.succeeded() && !result.stderr_tail.empty())
      std::cerr << "evbus: handler stderr: " << printable(result.stderr_tail)
                << (result.stderr_tail.back() == '\n' ? "" : "\n");
  };
  const EventHandler command =
      make_command_handler({f.exec, seconds_to_ms(f.handler_timeout)}, on_result);
  const EventHandler handler = [&command](const ConsumedEvent& event) {
    Disposition d = command(event);
    if (d.kind == Disposition::Kind::failed && stdout_reader_gone()) return Disposition::stop();
    return d;
  };
  return handle_events(config, schemas, request, handler, stop_requested(),
                       stderr_diagnostics(global), notices);
}

int run_consume(const ConsumeFlags& f, const GlobalOptions& global) {
  const BusConfig config = with_client_statistics(load_bus_config(global, f.group), f.metrics);
  const SchemaSet schemas = load_bus_schemas(config);
  // A misspelt --type would silently filter (and commit) everything away.
  if (!schemas.empty())
    for (const auto& type : f.types)
      if (schemas.find(type) == nullptr)
        throw Error(ErrorKind::usage,
                    fmt::format("--type {}: no such event type in the configured schemas", type));
  if (f.exec.empty() && f.skip_failed) throw Error(ErrorKind::usage, "--skip-failed needs --exec");
  if (f.exec_given && f.exec.find_first_not_of(" \t") == std::string::npos)
    throw Error(ErrorKind::usage, "--exec needs a command (it is empty)");

  ConsumeRequest request;
  request.from = *parse_start_from(f.from);
  request.exit_at_end = f.exit_at_end;
  if (f.max > 0) request.max = f.max;
  request.types = f.types;
  request.connect_timeout = seconds_to_ms(f.timeout);
  request.skip_failed = f.skip_failed;
  request.handler_name = f.exec.empty() ? "output" : f.exec;
  MetricsEndpoint endpoint(f.metrics);
  request.metrics = endpoint.metrics();
  const auto started = std::chrono::steady_clock::now();
  RunStats final_stats;
  request.on_finish = [&](const RunStats& stats) {
    final_stats = stats;
    write_stats_json(f.stats_json, stats);
  };

  const bool pretty = f.output == "pretty";
  int output_errno = 0;
  const ConsumeSummary s = f.exec.empty() ? consume_events(
                                                config, schemas, request,
                                                [pretty, &output_errno](const ConsumedEvent& e) {
                                                  return print_event(e, pretty, output_errno);
                                                },
                                                stop_requested(), stderr_diagnostics(global))
                                          : run_handlers(f, global, config, schemas, request);
  if (output_errno != 0)
    throw Error(ErrorKind::runtime, fmt::format("cannot write to stdout: {}; nothing after the "
                                                "last written record was committed",
                                                std::strerror(output_errno)));
  if (s.topic_missing)
    std::cerr << fmt::format("evbus: topic {} does not exist yet\n", config.topic_name());
  if (f.exec.empty() && s.invalid > 0)
    std::cerr << fmt::format("evbus: consume: {} record(s) failed validation (see above)\n",
                             s.invalid);
  std::string extra;
  if (!f.exec.empty())
    extra = fmt::format(", retried {}, waited for retry_after {}{}", s.retried, s.retry_waits,
                        f.skip_failed ? fmt::format(", skipped {}", s.skipped) : "");
  std::cerr << "evbus: consume: "
            << run_stats_summary(final_stats, std::chrono::steady_clock::now() - started) << extra
            << '\n';
  return 0;
}

}  // namespace

void register_consume(CLI::App& app, const GlobalOptions& global, Runner& runner) {
  auto flags = std::make_shared<ConsumeFlags>();
  auto* cmd = app.add_subcommand("consume", "Consume events from {prefix}.stream in the group");
  cmd->add_option("-t,--type", flags->types,
                  "Only this event type (repeatable); default: all. With --exec, other types "
                  "count as handled");
  cmd->add_option("--from", flags->from, "Start: beginning, end, or stored (committed offsets)")
      ->check(CLI::IsMember({"beginning", "end", "stored"}))
      ->capture_default_str();
  cmd->add_option("-n,--max", flags->max, "Stop after N events")->check(CLI::Range(1, 1000000000));
  cmd->add_flag("-e,--exit-at-end", flags->exit_at_end,
                "Stop at the high watermarks snapshotted when partitions are assigned (with "
                "--exec, after the retry copies this run wrote too)");
  cmd->add_option("-o,--output", flags->output, "jsonl or pretty (without --exec)")
      ->check(CLI::IsMember({"jsonl", "pretty"}))
      ->capture_default_str();
  cmd->add_option("-g,--group", flags->group, "Override consumer_group from the config");
  cmd->add_option("--timeout", flags->timeout, "Seconds to wait for the cluster to answer")
      ->check(CLI::Range(0.1, 3600.0))
      ->capture_default_str();
  cmd->add_option("--exec", flags->exec,
                  "Run CMD (via /bin/sh -c) per event: body on stdin, EVBUS_* in the "
                  "environment, exit 0 = handled; failures are retried, then dead-lettered")
      ->each([f = flags.get()](const std::string&) { f->exec_given = true; });
  cmd->add_option("--handler-timeout", flags->handler_timeout,
                  "Seconds before a handler run is killed and counts as failed (HandlerTimeout)")
      ->check(CLI::Range(0.001, 86400.0))
      ->capture_default_str();
  cmd->add_flag("--skip-failed", flags->skip_failed,
                "With enable_dlq: false, commit and count a record that exhausted its retries "
                "instead of stopping (exit 5)");
  add_stats_json_flag(*cmd, flags->stats_json);
  add_metrics_flags(*cmd, flags->metrics);
  add_examples(*cmd,
               "  evbus consume -c bus.yaml --from beginning --exit-at-end\n"
               "  evbus consume -c bus.yaml --type OrderPlaced --max 10 --output pretty\n"
               "  evbus consume -c bus.yaml --exec ./handle-order.sh --handler-timeout 10\n"
               "  evbus consume -c bus.yaml --exec ./project.sh --metrics-port 9464 --stats-json "
               "run.json\n");
  cmd->callback([flags, &global, &runner] {
    runner = [flags, &global] { return run_consume(*flags, global); };
  });
}

}  // namespace evbus::app
