#include "common.hpp"

#include <fmt/format.h>

#include <csignal>
#include <iostream>

#include "core/error.hpp"

namespace evbus::app {

void register_global_flags(CLI::App& app, GlobalOptions& global) {
  app.add_option("-c,--config", global.config_path,
                 "Bus config file (default: $EVBUS_CONFIG, then ./evbus.yaml)");
  app.add_option("-b,--bootstrap-servers", global.bootstrap_servers,
                 "Override bootstrap_servers from the config");
  app.add_option("--topic-prefix", global.topic_prefix, "Override topic_prefix from the config");
  app.add_option("-X", global.properties,
                 "librdkafka property key=value, applied last (repeatable)")
      ->type_name("KEY=VALUE");
  app.add_flag("-v,--verbose", global.verbosity,
               "More librdkafka diagnostics on stderr (-vv: debug)");
}

BusConfig load_bus_config(const GlobalOptions& global, const std::string& consumer_group) {
  ConfigFlags flags;
  if (!global.config_path.empty()) flags.config_path = global.config_path;
  if (!global.bootstrap_servers.empty()) flags.bootstrap_servers = global.bootstrap_servers;
  if (!global.topic_prefix.empty()) flags.topic_prefix = global.topic_prefix;
  if (!consumer_group.empty()) flags.consumer_group = consumer_group;
  for (const auto& p : global.properties) {
    const auto eq = p.find('=');
    if (eq == std::string::npos || eq == 0)
      throw Error(ErrorKind::usage, fmt::format("-X {}: expected key=value", p));
    flags.properties.emplace_back(p.substr(0, eq), p.substr(eq + 1));
  }
  return load_config(flags, process_environment());
}

SchemaSet load_bus_schemas(const BusConfig& config) {
  return load_schemas(config.schemas);
}

Diagnostics stderr_diagnostics(const GlobalOptions& global) {
  const int max_level = global.verbosity >= 2 ? 7 : global.verbosity == 1 ? 4 : 3;
  return [max_level](int level, const std::string& message) {
    if (level <= max_level) std::cerr << "evbus: librdkafka: " << message << '\n';
  };
}

namespace {
std::atomic<bool> g_stop{false};  // the one process-wide flag a signal handler may touch
extern "C" void on_signal(int) {
  g_stop.store(true);
}
}  // namespace

const std::atomic<bool>& stop_requested() {
  return g_stop;
}

void install_signal_handlers() {
  // No SA_RESTART: a read blocked on stdin (publish waiting for input) returns EINTR, so Ctrl-C
  // and SIGTERM take effect at once instead of after the next line arrives.
  struct sigaction action {};
  action.sa_handler = on_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = 0;
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  // A closed stdout pipe is a normal end (`evbus consume | head -1`): writes fail, we stop.
  std::signal(SIGPIPE, SIG_IGN);
}

void add_examples(CLI::App& command, const std::string& examples) {
  command.footer("\nExamples:\n" + examples);
}

void add_metrics_flags(CLI::App& command, MetricsFlags& flags) {
  command
      .add_option("--metrics-port", flags.port,
                  "Serve Prometheus metrics at http://BIND:PORT/metrics while running (0: any free "
                  "port, printed on stderr)")
      ->type_name("PORT")
      ->check(CLI::Range(0, 65535));
  command.add_option("--metrics-bind", flags.bind, "Address the metrics endpoint binds to")
      ->capture_default_str();
}

MetricsEndpoint::MetricsEndpoint(const MetricsFlags& flags) {
  if (flags.port < 0) return;
  metrics_.emplace();
  server_.emplace(metrics_->registry(), flags.bind, flags.port);
  std::cerr << "evbus: metrics at " << server_->url() << '\n';
}

BusConfig with_client_statistics(BusConfig config, const MetricsFlags& flags) {
  if (flags.port < 0) return config;
  for (const auto& [key, value] : config.librdkafka)
    if (key == "statistics.interval.ms") return config;
  config.librdkafka.emplace_back("statistics.interval.ms", "5000");
  return config;
}

void add_stats_json_flag(CLI::App& command, std::string& target) {
  command
      .add_option("--stats-json", target,
                  "Write the run statistics (eventsource-py's 12 get_stats_dict() keys) to FILE "
                  "at the end, also after SIGINT/SIGTERM or an error; - prints them on stderr")
      ->type_name("FILE");
}

void write_stats_json(const std::string& target, const RunStats& stats) {
  if (target.empty()) return;
  if (target == "-")
    std::cerr << "evbus: stats " << run_stats_to_json(stats).dump() << '\n';
  else
    write_run_stats_file(target, stats);
}

std::chrono::milliseconds seconds_to_ms(double seconds) {
  return std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000.0));
}

}  // namespace evbus::app
