// Unit tests for core/config: file, environment and flag layers, validation messages, the derived
// librdkafka properties and `config show`. No network.
#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <regex>
#include <sstream>

#include "core/config.hpp"
#include "core/error.hpp"

namespace fs = std::filesystem;
using evbus::BusConfig;
using evbus::ClientProperties;
using evbus::ConfigFlags;
using evbus::ValueSource;
using Env = std::map<std::string, std::string>;

namespace {

// A fresh folder per test, removed afterwards; unique across processes and tests.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    std::random_device random;
    path_ =
        fs::temp_directory_path() / ("evbus-test-config-" + std::to_string(getpid()) + "-" +
                                     std::to_string(counter++) + "-" + std::to_string(random()));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const fs::path& path() const { return path_; }
  std::string write(const std::string& name, const std::string& content) const {
    const fs::path file = path_ / name;
    fs::create_directories(file.parent_path());
    std::ofstream(file, std::ios::binary) << content;
    return file.string();
  }

 private:
  fs::path path_;
};

// Loads `yaml` as the config file named by --config.
BusConfig load_yaml(const TempDir& dir, const std::string& yaml, const Env& env = {},
                    ConfigFlags flags = {}) {
  flags.config_path = dir.write("bus.yaml", yaml);
  return evbus::load_config(flags, env);
}

// The message of the invalid_input error that loading must throw ("" when it does not throw).
std::string load_error(const ConfigFlags& flags, const Env& env) {
  try {
    evbus::load_config(flags, env);
  } catch (const evbus::Error& e) {
    CHECK(e.kind() == evbus::ErrorKind::invalid_input);
    return e.what();
  }
  FAIL_CHECK("load_config did not throw");
  return "";
}

std::string yaml_error(const TempDir& dir, const std::string& yaml, const Env& env = {}) {
  ConfigFlags flags;
  flags.config_path = dir.write("bus.yaml", yaml);
  return load_error(flags, env);
}

std::optional<std::string> property(const ClientProperties& properties, const std::string& name) {
  std::optional<std::string> found;
  for (const auto& [key, value] : properties) {
    if (key == name) found = value;  // the last one wins, as in librdkafka
  }
  return found;
}

std::string show(const BusConfig& config, std::string_view format) {
  std::ostringstream out;
  evbus::write_config_show(out, config, format);
  return out.str();
}

// Runs a test from `dir` and restores the working directory afterwards.
class ScopedCwd {
 public:
  explicit ScopedCwd(const fs::path& dir) : previous_(fs::current_path()) { fs::current_path(dir); }
  ~ScopedCwd() { fs::current_path(previous_); }
  ScopedCwd(const ScopedCwd&) = delete;
  ScopedCwd& operator=(const ScopedCwd&) = delete;

 private:
  fs::path previous_;
};

constexpr const char* kAllKeysYaml = R"(bootstrap_servers: broker1:9093,broker2:9093
topic_prefix: orders
consumer_group: order-handlers
consumer_name: worker-1
acks: "1"
compression_type: zstd
producer_max_batch_bytes: 32768
linger_ms: 20
auto_offset_reset: latest
session_timeout_ms: 45000
heartbeat_interval_ms: 15000
max_poll_interval_ms: 600000
fetch_max_bytes: 10485760
max_partition_fetch_bytes: 2097152
max_retries: 5
retry_base_delay: 0.5
retry_max_delay: 30
retry_jitter: 0.25
enable_dlq: false
dlq_topic_suffix: .dead
dlq_consumer_group: dlq-readers
dlq_max_replay_attempts: 7
security_protocol: SASL_SSL
sasl_mechanism: SCRAM-SHA-512
sasl_username: orders-service
sasl_password: hunter2
ssl_cafile: /etc/ca.pem
ssl_certfile: /etc/client.pem
ssl_keyfile: /etc/client.key
ssl_check_hostname: false
enable_tracing: false
enable_metrics: no
shutdown_timeout: 12.5
schemas: [schemas/orders.yaml, schemas]
librdkafka:
  socket.keepalive.enable: true
  message.timeout.ms: 60000
)";

}  // namespace

