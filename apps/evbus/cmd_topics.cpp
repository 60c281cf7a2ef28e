// evbus topics create | list: the bus topic and its DLQ.
#include <fmt/format.h>

#include <iostream>

#include "commands.hpp"
#include "core/topics.hpp"

namespace evbus::app {

namespace {
struct TopicsFlags {
  int partitions = 0;
  int replication = 0;
  std::string output = "text";
  double timeout = 10.0;
};

int run_create(const TopicsFlags& f, const GlobalOptions& global) {
  const BusConfig config = load_bus_config(global);
  auto results =
      create_bus_topics(config, f.partitions > 0 ? std::optional<int>(f.partitions) : std::nullopt,
                        f.replication > 0 ? std::optional<int>(f.replication) : std::nullopt,
                        seconds_to_ms(f.timeout), stderr_diagnostics(global));
  for (const auto& r : results) {
    std::cout << fmt::format("{:<40} {:<16} {} partitions\n", r.name,
                             r.created ? "created" : "already exists", r.partitions);
    if (!r.created && f.partitions > 0 && r.partitions != f.partitions)
      std::cerr << fmt::format(
          "evbus: warning: {} already exists with {} partitions, not the {} asked for; evbus "
          "never changes the partition count of an existing topic (it would move aggregates to "
          "other partitions)\n",
          r.name, r.partitions, f.partitions);
  }
  return 0;
}

int run_list(const TopicsFlags& f, const GlobalOptions& global) {
  const BusConfig config = load_bus_config(global);
  auto infos = describe_bus_topics(config, seconds_to_ms(f.timeout), stderr_diagnostics(global));
  if (f.output == "json") {
    nlohmann::ordered_json out = nlohmann::ordered_json::array();
    for (const auto& t : infos)
      out.push_back({{"topic", t.name},
                     {"exists", t.exists},
                     {"partitions", t.partitions},
                     {"replication", t.replication}});
    std::cout << out.dump(2) << '\n';
    return 0;
  }
  std::cout << fmt::format("{:<40} {:>10} {:>11}\n", "TOPIC", "PARTITIONS", "REPLICATION");
  for (const auto& t : infos)
    std::cout << (t.exists
                      ? fmt::format("{:<40} {:>10} {:>11}\n", t.name, t.partitions, t.replication)
                      : fmt::format("{:<40} {:>10} {:>11}\n", t.name, "(absent)", "-"));
  return 0;
}
}  // namespace

void register_topics(CLI::App& app, const GlobalOptions& global, Runner& runner) {
  auto flags = std::make_shared<TopicsFlags>();
  auto* cmd = app.add_subcommand("topics", "Create or list the bus topics");
  add_examples(*cmd,
               "  evbus topics create -c bus.yaml --partitions 12\n"
               "  evbus topics list -c bus.yaml\n");
  cmd->require_subcommand(1);
  auto* create = cmd->add_subcommand("create", "Create {prefix}.stream and its DLQ (idempotent)");
  create->add_option("-p,--partitions", flags->partitions, "Partitions (default: broker default)")
      ->check(CLI::Range(1, 1000000000));
  create
      ->add_option("-r,--replication", flags->replication,
                   "Replication factor (default: broker default)")
      ->check(CLI::Range(1, 1000000000));
  create->add_option("--timeout", flags->timeout, "Seconds to wait for the cluster")
      ->check(CLI::Range(0.1, 3600.0))
      ->capture_default_str();
  add_examples(*create, "  evbus topics create -c bus.yaml --partitions 12 --replication 3\n");
  create->callback([flags, &global, &runner] {
    runner = [flags, &global] { return run_create(*flags, global); };
  });
  auto* list = cmd->add_subcommand("list", "Show the bus topics with their partition counts");
  list->add_option("-o,--output", flags->output, "text or json")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  list->add_option("--timeout", flags->timeout, "Seconds to wait for the cluster")
      ->check(CLI::Range(0.1, 3600.0))
      ->capture_default_str();
  add_examples(*list, "  evbus topics list -c bus.yaml --output json\n");
  list->callback([flags, &global, &runner] {
    runner = [flags, &global] { return run_list(*flags, global); };
  });
}

}  // namespace evbus::app
