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
#include "core/metrics.hpp"
#include "core/producer.hpp"
#include "core/schema.hpp"
#include "core/stats.hpp"

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

// --metrics-port / --metrics-bind, shared by the long-running subcommands.
struct MetricsFlags {
  int port = -1;  // -1: no endpoint; 0: any free port
  std::string bind = "127.0.0.1";
};
void add_metrics_flags(CLI::App& command, MetricsFlags& flags);

// The instruments and, when a port was asked for, the HTTP endpoint serving them; the endpoint is
// up before connecting, so a scraper also sees a run that cannot connect.
class MetricsEndpoint {
 public:
  explicit MetricsEndpoint(const MetricsFlags& flags);
  BusMetrics* metrics() { return metrics_ ? &*metrics_ : nullptr; }

 private:
  std::optional<BusMetrics> metrics_;
  std::optional<MetricsServer> server_;
};

// With an endpoint, librdkafka's statistics feed the broker round-trip and queue gauges; the
// user's own statistics.interval.ms wins.
BusConfig with_client_statistics(BusConfig config, const MetricsFlags& flags);

// --stats-json FILE: the 12 get_stats_dict() keys; "-" writes one "evbus: stats {...}" line to
// stderr instead of a file.
void add_stats_json_flag(CLI::App& command, std::string& target);
void write_stats_json(const std::string& target, const RunStats& stats);

}  // namespace evbus::app