TEST_CASE("no config file gives eventsource-py's defaults, every key sourced as default") {
  TempDir dir;
  const ScopedCwd cwd(dir.path());  // no ./evbus.yaml here
  const BusConfig c = evbus::load_config({}, {});
  CHECK(c.config_path.empty());
  CHECK(c.bootstrap_servers == "localhost:9092");
  CHECK(c.topic_prefix == "events");
  CHECK(c.consumer_group == "default");
  CHECK_FALSE(c.consumer_name.has_value());
  CHECK(c.acks == "all");
  CHECK(c.compression_type == std::optional<std::string>("gzip"));
  CHECK(c.producer_max_batch_bytes == 16384);
  CHECK(c.linger_ms == 5);
  CHECK(c.auto_offset_reset == "earliest");
  CHECK(c.session_timeout_ms == 30000);
  CHECK(c.heartbeat_interval_ms == 10000);
  CHECK(c.max_poll_interval_ms == 300000);
  CHECK(c.fetch_max_bytes == 52428800);
  CHECK(c.max_partition_fetch_bytes == 1048576);
  CHECK(c.max_retries == 3);
  CHECK(c.retry_base_delay == 1.0);
  CHECK(c.retry_max_delay == 60.0);
  CHECK(c.retry_jitter == 0.1);
  CHECK(c.enable_dlq);
  CHECK(c.dlq_topic_suffix == ".dlq");
  CHECK_FALSE(c.dlq_consumer_group.has_value());
  CHECK(c.dlq_max_replay_attempts == 3);
  CHECK(c.security_protocol == "PLAINTEXT");
  CHECK_FALSE(c.sasl_mechanism.has_value());
  CHECK_FALSE(c.sasl_username.has_value());
  CHECK_FALSE(c.sasl_password.has_value());
  CHECK_FALSE(c.ssl_cafile.has_value());
  CHECK_FALSE(c.ssl_certfile.has_value());
  CHECK_FALSE(c.ssl_keyfile.has_value());
  CHECK(c.ssl_check_hostname);
  CHECK(c.enable_tracing);
  CHECK(c.enable_metrics);
  CHECK(c.shutdown_timeout == 30.0);
  CHECK(c.schemas.empty());
  CHECK(c.librdkafka.empty());
  CHECK(c.topic_name() == "events.stream");
  CHECK(c.dlq_topic_name() == "events.stream.dlq");
  CHECK(c.sources.size() == 34);  // 33 KafkaEventBusConfig keys + schemas
  for (const auto& [key, source] : c.sources) {
    INFO(key);
    CHECK(source == ValueSource::default_value);
  }
  // eventsource-py's default consumer name: "<hostname>-<8 hex>", generated once.
  CHECK(std::regex_match(c.client_name, std::regex(".+-[0-9a-f]{8}")));
  CHECK(evbus::load_config({}, {}).client_name != c.client_name);
}

TEST_CASE("./evbus.yaml is read when no path is named") {
  TempDir dir;
  dir.write("evbus.yaml", "topic_prefix: from-cwd\n");
  const ScopedCwd cwd(dir.path());
  const BusConfig c = evbus::load_config({}, {});
  CHECK(c.topic_prefix == "from-cwd");
  CHECK(c.config_path == "evbus.yaml");
}

TEST_CASE("EVBUS_CONFIG names the file; --config beats it") {
  TempDir dir;
  const std::string env_file = dir.write("env.yaml", "topic_prefix: from-env-file\n");
  const std::string flag_file = dir.write("flag.yaml", "topic_prefix: from-flag-file\n");
  CHECK(evbus::load_config({}, {{"EVBUS_CONFIG", env_file}}).topic_prefix == "from-env-file");
  ConfigFlags flags;
  flags.config_path = flag_file;
  const BusConfig c = evbus::load_config(flags, {{"EVBUS_CONFIG", env_file}});
  CHECK(c.topic_prefix == "from-flag-file");
  CHECK(c.config_path == flag_file);
}

TEST_CASE("a named config file that does not exist is an error naming the path") {
  TempDir dir;
  const std::string missing = (dir.path() / "nope.yaml").string();
  ConfigFlags flags;
  flags.config_path = missing;
  CHECK(load_error(flags, {}) == "--config: config file '" + missing + "' does not exist");
  CHECK(load_error({}, {{"EVBUS_CONFIG", missing}}) ==
        "EVBUS_CONFIG: config file '" + missing + "' does not exist");
}

TEST_CASE("every key is read from the file") {
  TempDir dir;
  dir.write("schemas/orders.yaml", "{}\n");
  const BusConfig c = load_yaml(dir, kAllKeysYaml);
  CHECK(c.bootstrap_servers == "broker1:9093,broker2:9093");
  CHECK(c.topic_prefix == "orders");
  CHECK(c.consumer_group == "order-handlers");
  CHECK(c.consumer_name == std::optional<std::string>("worker-1"));
  CHECK(c.client_name == "worker-1");
  CHECK(c.acks == "1");
  CHECK(c.compression_type == std::optional<std::string>("zstd"));
  CHECK(c.producer_max_batch_bytes == 32768);
  CHECK(c.linger_ms == 20);
  CHECK(c.auto_offset_reset == "latest");
  CHECK(c.session_timeout_ms == 45000);
  CHECK(c.heartbeat_interval_ms == 15000);
  CHECK(c.max_poll_interval_ms == 600000);
  CHECK(c.fetch_max_bytes == 10485760);
  CHECK(c.max_partition_fetch_bytes == 2097152);
  CHECK(c.max_retries == 5);
  CHECK(c.retry_base_delay == 0.5);
  CHECK(c.retry_max_delay == 30.0);
  CHECK(c.retry_jitter == 0.25);
  CHECK_FALSE(c.enable_dlq);
  CHECK(c.dlq_topic_suffix == ".dead");
  CHECK(c.dlq_consumer_group == std::optional<std::string>("dlq-readers"));
  CHECK(c.dlq_max_replay_attempts == 7);
  CHECK(c.security_protocol == "SASL_SSL");
  CHECK(c.sasl_mechanism == std::optional<std::string>("SCRAM-SHA-512"));
  CHECK(c.sasl_username == std::optional<std::string>("orders-service"));
  CHECK(c.sasl_password == std::optional<std::string>("hunter2"));
  CHECK(c.ssl_cafile == std::optional<std::string>("/etc/ca.pem"));
  CHECK(c.ssl_certfile == std::optional<std::string>("/etc/client.pem"));
  CHECK(c.ssl_keyfile == std::optional<std::string>("/etc/client.key"));
  CHECK_FALSE(c.ssl_check_hostname);
  CHECK_FALSE(c.enable_tracing);
  CHECK_FALSE(c.enable_metrics);
  CHECK(c.shutdown_timeout == 12.5);
  // Relative schema paths are resolved against the config file's folder.
  CHECK(c.schemas == std::vector<std::string>{(dir.path() / "schemas/orders.yaml").string(),
                                              (dir.path() / "schemas").string()});
  CHECK(c.librdkafka ==
        ClientProperties{{"socket.keepalive.enable", "true"}, {"message.timeout.ms", "60000"}});
  CHECK(c.topic_name() == "orders.stream");
  CHECK(c.dlq_topic_name() == "orders.stream.dead");
  CHECK(c.sources.size() == 36);  // 33 keys + schemas + 2 librdkafka entries
  for (const auto& [key, source] : c.sources) {
    INFO(key);
    CHECK(source == ValueSource::file);
  }
}

