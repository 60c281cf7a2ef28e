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

std::chrono::milliseconds seconds_to_ms(double seconds) {
  return std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000.0));
}

}  // namespace evbus::app
