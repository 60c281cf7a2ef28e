// evbus config show: the effective config with each value's source, secrets redacted.
#include <iostream>

#include "commands.hpp"

namespace evbus::app {

namespace {
struct ConfigFlags {
  std::string output = "text";
};

int run_config_show(const ConfigFlags& f, const GlobalOptions& global) {
  const BusConfig config = load_bus_config(global);
  write_config_show(std::cout, config, f.output);
  for (const auto& w : config_warnings(config)) std::cerr << "evbus: warning: " << w << '\n';
  return 0;
}
}  // namespace

void register_config(CLI::App& app, const GlobalOptions& global, Runner& runner) {
  auto flags = std::make_shared<ConfigFlags>();
  auto* cmd = app.add_subcommand("config", "Inspect the bus config");
  add_examples(*cmd, "  evbus config show -c examples/bus.yaml\n");
  cmd->require_subcommand(1);
  auto* show = cmd->add_subcommand("show", "Print every key, its effective value and its source");
  show->add_option("-o,--output", flags->output, "text or json")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  add_examples(*show,
               "  evbus config show -c examples/bus.yaml\n"
               "  EVBUS_MAX_RETRIES=5 evbus config show -c bus.yaml --output json\n");
  show->callback([flags, &global, &runner] {
    runner = [flags, &global] { return run_config_show(*flags, global); };
  });
}

}  // namespace evbus::app