TEST_CASE("a single schema string and YAML int acks are accepted") {
  TempDir dir;
  dir.write("orders.yaml", "{}\n");
  const BusConfig c = load_yaml(dir, "schemas: orders.yaml\nacks: -1\ncompression_type: none\n");
  CHECK(c.schemas == std::vector<std::string>{(dir.path() / "orders.yaml").string()});
  CHECK(c.acks == "-1");
  CHECK_FALSE(c.compression_type.has_value());
  CHECK(c.sources.at("compression_type") == ValueSource::file);
  CHECK(load_yaml(dir, "compression_type: null\n").compression_type == std::nullopt);
  CHECK(load_yaml(dir, "acks: 0\n").acks == "0");
}

TEST_CASE("a schema path that does not exist is an error at its line") {
  TempDir dir;
  const std::string path = dir.write("bus.yaml", "topic_prefix: x\nschemas: [missing.yaml]\n");
  ConfigFlags flags;
  flags.config_path = path;
  CHECK(load_error(flags, {}) == path + ":2: key 'schemas': '" +
                                     (dir.path() / "missing.yaml").string() + "' does not exist");
}

TEST_CASE("batch_size is an alias of producer_max_batch_bytes; giving both is an error") {
  TempDir dir;
  const BusConfig c = load_yaml(dir, "batch_size: 65536\n");
  CHECK(c.producer_max_batch_bytes == 65536);
  CHECK(c.sources.at("producer_max_batch_bytes") == ValueSource::file);
  CHECK_FALSE(c.sources.contains("batch_size"));

  const std::string path = (dir.path() / "bus.yaml").string();
  CHECK(yaml_error(dir, "batch_size: 1000\nlinger_ms: 1\nproducer_max_batch_bytes: 2000\n") ==
        path +
            ":3: give either 'batch_size' or 'producer_max_batch_bytes', not both (they are the "
            "same setting; batch_size is the eventsource-py 0.8 name)");
  CHECK(yaml_error(dir, "batch_size: lots\n") ==
        path + ":1: key 'batch_size' expects an integer, got 'lots'");

  CHECK(evbus::load_config({}, {{"EVBUS_BATCH_SIZE", "4096"}}).producer_max_batch_bytes == 4096);
  CHECK(
      load_error({}, {{"EVBUS_BATCH_SIZE", "1"}, {"EVBUS_PRODUCER_MAX_BATCH_BYTES", "2"}}) ==
      "EVBUS_BATCH_SIZE: set either EVBUS_BATCH_SIZE or EVBUS_PRODUCER_MAX_BATCH_BYTES, not both");
}

TEST_CASE("${VAR} and ${VAR:-default} are expanded from the environment; $$ is a dollar") {
  TempDir dir;
  const std::string yaml = R"(security_protocol: SASL_PLAINTEXT
sasl_mechanism: PLAIN
sasl_username: ${KAFKA_USER:-evbus}
sasl_password: ${KAFKA_PASSWORD}
bootstrap_servers: ${KAFKA_HOST}:${KAFKA_PORT:-9092}
max_retries: ${RETRIES:-4}
consumer_group: cost$$center-$x
librdkafka:
  ssl.key.password: pre-${KAFKA_PASSWORD}
)";
  const BusConfig c =
      load_yaml(dir, yaml, {{"KAFKA_PASSWORD", "s3cret"}, {"KAFKA_HOST", "kafka.internal"}});
  CHECK(c.sasl_username == std::optional<std::string>("evbus"));
  CHECK(c.sasl_password == std::optional<std::string>("s3cret"));
  CHECK(c.bootstrap_servers == "kafka.internal:9092");
  CHECK(c.max_retries == 4);
  CHECK(c.consumer_group == "cost$center-$x");
  CHECK(c.librdkafka == ClientProperties{{"ssl.key.password", "pre-s3cret"}});

  const BusConfig set = load_yaml(
      dir, yaml,
      {{"KAFKA_PASSWORD", "p"}, {"KAFKA_HOST", "h"}, {"KAFKA_USER", "alice"}, {"RETRIES", "9"}});
  CHECK(set.sasl_username == std::optional<std::string>("alice"));
  CHECK(set.max_retries == 9);

  const std::string path = (dir.path() / "bus.yaml").string();
  CHECK(yaml_error(dir, yaml, {{"KAFKA_HOST", "h"}}) ==
        path +
            ":4: key 'sasl_password': environment variable 'KAFKA_PASSWORD' is not set (write "
            "${KAFKA_PASSWORD:-default} to give a default)");
  CHECK(yaml_error(dir, "topic_prefix: ${OOPS\n") ==
        path + ":1: key 'topic_prefix': '${' without a closing '}' (write $$ for a literal $)");
}

