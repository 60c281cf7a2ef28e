// evbus publish: events from flags, a JSON-lines file or stdin, validated, then delivered.
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <iostream>

#include "commands.hpp"
#include "core/consumer.hpp"  // RunStats (see core/stats.hpp)
#include "core/error.hpp"
#include "core/metrics.hpp"
#include "core/output.hpp"
#include "core/progress.hpp"
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
  MetricsFlags metrics;
  std::string stats_json;
};

// The input file (or stdin), closed when done.
struct Input {
  int fd = STDIN_FILENO;
  std::string name = "stdin";
  std::optional<uint64_t> size;  // regular files: for the progress ETA
  explicit Input(const std::string& path) {
    if (!path.empty() && path != "-") {
      fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) throw Error(ErrorKind::invalid_input, fmt::format("cannot open {}", path));
      name = path;
    }
    struct stat st {};
    if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) size = static_cast<uint64_t>(st.st_size);
  }
  ~Input() {
    if (fd != STDIN_FILENO) ::close(fd);
  }
  Input(const Input&) = delete;
  Input& operator=(const Input&) = delete;
};

// The single event given with --type/--aggregate-id/--data.
Json event_from_flags(const PublishFlags& f) {
  Json input = Json::object();
  if (!f.data.empty()) {
    auto parsed = parse_event_json(f.data);
    if (!parsed.value)
      throw Error(ErrorKind::invalid_input, "--data is not valid JSON: " + parsed.error);
    input = std::move(*parsed.value);
    if (!input.is_object()) throw Error(ErrorKind::invalid_input, "--data must be a JSON object");
  }
  if (!f.aggregate_id.empty()) input["aggregate_id"] = f.aggregate_id;
  return input;
}

// Prints each outcome as the flags ask; problems always reach stderr, even with --quiet.
// What a dry run knows about the topic once connected.
struct TopicShape {
  int partitions = -1;
  bool exists = true;
};

OutcomeSink outcome_printer(const PublishFlags& f, const TopicShape& shape, Progress& progress) {
  const bool json = f.output == "json";
  const bool per_event = !f.quiet && !f.background;
  // Only when both streams are the same terminal must the progress line step aside.
  const bool shared_terminal = progress.enabled() && isatty(STDOUT_FILENO) == 1;
  return [json, per_event, shared_terminal, &shape, &progress](const PublishOutcome& o) {
    using Kind = PublishOutcome::Kind;
    const bool problem = o.kind == Kind::invalid || o.kind == Kind::failed;
    if (!per_event && !problem && o.kind != Kind::planned) return;
    if (shared_terminal || problem) progress.clear();
    if (problem && !per_event) {
      std::cerr << "evbus: " << (o.kind == Kind::invalid ? "invalid " : "failed ") << o.source
                << ": " << describe_errors(o.errors) << '\n';
      return;
    }
    if (json)
      std::cout << outcome_to_json(o).dump() << '\n';
    else if (o.kind == Kind::planned)
      write_planned_text(std::cout, o, shape.partitions, shape.exists);
    else
      write_outcome_text(o.kind == Kind::delivered ? std::cout : std::cerr, o);
  };
}

PublishSummary publish_all(const PublishFlags& f, const GlobalOptions& global,
                           const BusConfig& config, const SchemaSet& schemas,
                           PublishOptions options, RunStats& stats, bool& interrupted) {
  const bool from_flags = !f.aggregate_id.empty() || !f.data.empty();
  std::optional<Input> input;
  if (!from_flags) input.emplace(f.file);
  // A person typing events into a terminal needs no progress line in the way.
  const bool long_work = input && (input->fd != STDIN_FILENO || isatty(STDIN_FILENO) != 1);
  Progress progress(std::cerr, "publish", "events", long_work && !f.quiet && stderr_is_terminal());

  TopicShape shape;
  EventPublisher publisher(config, schemas, options, outcome_printer(f, shape, progress),
                           EnvelopeDefaults::system(), stderr_diagnostics(global));
  if (f.dry_run) shape = {publisher.partition_count(), publisher.topic_exists()};
  if (options.metrics) options.metrics->connections_active(config.consumer_group, true);

  if (from_flags) {
    publisher.publish_json(event_from_flags(f), "flags");
  } else {
    interrupted =
        InputEnd::stopped ==
        publish_lines(publisher, input->fd, input->name, stop_requested(), [&](uint64_t bytes) {
          if (options.metrics) options.metrics->producer_in_flight(publisher.in_flight());
          std::optional<double> fraction;
          if (input->size && *input->size > 0)
            fraction = static_cast<double>(bytes) / static_cast<double>(*input->size);
          progress.update(publisher.summary().read, fraction);
          std::cout.flush();  // result lines reach a pipe reader whenever the input pauses
        });
  }
  const PublishSummary s = publisher.finish();
  progress.clear();
  if (options.metrics) {
    options.metrics->producer_in_flight(0);
    options.metrics->connections_active(config.consumer_group, false);
  }
  stats = publisher.run_stats();
  std::cerr << fmt::format("evbus: publish: {} read, {} {}, {} invalid, {} failed\n", s.read,
                           f.dry_run ? s.planned : s.delivered,
                           f.dry_run ? "planned (dry run, nothing sent)" : "delivered", s.invalid,
                           s.failed);
  return s;
}

int run_publish(const PublishFlags& f, const GlobalOptions& global) {
  const bool from_flags = !f.aggregate_id.empty() || !f.data.empty();
  if (from_flags && !f.file.empty())
    throw Error(ErrorKind::usage, "give either --aggregate-id/--data or --file, not both");
  if (from_flags && f.type.empty())
    throw Error(ErrorKind::usage, "--type is required with --aggregate-id/--data");

  const BusConfig config = with_client_statistics(load_bus_config(global), f.metrics);
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

  MetricsEndpoint endpoint(f.metrics);
  options.metrics = endpoint.metrics();

  RunStats stats;
  auto write_stats = [&] { write_stats_json(f.stats_json, stats); };
  PublishSummary s;
  bool interrupted = false;
  try {
    s = publish_all(f, global, config, schemas, options, stats, interrupted);
  } catch (const Error&) {
    write_stats();  // a run that failed to start still leaves its (empty) statistics
    throw;
  }
  write_stats();
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
  add_metrics_flags(*cmd, flags->metrics);
  add_stats_json_flag(*cmd, flags->stats_json);
  add_examples(
      *cmd,
      "  evbus publish -c bus.yaml --type OrderPlaced --aggregate-id "
      "7d3c2b1a-5e4f-4a6b-8c9d-0e1f2a3b4c5d --data '{\"customer_id\":\"C-1\",\"total\":9.5}'\n"
      "  evbus publish -c bus.yaml --file examples/orders.jsonl --output json\n"
      "  generate-events | evbus publish -c bus.yaml --quiet --metrics-port 9464 "
      "--stats-json run.json\n");
  cmd->callback([flags, &global, &runner] {
    runner = [flags, &global] { return run_publish(*flags, global); };
  });
}

}  // namespace evbus::app
