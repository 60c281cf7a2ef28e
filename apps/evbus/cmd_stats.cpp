// evbus stats: the state of the bus in one command (topics, watermarks, groups and lag, the DLQ),
// once or refreshed with --watch.
#include <fmt/format.h>
#include <unistd.h>

#include <iostream>
#include <thread>

#include "commands.hpp"
#include "core/progress.hpp"
#include "core/stats.hpp"

namespace evbus::app {

namespace {

struct StatsFlags {
  std::string output = "table";
  std::string group;
  bool by_type = false;
  uint64_t scan_limit = 100000;
  double watch = 0;
  double timeout = 10.0;
  bool quiet = false;
};

void print(const StatsFlags& f, const BusStats& s, const StatsRates* rates) {
  if (f.output == "json")
    // --watch writes one document per line, so a consumer can read them as JSON lines.
    std::cout << stats_to_json(s, rates).dump(f.watch > 0 ? -1 : 2) << '\n';
  else if (f.output == "prometheus")
    write_stats_prometheus(std::cout, s);
  else
    write_stats_table(std::cout, s, rates);
  std::cout.flush();
}

// Sleeps `seconds`, waking early on SIGINT/SIGTERM; false when stopped.
bool pause_unless_stopped(double seconds) {
  const auto until = std::chrono::steady_clock::now() + seconds_to_ms(seconds);
  while (std::chrono::steady_clock::now() < until) {
    if (stop_requested().load()) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return !stop_requested().load();
}

int run_stats(const StatsFlags& f, const GlobalOptions& global) {
  BusConfig config = load_bus_config(global);
  if (!f.group.empty()) config.consumer_group = f.group;
  StatsRequest request;
  request.by_type = f.by_type;
  request.scan_limit = f.scan_limit;
  request.timeout = seconds_to_ms(f.timeout);

  BusInspector inspector(config, stderr_diagnostics(global));
  Progress progress(std::cerr, "stats --by-type", "records", stderr_is_terminal() && !f.quiet);
  auto on_scan = [&progress](uint64_t scanned, uint64_t target) {
    if (scanned == 0) return progress.restart();
    progress.update(scanned, target > 0 ? std::optional<double>(double(scanned) / double(target))
                                        : std::nullopt);
  };
  const bool redraw = f.watch > 0 && isatty(STDOUT_FILENO) == 1;
  std::optional<BusStats> previous;
  for (;;) {
    BusStats current = inspector.collect(request, on_scan);
    progress.clear();
    std::optional<StatsRates> rates;
    if (previous) rates = compute_rates(*previous, current);
    if (redraw) std::cout << "\x1b[H\x1b[2J";  // refresh in place: cursor home, clear screen
    print(f, current, rates ? &*rates : nullptr);
    if (f.watch <= 0) return 0;
    if (!redraw && f.output != "json") std::cout << '\n';
    previous = std::move(current);
    // Stopping a watch is its normal end, not an interruption.
    if (!pause_unless_stopped(f.watch)) return 0;
  }
}

}  // namespace

void register_stats(CLI::App& app, const GlobalOptions& global, Runner& runner) {
  auto flags = std::make_shared<StatsFlags>();
  auto* cmd = app.add_subcommand(
      "stats", "Topics, watermarks, consumer groups and lag, and the DLQ of the bus");
  cmd->add_option("-o,--output", flags->output, "table, json or prometheus")
      ->check(CLI::IsMember({"table", "json", "prometheus"}))
      ->capture_default_str();
  cmd->add_option("-g,--group", flags->group,
                  "The group always shown (default: consumer_group from the config)");
  cmd->add_flag("--by-type", flags->by_type,
                "Count records per event_type header over the newest --scan-limit records");
  cmd->add_option("--scan-limit", flags->scan_limit, "Records the --by-type scan reads at most")
      ->capture_default_str();
  cmd->add_option("-w,--watch", flags->watch,
                  "Refresh every SECONDS (in place on a terminal) with rates; Ctrl-C ends")
      ->type_name("SECONDS")
      ->check(CLI::Range(1, 1000000000));
  cmd->add_option("--timeout", flags->timeout, "Seconds to wait for the cluster to answer")
      ->capture_default_str();
  cmd->add_flag("-q,--quiet", flags->quiet, "No progress line during --by-type");
  add_examples(
      *cmd,
      "  evbus stats -c bus.yaml\n"
      "  evbus stats -c bus.yaml --by-type --scan-limit 50000 --output json\n"
      "  evbus stats -c bus.yaml --watch 5\n"
      "  evbus stats -c bus.yaml --output prometheus > /var/lib/node_exporter/evbus.prom\n");
  cmd->callback([flags, &global, &runner] {
    runner = [flags, &global] { return run_stats(*flags, global); };
  });
}

}  // namespace evbus::app