TEST_CASE("EVBUS_<KEY> environment variables override the file") {
  TempDir dir;
  const std::string yaml =
      "bootstrap_servers: file:9092\nmax_retries: 5\nenable_dlq: true\nretry_jitter: 0.2\n";
  dir.write("a.yaml", "{}\n");
  dir.write("b", "{}\n");
  const ScopedCwd cwd(dir.path());  // EVBUS_SCHEMAS paths are relative to the working directory
  const BusConfig c = load_yaml(dir, yaml,
                                {{"EVBUS_BOOTSTRAP_SERVERS", "env:9092"},
                                 {"EVBUS_MAX_RETRIES", "7"},
                                 {"EVBUS_ENABLE_DLQ", "false"},
                                 {"EVBUS_SCHEMAS", "a.yaml, b"},
                                 {"EVBUS_SASL_MECHANISM", ""},
                                 {"EVBUS_BINARY", "/usr/bin/evbus"},
                                 {"EVBUS_NOT_A_KEY", "ignored"}});
  CHECK(c.bootstrap_servers == "env:9092");
  CHECK(c.max_retries == 7);
  CHECK_FALSE(c.enable_dlq);
  CHECK(c.retry_jitter == 0.2);
  CHECK(c.schemas == std::vector<std::string>{"a.yaml", "b"});
  CHECK_FALSE(c.sasl_mechanism.has_value());
  CHECK(c.sources.at("bootstrap_servers") == ValueSource::environment);
  CHECK(c.sources.at("max_retries") == ValueSource::environment);
  CHECK(c.sources.at("enable_dlq") == ValueSource::environment);
  CHECK(c.sources.at("schemas") == ValueSource::environment);
  CHECK(c.sources.at("retry_jitter") == ValueSource::file);
  CHECK(c.sources.at("linger_ms") == ValueSource::default_value);

  CHECK(load_error({}, {{"EVBUS_MAX_RETRIES", "lots"}}) ==
        "EVBUS_MAX_RETRIES: key 'max_retries' expects an integer, got 'lots'");
  CHECK(load_error({}, {{"EVBUS_ENABLE_DLQ", "maybe"}}) ==
        "EVBUS_ENABLE_DLQ: key 'enable_dlq' expects true or false, got 'maybe'");
  CHECK(load_error({}, {{"EVBUS_RETRY_JITTER", "2"}}) ==
        "EVBUS_RETRY_JITTER: key 'retry_jitter' must be between 0 and 1, got 2");
}

TEST_CASE("flags beat the environment, which beats the file") {
  TempDir dir;
  const std::string yaml =
      "bootstrap_servers: file:1\ntopic_prefix: file\nconsumer_group: file-group\n"
      "librdkafka:\n  client.rack: file-rack\n  socket.keepalive.enable: true\n";
  const Env env{{"EVBUS_BOOTSTRAP_SERVERS", "env:1"}, {"EVBUS_TOPIC_PREFIX", "env"}};
  ConfigFlags flags;
  flags.bootstrap_servers = "flag:1";
  flags.properties = {{"client.rack", "flag-rack"}, {"linger.ms", "7"}};
  const BusConfig c = load_yaml(dir, yaml, env, flags);
  CHECK(c.bootstrap_servers == "flag:1");
  CHECK(c.sources.at("bootstrap_servers") == ValueSource::flag);
  CHECK(c.topic_prefix == "env");
  CHECK(c.sources.at("topic_prefix") == ValueSource::environment);
  CHECK(c.consumer_group == "file-group");
  CHECK(c.sources.at("consumer_group") == ValueSource::file);
  // -X replaces the file's value and moves after it, so it is applied last.
  CHECK(c.librdkafka == ClientProperties{{"socket.keepalive.enable", "true"},
                                         {"client.rack", "flag-rack"},
                                         {"linger.ms", "7"}});
  CHECK(c.sources.at("librdkafka.client.rack") == ValueSource::flag);
  CHECK(c.sources.at("librdkafka.socket.keepalive.enable") == ValueSource::file);
  CHECK(c.sources.at("librdkafka.linger.ms") == ValueSource::flag);
  // Derived first, passthrough after: librdkafka applies the -X linger.ms last.
  const ClientProperties producer = evbus::producer_properties(c);
  CHECK(property(producer, "linger.ms") == std::optional<std::string>("7"));
  CHECK(std::count_if(producer.begin(), producer.end(),
                      [](const auto& p) { return p.first == "linger.ms"; }) == 2);
  CHECK(producer.back() == std::pair<std::string, std::string>{"linger.ms", "7"});

  flags.topic_prefix = "flag";
  flags.consumer_group = "flag-group";
  const BusConfig f = load_yaml(dir, yaml, env, flags);
  CHECK(f.topic_prefix == "flag");
  CHECK(f.consumer_group == "flag-group");
  CHECK(f.sources.at("consumer_group") == ValueSource::flag);
}

