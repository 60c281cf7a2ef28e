#pragma once
// Event handlers that are shell commands (`consume --exec CMD`): one child process per event, the
// event body on its stdin, the event's coordinates in its environment, exit 0 = handled.
#include <chrono>
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "core/consumer.hpp"

namespace evbus {

using Environment = std::vector<std::pair<std::string, std::string>>;

struct CommandRun {
  std::string command;      // run as /bin/sh -c COMMAND
  std::string input;        // the child's stdin (a sealed in-memory file: no pipe deadlock)
  Environment environment;  // added to the inherited environment, overriding same names
  std::chrono::milliseconds timeout{30000};
  std::size_t stderr_cap = 64 * 1024;  // keeps the tail of longer stderr output
};

struct CommandResult {
  enum class Status { exited, signaled, timed_out, not_started };
  Status status = Status::not_started;
  int code = 0;             // exit status, or the signal number
  std::string stderr_tail;  // at most stderr_cap bytes, the end of what the child wrote
  std::string start_error;  // not_started: why
  std::chrono::milliseconds elapsed{0};

  bool succeeded() const { return status == Status::exited && code == 0; }
  // HandlerTimeout after --handler-timeout, otherwise HandlerError (the dlq_error_type).
  std::string error_type() const;
  // The stderr tail (its last 1000 code points, valid UTF-8) or, when the child wrote nothing,
  // what happened ("command exited with status 3", "... killed by signal 9 (Killed)").
  std::string error_message() const;
};

// Runs the command in its own process group, so a timeout kills everything it started. The
// child's stdout is this process's stdout; its stderr is captured. Never throws for a failing
// command: a command that cannot even start is a not_started result.
CommandResult run_command(const CommandRun& run);

// EVBUS_EVENT_TYPE, EVBUS_EVENT_ID, EVBUS_AGGREGATE_ID, EVBUS_AGGREGATE_VERSION, EVBUS_TOPIC,
// EVBUS_PARTITION, EVBUS_OFFSET and EVBUS_RETRY_COUNT for one event. Ids come from the body when
// it parsed, else from the headers; missing values are empty strings.
Environment handler_environment(const ConsumedEvent& event);

struct CommandHandlerOptions {
  std::string command;
  std::chrono::milliseconds timeout{30000};
};
// An EventHandler for handle_events(): runs the command with the raw value bytes on stdin.
// `on_result` (optional) sees every run, e.g. for -v result lines.
EventHandler make_command_handler(
    CommandHandlerOptions options,
    std::function<void(const ConsumedEvent&, const CommandResult&)> on_result = {});

}  // namespace evbus
