#pragma once
#include "common.hpp"

namespace evbus::app {

// Each registers its subcommand on `app`; when selected, it sets `runner`.
void register_publish(CLI::App& app, const GlobalOptions& global, Runner& runner);
void register_consume(CLI::App& app, const GlobalOptions& global, Runner& runner);
void register_config(CLI::App& app, const GlobalOptions& global, Runner& runner);
void register_schema(CLI::App& app, const GlobalOptions& global, Runner& runner);
void register_topics(CLI::App& app, const GlobalOptions& global, Runner& runner);
void register_dev_broker(CLI::App& app, const GlobalOptions& global, Runner& runner);
void register_dlq(CLI::App& app, const GlobalOptions& global, Runner& runner);
void register_stats(CLI::App& app, const GlobalOptions& global, Runner& runner);
void register_completion(CLI::App& app, const GlobalOptions& global, Runner& runner);

}  // namespace evbus::app