TEST_CASE("an unknown key names file:line and suggests the nearest key") {
  TempDir dir;
  const std::string path = (dir.path() / "bus.yaml").string();
  CHECK(yaml_error(dir, "topic_prefix: orders\n# comment\nbootstrap_server: localhost:9092\n") ==
        path + ":3: unknown key 'bootstrap_server'; did you mean 'bootstrap_servers'?");
  CHECK(yaml_error(dir, "ligner_ms: 5\n") ==
        path + ":1: unknown key 'ligner_ms'; did you mean 'linger_ms'?");
  CHECK(yaml_error(dir, "colour: blue\n") ==
        path + ":1: unknown key 'colour'; see docs/CONFIG.md for the valid keys");
  CHECK(yaml_error(dir, "socket.timeout.ms: 1000\n") ==
        path + ":1: unknown key 'socket.timeout.ms'; librdkafka properties go under 'librdkafka:'");
}

TEST_CASE("YAML syntax errors, duplicate keys and a non-map top level name the line") {
  TempDir dir;
  const std::string path = (dir.path() / "bus.yaml").string();
  CHECK(yaml_error(dir, "topic_prefix: x\nschemas: [a, b\nlinger_ms: 1\n") ==
        path + ":3: YAML syntax error: end of sequence flow not found");
  CHECK(yaml_error(dir, "linger_ms: 1\nacks: all\nlinger_ms: 2\n") ==
        path + ":3: duplicate key 'linger_ms' (first given on line 1)");
  CHECK(yaml_error(dir, "- a\n- b\n") ==
        path + ":1: the config file must be a map of keys (key: value), got a list");
}

TEST_CASE("wrong types are rejected with the key and the expected type") {
  TempDir dir;
  const std::string path = (dir.path() / "bus.yaml").string();
  const std::vector<std::pair<std::string, std::string>> cases{
      {"max_retries: lots\n", ":1: key 'max_retries' expects an integer, got 'lots'"},
      {"max_retries: 2.5\n", ":1: key 'max_retries' expects an integer, got '2.5'"},
      {"linger_ms: 99999999999\n", ":1: key 'linger_ms' expects an integer, got '99999999999'"},
      {"enable_dlq: maybe\n", ":1: key 'enable_dlq' expects true or false, got 'maybe'"},
      {"retry_base_delay: soon\n", ":1: key 'retry_base_delay' expects a number, got 'soon'"},
      {"topic_prefix: [a, b]\n", ":1: key 'topic_prefix' expects a string, got a list"},
      {"consumer_name: {a: 1}\n", ":1: key 'consumer_name' expects a string or null, got a map"},
      {"topic_prefix:\n", ":1: key 'topic_prefix' expects a string, got null"},
      {"librdkafka: fast\n",
       ":1: key 'librdkafka' expects a map of librdkafka properties, got 'fast'"},
      {"librdkafka:\n  linger.ms: [1]\n",
       ":2: key 'librdkafka.linger.ms' expects a scalar value, got a list"},
      {"schemas: {a: b}\n", ":1: key 'schemas' expects a path or a list of paths, got a map"},
  };
  for (const auto& [yaml, expected] : cases) {
    INFO(yaml);
    CHECK(yaml_error(dir, yaml) == path + expected);
  }
}

