// evbus dev-broker: librdkafka's in-process mock cluster for machines with neither Docker nor a
// JDK. It keeps nothing on disk and serves until SIGINT/SIGTERM.
#include <fmt/format.h>

#include <chrono>
#include <iostream>
#include <thread>

#include "commands.hpp"
#include "core/dev_broker.hpp"

namespace evbus::app {

namespace {
struct DevBrokerFlags {
  int brokers = 1;
  int partitions = 3;
  std::vector<std::string> topics;
};

int run_dev_broker(const DevBrokerFlags& f) {
  DevBroker broker(f.brokers);
  for (const auto& t : f.topics) broker.create_topic(t, f.partitions);
  std::cout << broker.bootstrap_servers() << std::endl;
  std::cerr << "evbus: dev-broker: librdkafka mock cluster at " << broker.bootstrap_servers()
            << " (in memory only: nothing is kept on disk; stop with Ctrl-C)\n";
  while (!stop_requested().load()) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  std::cerr << "evbus: dev-broker: stopped; all data is gone\n";
  return 0;
}
}  // namespace

void register_dev_broker(CLI::App& app, const GlobalOptions& /*global*/, Runner& runner) {
  auto flags = std::make_shared<DevBrokerFlags>();
  auto* cmd = app.add_subcommand(
      "dev-broker", "Host librdkafka's mock cluster (in memory) and print its address");
  cmd->add_option("--brokers", flags->brokers, "Number of mock brokers")
      ->check(CLI::Range(1, 16))
      ->capture_default_str();
  cmd->add_option("--partitions", flags->partitions, "Partitions for --topic")
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();
  cmd->add_option("--topic", flags->topics, "Create this topic up front (repeatable)");
  add_examples(*cmd,
               "  evbus dev-broker --topic orders.stream &\n"
               "  evbus publish -b \"$(cat addr)\" --file examples/orders.jsonl\n");
  cmd->callback([flags, &runner] { runner = [flags] { return run_dev_broker(*flags); }; });
}

}  // namespace evbus::app
