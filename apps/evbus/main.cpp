// evbus: the entry point and the one place where errors become exit codes (README table).
#include <iostream>

#include "commands.hpp"
#include "core/error.hpp"
#include "core/producer.hpp"

namespace {

int exit_code(evbus::ErrorKind kind) {
  switch (kind) {
    case evbus::ErrorKind::runtime:
      return 1;
    case evbus::ErrorKind::usage:
      return 2;
    case evbus::ErrorKind::invalid_input:
      return 3;
    case evbus::ErrorKind::undelivered:
      return 4;
    case evbus::ErrorKind::handler_failed:
      return 5;
    case evbus::ErrorKind::interrupted:
      return 130;
  }
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace evbus::app;
  CLI::App app{"evbus: publish, consume, inspect and replay eventsource-py events on Kafka"};
  app.require_subcommand(1);
  app.fallthrough();
  app.set_version_flag("--version", std::string("evbus ") + EVBUS_VERSION + " (librdkafka " +
                                        evbus::librdkafka_version() + ")");
  GlobalOptions global;
  register_global_flags(app, global);
  Runner runner;
  register_publish(app, global, runner);
  register_consume(app, global, runner);
  register_dlq(app, global, runner);
  register_stats(app, global, runner);
  register_topics(app, global, runner);
  register_config(app, global, runner);
  register_schema(app, global, runner);
  register_dev_broker(app, global, runner);
  register_completion(app, global, runner);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // Help and --version are successes; every other parse problem is a usage error (exit 2).
    const int cli_code = app.exit(e);
    return cli_code == 0 ? 0 : exit_code(evbus::ErrorKind::usage);
  }
  install_signal_handlers();
  try {
    return runner ? runner() : 0;
  } catch (const evbus::Error& e) {
    std::cerr << "evbus: error: " << e.what() << '\n';
    return exit_code(e.kind());
  } catch (const std::exception& e) {
    std::cerr << "evbus: error: " << e.what() << '\n';
    return exit_code(evbus::ErrorKind::runtime);
  }
}