TEST_CASE("impossible values are rejected with the key") {
  TempDir dir;
  const std::string path = (dir.path() / "bus.yaml").string();
  const std::vector<std::pair<std::string, std::string>> cases{
      {"acks: 2\n", ":1: key 'acks' must be one of all, -1, 0, 1; got '2'"},
      {"compression_type: brotli\n",
       ":1: key 'compression_type' must be one of none, null, gzip, snappy, lz4, zstd; got "
       "'brotli'"},
      {"auto_offset_reset: beginning\n",
       ":1: key 'auto_offset_reset' must be one of earliest, latest; got 'beginning'"},
      {"security_protocol: TLS\n",
       ":1: key 'security_protocol' must be one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL; got "
       "'TLS'"},
      {"sasl_mechanism: GSSAPI\n",
       ":1: key 'sasl_mechanism' must be one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512; got "
       "'GSSAPI'"},
      {"session_timeout_ms: 0\n", ":1: key 'session_timeout_ms' must be greater than 0, got 0"},
      {"fetch_max_bytes: -1\n", ":1: key 'fetch_max_bytes' must be greater than 0, got -1"},
      {"producer_max_batch_bytes: 0\n",
       ":1: key 'producer_max_batch_bytes' must be greater than 0, got 0"},
      {"linger_ms: -1\n", ":1: key 'linger_ms' must be 0 or more, got -1"},
      {"max_retries: -1\n", ":1: key 'max_retries' must be 0 or more, got -1"},
      {"dlq_max_replay_attempts: -2\n",
       ":1: key 'dlq_max_replay_attempts' must be 0 or more, got -2"},
      {"heartbeat_interval_ms: 30000\n",
       ":1: heartbeat_interval_ms (30000) must be less than session_timeout_ms (30000)"},
      {"max_poll_interval_ms: 20000\n",
       ":1: max_poll_interval_ms (20000) must be at least session_timeout_ms (30000)"},
      {"retry_base_delay: 0\n", ":1: key 'retry_base_delay' must be greater than 0, got 0"},
      {"retry_max_delay: -1\n", ":1: key 'retry_max_delay' must be greater than 0, got -1"},
      {"retry_base_delay: 10\nretry_max_delay: 5\n",
       ":2: retry_max_delay (5) must be at least retry_base_delay (10)"},
      {"retry_jitter: 1.5\n", ":1: key 'retry_jitter' must be between 0 and 1, got 1.5"},
      {"retry_jitter: -0.1\n", ":1: key 'retry_jitter' must be between 0 and 1, got -0.1"},
      {"shutdown_timeout: 0\n", ":1: key 'shutdown_timeout' must be greater than 0, got 0"},
      {"topic_prefix: \"\"\n", ":1: key 'topic_prefix' must not be empty"},
      {"topic_prefix: my topic\n",
       ":1: key 'topic_prefix' may only contain letters, digits, '.', '_' and '-' (it becomes part "
       "of a Kafka topic name); got 'my topic'"},
      {"dlq_topic_suffix: \"\"\n", ":1: key 'dlq_topic_suffix' must not be empty"},
      {"dlq_topic_suffix: /dlq\n",
       ":1: key 'dlq_topic_suffix' may only contain letters, digits, '.', '_' and '-' (it becomes "
       "part of a Kafka topic name); got '/dlq'"},
      {"consumer_group: \"\"\n", ":1: key 'consumer_group' must not be empty"},
      {"fetch_max_bytes: 500000\n",
       ":1: key 'fetch_max_bytes' (500000) must be at least librdkafka's message.max.bytes "
       "(1000000)"},
      {"security_protocol: SASL_SSL\nsasl_username: u\nsasl_password: p\n",
       ":1: security_protocol SASL_SSL needs sasl_mechanism (PLAIN, SCRAM-SHA-256 or "
       "SCRAM-SHA-512)"},
      {"security_protocol: SASL_PLAINTEXT\nsasl_mechanism: PLAIN\nsasl_username: u\n",
       ":1: security_protocol SASL_PLAINTEXT needs a non-empty sasl_username and sasl_password"},
      {"security_protocol: SASL_PLAINTEXT\nsasl_mechanism: PLAIN\nsasl_username: u\n"
       "sasl_password: \"\"\n",
       ":1: security_protocol SASL_PLAINTEXT needs a non-empty sasl_username and sasl_password"},
      {"security_protocol: SSL\nssl_certfile: /c.pem\n",
       ":2: ssl_certfile and ssl_keyfile must be given together (a client certificate needs its "
       "key)"},
      {"ssl_keyfile: /k.pem\n",
       ":1: ssl_certfile and ssl_keyfile must be given together (a client certificate needs its "
       "key)"},
  };
  for (const auto& [yaml, expected] : cases) {
    INFO(yaml);
    CHECK(yaml_error(dir, yaml) == path + expected);
  }
}

TEST_CASE("a flag value is validated and the error names the flag") {
  ConfigFlags flags;
  flags.topic_prefix = "bad prefix";
  CHECK(load_error(flags, {}) ==
        "--topic-prefix: key 'topic_prefix' may only contain letters, digits, '.', '_' and '-' "
        "(it becomes part of a Kafka topic name); got 'bad prefix'");
}

TEST_CASE("librdkafka passthrough is checked by librdkafka as it is loaded") {
  TempDir dir;
  const std::string path = (dir.path() / "bus.yaml").string();
  const BusConfig c =
      load_yaml(dir, "librdkafka:\n  statistics.interval.ms: 5000\n  client.rack: rack-1\n");
  CHECK(c.librdkafka ==
        ClientProperties{{"statistics.interval.ms", "5000"}, {"client.rack", "rack-1"}});
  CHECK(c.sources.at("librdkafka.statistics.interval.ms") == ValueSource::file);

  CHECK(yaml_error(dir, "topic_prefix: x\nlibrdkafka:\n  linger.ms: 1\n  bogus.property: 1\n") ==
        path +
            ":4: librdkafka property 'bogus.property' rejected: No such configuration property: "
            "\"bogus.property\"");
  CHECK(yaml_error(dir, "librdkafka:\n  socket.timeout.ms: soon\n") ==
        path +
            ":2: librdkafka property 'socket.timeout.ms' rejected: Invalid value for "
            "configuration property \"socket.timeout.ms\"");

  ConfigFlags flags;
  flags.properties = {{"no.such.thing", "x"}};
  CHECK(load_error(flags, {}) ==
        "-X no.such.thing: librdkafka property 'no.such.thing' rejected: No such configuration "
        "property: \"no.such.thing\"");
}

TEST_CASE("derived properties are checked by librdkafka too, at the key's place") {
  TempDir dir;
  const std::string path = (dir.path() / "bus.yaml").string();
  CHECK(yaml_error(dir, "topic_prefix: x\nlinger_ms: 1000000\n") ==
        path +
            ":2: key 'linger_ms' gives linger.ms=1000000, which librdkafka rejects: Configuration "
            "property \"queue.buffering.max.ms\" value 1e+06 is outside allowed range 0..900000");
}

