// Metrics registry and exposition format, librdkafka statistics, the metrics endpoint, run
// statistics, progress lines, and the `evbus stats` formatters (no broker needed).
#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <regex>
#include <sstream>

#include "core/consumer.hpp"  // RunStats
#include "core/error.hpp"
#include "core/metrics.hpp"
#include "core/progress.hpp"
#include "core/stats.hpp"

using namespace evbus;

namespace {

// The exposition format 0.0.4, line by line: comments, or a sample with well-formed labels.
bool valid_exposition(const std::string& text) {
  static const std::regex help(R"(# HELP [a-zA-Z_:][a-zA-Z0-9_:]* .*)");
  static const std::regex type(R"(# TYPE [a-zA-Z_:][a-zA-Z0-9_:]* (counter|gauge|histogram))");
  static const std::regex sample(
      R"([a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\[\\"n])*"(,[a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\[\\"n])*")*\})? (-?[0-9.e+-]+|[+-]Inf|NaN))");
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (!std::regex_match(line, help) && !std::regex_match(line, type) &&
        !std::regex_match(line, sample))
      return false;
  return !text.empty() && text.back() == '\n';
}

std::string http_get(int port, const std::string& path) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  const std::string request = "GET " + path + " HTTP/1.0\r\nHost: localhost\r\n\r\n";
  REQUIRE(::write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size()));
  std::string response;
  char buf[4096];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;)
    response.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return response;
}

}  // namespace

TEST_CASE("counters and gauges render with HELP, TYPE and escaped labels") {
  MetricsRegistry r;
  r.declare("jobs_total", MetricType::counter, "Jobs done\nper queue");
  r.declare("depth", MetricType::gauge, "Queue depth");
  r.increment("jobs_total", {{"queue", "a\"b\\c\nd"}});
  r.increment("jobs_total", {{"queue", "a\"b\\c\nd"}}, 2);
  r.set("depth", {}, 7.5);
  const std::string text = r.text();
  CHECK(text ==
        "# HELP jobs_total Jobs done\\nper queue\n"
        "# TYPE jobs_total counter\n"
        "jobs_total{queue=\"a\\\"b\\\\c\\nd\"} 3\n"
        "# HELP depth Queue depth\n"
        "# TYPE depth gauge\n"
        "depth 7.5\n");
  CHECK(valid_exposition(text));
  CHECK(r.value("jobs_total", {{"queue", "a\"b\\c\nd"}}) == 3.0);
  CHECK_FALSE(r.value("jobs_total", {{"queue", "other"}}).has_value());
}

TEST_CASE("histograms are cumulative with +Inf, _sum and _count") {
  MetricsRegistry r;
  r.declare("latency_ms", MetricType::histogram, "Latency", {5, 10});
  for (double v : {1.0, 5.0, 7.0, 50.0}) r.observe("latency_ms", {{"topic", "t"}}, v);
  const std::string text = r.text();
  CHECK(text.find("latency_ms_bucket{topic=\"t\",le=\"5\"} 2\n") != std::string::npos);
  CHECK(text.find("latency_ms_bucket{topic=\"t\",le=\"10\"} 3\n") != std::string::npos);
  CHECK(text.find("latency_ms_bucket{topic=\"t\",le=\"+Inf\"} 4\n") != std::string::npos);
  CHECK(text.find("latency_ms_sum{topic=\"t\"} 63\n") != std::string::npos);
  CHECK(text.find("latency_ms_count{topic=\"t\"} 4\n") != std::string::npos);
  CHECK(valid_exposition(text));
}

TEST_CASE("misuse is a programming error, not silently ignored") {
  MetricsRegistry r;
  r.declare("x_total", MetricType::counter, "x");
  CHECK_THROWS_AS(r.set("x_total", {}, 1), Error);
  CHECK_THROWS_AS(r.increment("nope_total"), Error);
  CHECK_THROWS_AS(r.declare("bad name", MetricType::gauge, "x"), Error);
}

TEST_CASE("sample values as Prometheus writes them") {
  CHECK(format_metric_value(3) == "3");
  CHECK(format_metric_value(0.25) == "0.25");
  CHECK(format_metric_value(-2) == "-2");
  CHECK(format_metric_value(1.0 / 0.0) == "+Inf");
}

