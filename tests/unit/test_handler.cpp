// Handler commands: exit status, signals, timeouts (killing the whole process group), the event
// on stdin, EVBUS_* in the environment and the captured stderr.
#include <doctest/doctest.h>

#include <string>

#include "core/handler.hpp"

using namespace evbus;
using namespace std::chrono_literals;

namespace {

CommandResult sh(const std::string& command, std::string input = {}, Environment env = {},
                 std::chrono::milliseconds timeout = 10s) {
  CommandRun run;
  run.command = command;
  run.input = std::move(input);
  run.environment = std::move(env);
  run.timeout = timeout;
  return run_command(run);
}

}  // namespace

TEST_CASE("exit 0 is handled, the rest is a HandlerError with stderr as its message") {
  CHECK(sh("true").succeeded());
  const auto failed = sh("echo 'card declined' >&2; exit 3");
  CHECK_FALSE(failed.succeeded());
  CHECK(failed.status == CommandResult::Status::exited);
  CHECK(failed.code == 3);
  CHECK(failed.error_type() == "HandlerError");
  CHECK(failed.error_message() == "card declined");
  CHECK(sh("exit 7").error_message() == "command exited with status 7");
}

TEST_CASE("a signal is a failure") {
  const auto killed = sh("kill -9 $$");
  CHECK(killed.status == CommandResult::Status::signaled);
  CHECK(killed.code == 9);
  CHECK(killed.error_type() == "HandlerError");
  CHECK(killed.error_message().find("signal 9") != std::string::npos);
}

TEST_CASE("stdin carries the body; the environment carries the given variables") {
  const auto r = sh(
      R"(read -r line; [ "$line" = '{"a":1}' ] && [ "$EVBUS_EVENT_TYPE" = T ] || { echo "got $line $EVBUS_EVENT_TYPE" >&2; exit 1; })",
      "{\"a\":1}\n", {{"EVBUS_EVENT_TYPE", "T"}});
  CHECK_MESSAGE(r.succeeded(), r.error_message());
  // A handler that ignores a large body neither blocks nor fails.
  CHECK(sh("exit 0", std::string(1 << 20, 'x')).succeeded());
  // SIGPIPE has its default action in the child even though evbus ignores it.
  CHECK(sh("trap - PIPE; yes | head -1 >/dev/null").succeeded());
}

TEST_CASE("a timeout kills the process group and is a HandlerTimeout") {
  const auto start = std::chrono::steady_clock::now();
  const auto r = sh("echo started >&2; sleep 30 & sleep 30", {}, {}, 300ms);
  const auto took = std::chrono::steady_clock::now() - start;
  CHECK(r.status == CommandResult::Status::timed_out);
  CHECK(r.error_type() == "HandlerTimeout");
  CHECK(r.error_message().find("timed out") != std::string::npos);
  CHECK(r.error_message().find("started") != std::string::npos);
  CHECK(took < 5s);  // the background sleep holding stderr open did not keep us waiting
}

TEST_CASE("stderr is capped to its tail; the message is its last 1000 code points") {
  CommandRun run;
  run.command =
      "i=0; while [ $i -lt 3000 ]; do printf 'line %05d\\n' $i >&2; i=$((i+1)); done; exit 1";
  run.stderr_cap = 4096;
  const auto r = run_command(run);
  CHECK(r.stderr_tail.size() <= 4096);
  CHECK(r.stderr_tail.find("line 02999") != std::string::npos);
  CHECK(r.stderr_tail.find("line 00000") == std::string::npos);
  const std::string message = r.error_message();
  CHECK(message.size() == 1000);
  CHECK(message.substr(message.size() - 10) == "line 02999");
}

TEST_CASE("a command that cannot start is a failure, not an exception") {
  const auto r = sh("/nonexistent/handler");
  CHECK_FALSE(r.succeeded());
  CHECK(r.code == 127);
}

TEST_CASE("handler_environment: ids from the body, coordinates from the record") {
  ConsumedEvent e;
  e.record.topic = "shop.stream";
  e.record.partition = 1;
  e.record.offset = 42;
  e.record.headers = {{"event_id", "from-header"}, {"aggregate_version", "9"}};
  e.event_type = "OrderPlaced";
  e.body = Json::parse(R"({"event_id":"from-body","aggregate_id":"agg","aggregate_version":3})");
  e.retry_count = 2;
  const Environment env = handler_environment(e);
  const Environment expected{
      {"EVBUS_EVENT_TYPE", "OrderPlaced"},
      {"EVBUS_EVENT_ID", "from-body"},
      {"EVBUS_AGGREGATE_ID", "agg"},
      {"EVBUS_AGGREGATE_VERSION", "3"},
      {"EVBUS_TOPIC", "shop.stream"},
      {"EVBUS_PARTITION", "1"},
      {"EVBUS_OFFSET", "42"},
      {"EVBUS_RETRY_COUNT", "2"},
  };
  CHECK(env == expected);
  e.body.reset();
  const Environment from_headers = handler_environment(e);
  CHECK(from_headers[1].second == "from-header");
  CHECK(from_headers[2].second == "");
  CHECK(from_headers[3].second == "9");
}