TEST_CASE("producer properties: murmur2 partitioner, idempotence with acks=all, compression") {
  ConfigFlags flags;
  const Env env{{"EVBUS_CONSUMER_NAME", "svc-1"}};
  const BusConfig c = evbus::load_config(flags, env);
  CHECK(evbus::producer_properties(c) == ClientProperties{
                                             {"bootstrap.servers", "localhost:9092"},
                                             {"client.id", "svc-1"},
                                             {"security.protocol", "plaintext"},
                                             {"partitioner", "murmur2_random"},
                                             {"acks", "all"},
                                             {"enable.idempotence", "true"},
                                             {"compression.codec", "gzip"},
                                             {"batch.size", "16384"},
                                             {"linger.ms", "5"},
                                         });
  const BusConfig acks1 = evbus::load_config(
      flags, {{"EVBUS_ACKS", "1"}, {"EVBUS_COMPRESSION_TYPE", "none"}, {"EVBUS_LINGER_MS", "0"}});
  const ClientProperties p = evbus::producer_properties(acks1);
  CHECK(property(p, "acks") == std::optional<std::string>("1"));
  CHECK(property(p, "enable.idempotence") == std::optional<std::string>("false"));
  CHECK(property(p, "compression.codec") == std::optional<std::string>("none"));
  CHECK(property(p, "linger.ms") == std::optional<std::string>("0"));
  const BusConfig minus1 = evbus::load_config(flags, {{"EVBUS_ACKS", "-1"}});
  CHECK(property(evbus::producer_properties(minus1), "enable.idempotence") ==
        std::optional<std::string>("true"));
  CHECK(property(evbus::producer_properties(
                     evbus::load_config(flags, {{"EVBUS_COMPRESSION_TYPE", "LZ4"}})),
                 "compression.codec") == std::optional<std::string>("lz4"));
  // No consumer keys on a producer.
  CHECK_FALSE(property(evbus::producer_properties(c), "group.id"));
  CHECK_FALSE(property(evbus::producer_properties(c), "enable.partition.eof"));
}

TEST_CASE("consumer properties: group.instance.id only for an explicit consumer_name") {
  const BusConfig generated = evbus::load_config({}, {});
  const ClientProperties without = evbus::consumer_properties(generated);
  CHECK_FALSE(property(without, "group.instance.id"));
  CHECK(property(without, "client.id") == std::optional<std::string>(generated.client_name));
  CHECK(without == ClientProperties{
                       {"bootstrap.servers", "localhost:9092"},
                       {"client.id", generated.client_name},
                       {"security.protocol", "plaintext"},
                       {"group.id", "default"},
                       {"enable.auto.commit", "false"},
                       {"auto.offset.reset", "earliest"},
                       {"session.timeout.ms", "30000"},
                       {"heartbeat.interval.ms", "10000"},
                       {"max.poll.interval.ms", "300000"},
                       {"fetch.max.bytes", "52428800"},
                       {"max.partition.fetch.bytes", "1048576"},
                       {"enable.partition.eof", "true"},
                   });
  const BusConfig named = evbus::load_config({}, {{"EVBUS_CONSUMER_NAME", "worker-7"}});
  const ClientProperties with = evbus::consumer_properties(named);
  CHECK(property(with, "group.instance.id") == std::optional<std::string>("worker-7"));
  CHECK(property(with, "client.id") == std::optional<std::string>("worker-7"));
  // No producer keys on a consumer.
  CHECK_FALSE(property(with, "partitioner"));
  CHECK_FALSE(property(with, "acks"));
}

TEST_CASE("security settings map to librdkafka only where the protocol uses them") {
  TempDir dir;
  const BusConfig sasl_ssl = load_yaml(dir, R"(security_protocol: SASL_SSL
sasl_mechanism: SCRAM-SHA-256
sasl_username: u
sasl_password: p
ssl_cafile: /ca.pem
ssl_check_hostname: false
)");
  const ClientProperties common = evbus::common_properties(sasl_ssl);
  CHECK(property(common, "security.protocol") == std::optional<std::string>("sasl_ssl"));
  CHECK(property(common, "sasl.mechanisms") == std::optional<std::string>("SCRAM-SHA-256"));
  CHECK(property(common, "sasl.username") == std::optional<std::string>("u"));
  CHECK(property(common, "sasl.password") == std::optional<std::string>("p"));
  CHECK(property(common, "ssl.ca.location") == std::optional<std::string>("/ca.pem"));
  CHECK(property(common, "ssl.endpoint.identification.algorithm") ==
        std::optional<std::string>("none"));

  const BusConfig plain = load_yaml(dir, "sasl_username: u\nsasl_password: p\n");
  CHECK_FALSE(property(evbus::common_properties(plain), "sasl.username"));
  CHECK_FALSE(property(evbus::common_properties(plain), "ssl.endpoint.identification.algorithm"));
  const auto warnings = evbus::config_warnings(plain);
  REQUIRE(warnings.size() == 1);
  CHECK(warnings[0] ==
        "sasl_mechanism/sasl_username/sasl_password are set but security_protocol is PLAINTEXT, "
        "so they are ignored; use SASL_PLAINTEXT or SASL_SSL to authenticate");

  const BusConfig ssl = load_yaml(dir, "security_protocol: ssl\n");
  CHECK(ssl.security_protocol == "SSL");
  CHECK(property(evbus::common_properties(ssl), "ssl.endpoint.identification.algorithm") ==
        std::optional<std::string>("https"));
}