TEST_CASE("the seed's instruments keep their names and attributes as labels") {
  BusMetrics m;
  m.published("orders.stream", "OrderPlaced");
  m.published("orders.stream", "OrderPlaced");
  m.consumed("orders.stream", 2, "OrderShipped");
  m.handler_error("billing", "OrderPlaced", "ValueError");
  m.sent_to_dlq("max_retries_exceeded", "ValueError");
  m.publish_duration("orders.stream", 12.0);
  m.consumer_lag("orders.stream", "billing", 1, -3);  // negative lag is reported as 0
  const auto& r = m.registry();
  CHECK(r.value(metric::messages_published, {{"messaging_system", "kafka"},
                                             {"messaging_destination", "orders.stream"},
                                             {"event_type", "OrderPlaced"}}) == 2.0);
  CHECK(r.value(metric::messages_consumed, {{"messaging_system", "kafka"},
                                            {"messaging_destination", "orders.stream"},
                                            {"messaging_kafka_partition", "2"},
                                            {"event_type", "OrderShipped"}}) == 1.0);
  CHECK(r.value(metric::messages_dlq,
                {{"dlq_reason", "max_retries_exceeded"}, {"error_type", "ValueError"}}) == 1.0);
  CHECK(r.value(metric::consumer_lag, {{"messaging_kafka_partition", "1"},
                                       {"messaging_kafka_consumer_group", "billing"},
                                       {"messaging_destination", "orders.stream"}}) == 0.0);
  const std::string text = r.text();
  CHECK(text.find("kafka_eventbus_reconnections_total 0\n") != std::string::npos);
  CHECK(text.find("# TYPE kafka_eventbus_publish_duration_milliseconds histogram") !=
        std::string::npos);
  CHECK(valid_exposition(text));
}

TEST_CASE("librdkafka statistics feed broker round-trip, queue and lag gauges") {
  BusMetrics m;
  m.librdkafka_statistics(R"({
    "name": "rdkafka#consumer-1", "type": "consumer", "msg_cnt": 4, "msg_size": 2048,
    "brokers": {
      "localhost:9092/bootstrap": {"nodeid": -1, "outbuf_cnt": 0, "waitresp_cnt": 0,
                                   "rtt": {"cnt": 0, "avg": 0, "p99": 0}},
      "localhost:9092/1": {"nodeid": 1, "outbuf_cnt": 2, "waitresp_cnt": 1,
                           "rtt": {"cnt": 10, "avg": 1500, "p99": 4000}}
    },
    "topics": {"orders.stream": {"partitions": {
      "0": {"partition": 0, "consumer_lag": 12},
      "1": {"partition": 1, "consumer_lag": -1},
      "-1": {"partition": -1, "consumer_lag": -1}}}}
  })",
                          "billing");
  const auto& r = m.registry();
  const MetricLabels broker{{"client_type", "consumer"}, {"broker", "localhost:9092/1"}};
  CHECK(r.value(metric::broker_rtt_avg, broker) == 1.5);
  CHECK(r.value(metric::broker_rtt_p99, broker) == 4.0);
  CHECK(r.value(metric::broker_outbuf, broker) == 2.0);
  CHECK(r.value(metric::client_queue_messages, {{"client_type", "consumer"}}) == 4.0);
  CHECK_FALSE(r.value(metric::broker_rtt_avg,
                      {{"client_type", "consumer"}, {"broker", "localhost:9092/bootstrap"}}));
  CHECK(r.value(metric::consumer_lag, {{"messaging_kafka_partition", "0"},
                                       {"messaging_kafka_consumer_group", "billing"},
                                       {"messaging_destination", "orders.stream"}}) == 12.0);
  CHECK_FALSE(r.value(metric::consumer_lag, {{"messaging_kafka_partition", "1"},
                                             {"messaging_kafka_consumer_group", "billing"},
                                             {"messaging_destination", "orders.stream"}}));
  m.librdkafka_statistics("not json");  // ignored, nothing thrown
  CHECK(valid_exposition(r.text()));
}

TEST_CASE("the endpoint serves /metrics on a free port and only on /metrics") {
  BusMetrics m;
  m.published("t.stream", "A");
  MetricsServer server(m.registry(), "127.0.0.1", 0);
  REQUIRE(server.port() > 0);
  CHECK(server.url() == "http://127.0.0.1:" + std::to_string(server.port()) + "/metrics");
  const std::string ok = http_get(server.port(), "/metrics");
  CHECK(ok.rfind("HTTP/1.1 200", 0) == 0);
  CHECK(ok.find("text/plain; version=0.0.4") != std::string::npos);
  CHECK(ok.find("kafka_eventbus_messages_published_total{messaging_system=\"kafka\","
                "messaging_destination=\"t.stream\",event_type=\"A\"} 1") != std::string::npos);
  m.published("t.stream", "A");  // a later scrape sees the new value
  CHECK(http_get(server.port(), "/metrics").find("event_type=\"A\"} 2") != std::string::npos);
  CHECK(http_get(server.port(), "/nothing").rfind("HTTP/1.1 404", 0) == 0);
  // The same port cannot be bound twice: a plain error, not a crash.
  CHECK_THROWS_AS(MetricsServer(m.registry(), "127.0.0.1", server.port()), Error);
}

