#pragma once
// What every subcommand shares: the common flags (registered once), loading the bus config and
// schemas, diagnostics on stderr, and the stop flag set by SIGINT/SIGTERM.
#include <CLI/CLI.hpp>
#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/config.hpp"
#include "core/producer.hpp"
#include "core/schema.hpp"

namespace evbus::app {

struct GlobalOptions {
  std::string config_path;
  std::string bootstrap_servers;
  std::string topic_prefix;
  std::vector<std::string> properties;  // -X key=value
  int verbosity = 0;                    // -v: librdkafka warnings, -vv: debug
};

// The subcommand that CLI11 selected sets this; main runs it and maps its errors.
using Runner = std::function<int()>;

void register_global_flags(CLI::App& app, GlobalOptions& global);

// `consumer_group`: a subcommand's --group, validated like every other flag.
BusConfig load_bus_config(const GlobalOptions& global, const std::string& consumer_group = {});
// The schemas named by the config (`schemas:`); empty when it names none.
SchemaSet load_bus_schemas(const BusConfig& config);

// librdkafka diagnostics: errors always, warnings with -v, everything with -vv.
Diagnostics stderr_diagnostics(const GlobalOptions& global);

// Set by SIGINT/SIGTERM; long-running loops poll it.
const std::atomic<bool>& stop_requested();
void install_signal_handlers();

// Every subcommand's --help ends with real examples.
void add_examples(CLI::App& command, const std::string& examples);

std::chrono::milliseconds seconds_to_ms(double seconds);

}  // namespace evbus::app