TEST_CASE("passthrough properties go only to the clients they belong to") {
  TempDir dir;
  const BusConfig c = load_yaml(
      dir, "librdkafka:\n  message.timeout.ms: 1000\n  fetch.wait.max.ms: 50\n  client.rack: r\n");
  const auto producer = evbus::producer_properties(c);
  const auto consumer = evbus::consumer_properties(c);
  const auto common = evbus::common_properties(c);
  CHECK(property(producer, "message.timeout.ms") == std::optional<std::string>("1000"));
  CHECK_FALSE(property(producer, "fetch.wait.max.ms"));
  CHECK(property(consumer, "fetch.wait.max.ms") == std::optional<std::string>("50"));
  CHECK_FALSE(property(consumer, "message.timeout.ms"));
  CHECK(property(common, "client.rack") == std::optional<std::string>("r"));
  CHECK_FALSE(property(common, "message.timeout.ms"));
  CHECK_FALSE(property(common, "fetch.wait.max.ms"));
  CHECK(common.back() == std::pair<std::string, std::string>{"client.rack", "r"});
}

TEST_CASE("config show lists every key with its source and redacts secrets") {
  TempDir dir;
  const BusConfig c = load_yaml(dir, R"(security_protocol: SASL_PLAINTEXT
sasl_mechanism: PLAIN
sasl_username: alice
sasl_password: hunter2
topic_prefix: orders
librdkafka:
  ssl.key.password: pem-secret
  client.rack: r1
)",
                                {{"EVBUS_MAX_RETRIES", "9"}});
  const std::string text = show(c, "text");
  CHECK(text.find("hunter2") == std::string::npos);
  CHECK(text.find("pem-secret") == std::string::npos);
  CHECK(std::regex_search(text, std::regex("\nsasl_password +\\*\\*\\* +file\n")));
  CHECK(std::regex_search(text, std::regex("\nsasl_username +alice +file\n")));
  CHECK(std::regex_search(text, std::regex("\nmax_retries +9 +environment\n")));
  CHECK(std::regex_search(text, std::regex("\nlinger_ms +5 +default\n")));
  CHECK(std::regex_search(text,
                          std::regex("\nlibrdkafka\\.ssl\\.key\\.password +\\*\\*\\* +file\n")));
  CHECK(std::regex_search(text, std::regex("\nlibrdkafka\\.client\\.rack +r1 +file\n")));
  CHECK(std::regex_search(text, std::regex("\ntopic_name +orders\\.stream +derived\n")));
  CHECK(std::regex_search(text, std::regex("\ndlq_topic_name +orders\\.stream\\.dlq +derived\n")));
  CHECK(text.rfind("key ", 0) == 0);
  // Field order: bootstrap_servers first, shutdown_timeout before schemas, then librdkafka.*.
  CHECK(text.find("\nbootstrap_servers") < text.find("\ntopic_prefix"));
  CHECK(text.find("\nshutdown_timeout") < text.find("\nschemas"));
  CHECK(text.find("\nschemas") < text.find("\nlibrdkafka."));

  const auto json = nlohmann::json::parse(show(c, "json"));
  CHECK(json["sasl_password"]["value"] == "***");
  CHECK(json["sasl_password"]["source"] == "file");
  CHECK(json["librdkafka.ssl.key.password"]["value"] == "***");
  CHECK(json["max_retries"]["value"] == 9);
  CHECK(json["max_retries"]["source"] == "environment");
  CHECK(json["enable_dlq"]["value"] == true);
  CHECK(json["consumer_name"]["value"].is_null());
  CHECK(json["compression_type"]["value"] == "gzip");
  CHECK(json["topic_name"]["value"] == "orders.stream");
  CHECK(show(c, "json").find("hunter2") == std::string::npos);
}

TEST_CASE("config warnings: cramjam codecs and overridden derived properties") {
  TempDir dir;
  const auto lz4 = evbus::config_warnings(load_yaml(dir, "compression_type: lz4\n"));
  REQUIRE(lz4.size() == 1);
  CHECK(lz4[0] ==
        "eventsource-py consumers need the 'cramjam' package to read lz4-compressed records; gzip "
        "or none work with a default install");
  CHECK(evbus::config_warnings(load_yaml(dir, "compression_type: gzip\n")).empty());
  const auto overridden =
      evbus::config_warnings(load_yaml(dir, "librdkafka:\n  partitioner: consistent_random\n"));
  REQUIRE(overridden.size() == 1);
  CHECK(overridden[0] ==
        "librdkafka property 'partitioner' overrides partitioner (derived from evbus)");
}

TEST_CASE("process_environment reads the real environment") {
  REQUIRE(setenv("EVBUS_TEST_CONFIG_PROBE", "a=b", 1) == 0);
  const auto environment = evbus::process_environment();
  CHECK(environment.at("EVBUS_TEST_CONFIG_PROBE") == "a=b");
  unsetenv("EVBUS_TEST_CONFIG_PROBE");
}