TEST_CASE("run statistics have the 12 keys of get_stats_dict() in order") {
  RunStats s;
  s.events_published = 3;
  s.connected_at = Timestamp{Micros{std::chrono::seconds(1736937000)}, 0};
  s.last_publish_at = Timestamp{Micros{std::chrono::microseconds(1736937000123456)}, 0};
  const Json j = run_stats_to_json(s);
  std::vector<std::string> keys;
  for (const auto& [k, v] : j.items()) keys.push_back(k);
  CHECK(keys == std::vector<std::string>{"events_published", "events_consumed",
                                         "events_processed_success", "events_processed_failed",
                                         "messages_sent_to_dlq", "handler_errors", "reconnections",
                                         "rebalance_count", "last_publish_at", "last_consume_at",
                                         "last_error_at", "connected_at"});
  CHECK(j["events_published"] == 3);
  CHECK(j["connected_at"] == "2025-01-15T10:30:00+00:00");  // isoformat: no zero microseconds
  CHECK(j["last_publish_at"] == "2025-01-15T10:30:00.123456+00:00");
  CHECK(j["last_consume_at"].is_null());

  const std::string path = "/tmp/evbus-test-metrics-" + std::to_string(::getpid()) + ".json";
  write_run_stats_file(path, s);
  std::ifstream in(path);
  CHECK(Json::parse(in) == j);
  std::remove(path.c_str());
  CHECK_THROWS_AS(write_run_stats_file("/nonexistent-dir/x.json", s), Error);
  CHECK(run_stats_summary(s, std::chrono::milliseconds(1500)).rfind("published 3, consumed 0", 0) ==
        0);
}

TEST_CASE("progress line: count, rate, elapsed, and ETA only when the total is known") {
  using std::chrono::seconds;
  CHECK(progress_line("publish", "events", 1200, seconds(3)) ==
        "publish: 1200 events  400/s  0:03");
  CHECK(progress_line("publish", "events", 300, seconds(3), 0.25) ==
        "publish: 300 events  100/s  0:03  ETA 0:09 (25%)");
  CHECK(format_duration(seconds(3723)) == "1:02:03");

  std::ostringstream out;
  {
    Progress off(out, "publish", "events", false);
    off.update(10);
  }
  CHECK(out.str().empty());  // disabled (not a terminal, or --quiet): nothing at all
  {
    Progress on(out, "publish", "events", true);
    on.set_total(100);
    on.update(10);
    on.update(20);  // within 200 ms of the first draw: skipped
  }
  CHECK(out.str().find("publish: 10 events") != std::string::npos);
  CHECK(out.str().find("ETA") != std::string::npos);
  CHECK(out.str().find("20 events") == std::string::npos);
  CHECK(out.str().substr(out.str().size() - 5) == "\r\x1b[2K");  // erased at the end
}

namespace {
BusStats sample_stats() {
  BusStats s;
  s.bootstrap_servers = "localhost:9092";
  s.main = {"shop.stream", true, {{0, 1, 0, 10}, {1, 1, 2, 7}}};
  s.dlq_topic = {"shop.stream.dlq", false, {}};
  GroupStats g;
  g.name = "billing";
  g.configured = true;
  g.known = true;
  g.state = "Empty";
  g.partitions = {{0, 4, 10, 6}, {1, std::nullopt, 7, 5}};
  s.groups.push_back(g);
  return s;
}
}  // namespace

TEST_CASE("stats formatters: totals, lag, absent topics said plainly, strict Prometheus") {
  BusStats s = sample_stats();
  std::ostringstream table;
  write_stats_table(table, s);
  CHECK(table.str().find("shop.stream.dlq  absent (no such topic)") != std::string::npos);
  CHECK(table.str().find("billing *") != std::string::npos);

  const Json j = stats_to_json(s);
  CHECK(j["topics"][0]["messages"] == 15);
  CHECK(j["topics"][1]["exists"] == false);
  CHECK(j["groups"][0]["lag"] == 11);
  CHECK(j["groups"][0]["partitions"][1]["committed"].is_null());

  std::ostringstream prom;
  write_stats_prometheus(prom, s);
  CHECK(valid_exposition(prom.str()));
  CHECK(prom.str().find("kafka_eventbus_consumer_lag{messaging_kafka_partition=\"0\","
                        "messaging_kafka_consumer_group=\"billing\","
                        "messaging_destination=\"shop.stream\"} 6") != std::string::npos);

  BusStats later = sample_stats();
  later.main.partitions[0].high = 30;
  later.groups[0].partitions[0].lag = 26;
  later.taken_steady = s.taken_steady + std::chrono::seconds(2);
  const StatsRates rates = compute_rates(s, later);
  CHECK(rates.messages_in_per_second == 10.0);
  CHECK(rates.lag_change_per_second.at("billing") == 10.0);
}
