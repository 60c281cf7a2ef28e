#pragma once
// The bus config: every KafkaEventBusConfig key of eventsource-py (contract §6) with the same
// defaults, plus evbus's own `schemas:` and `librdkafka:` keys.
// Precedence: defaults < file < EVBUS_<KEY> environment < flags.
#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "core/record.hpp"

namespace evbus {

enum class ValueSource { default_value, file, environment, flag };
std::string_view to_string(ValueSource source);

struct BusConfig {
  std::string bootstrap_servers = "localhost:9092";
  std::string topic_prefix = "events";
  std::string consumer_group = "default";
  std::optional<std::string> consumer_name;  // unset: "<hostname>-<8 hex>", see client_name()
  std::string acks = "all";                  // "all" | "-1" | "0" | "1"
  std::optional<std::string> compression_type = "gzip";  // none(null)|gzip|snappy|lz4|zstd
  int producer_max_batch_bytes = 16384;                  // alias: batch_size
  int linger_ms = 5;
  std::string auto_offset_reset = "earliest";  // earliest | latest
  int session_timeout_ms = 30000;
  int heartbeat_interval_ms = 10000;
  int max_poll_interval_ms = 300000;
  int fetch_max_bytes = 52428800;
  int max_partition_fetch_bytes = 1048576;
  int max_retries = 3;
  double retry_base_delay = 1.0;
  double retry_max_delay = 60.0;
  double retry_jitter = 0.1;
  bool enable_dlq = true;
  std::string dlq_topic_suffix = ".dlq";
  std::optional<std::string> dlq_consumer_group;
  int dlq_max_replay_attempts = 3;
  std::string security_protocol = "PLAINTEXT";  // PLAINTEXT|SSL|SASL_PLAINTEXT|SASL_SSL
  std::optional<std::string> sasl_mechanism;    // PLAIN|SCRAM-SHA-256|SCRAM-SHA-512
  std::optional<std::string> sasl_username;
  std::optional<std::string> sasl_password;
  std::optional<std::string> ssl_cafile;
  std::optional<std::string> ssl_certfile;
  std::optional<std::string> ssl_keyfile;
  bool ssl_check_hostname = true;
  bool enable_tracing = true;
  bool enable_metrics = true;
  double shutdown_timeout = 30.0;

  // evbus keys.
  std::vector<std::string> schemas;  // files or folders, resolved relative to the config file
  ClientProperties librdkafka;       // passed through to both clients, after the derived ones

  // Where each key's value came from ("bootstrap_servers" -> file, ...). Every key is present.
  std::map<std::string, ValueSource> sources;
  std::string config_path;  // empty when no file was read
  // consumer_name, or the generated default; fixed once at load so every client agrees.
  std::string client_name;

  std::string topic_name() const { return topic_prefix + ".stream"; }
  std::string dlq_topic_name() const { return topic_name() + dlq_topic_suffix; }
};

// What the command line contributes. -X key=value lands in `properties` (librdkafka passthrough).
struct ConfigFlags {
  std::optional<std::string> config_path;  // --config / -c
  std::optional<std::string> bootstrap_servers;
  std::optional<std::string> topic_prefix;
  std::optional<std::string> consumer_group;
  ClientProperties properties;
};

// Loads and validates. Path: flags.config_path, else $EVBUS_CONFIG, else ./evbus.yaml if it
// exists, else defaults only. `environment` is the process environment (injected for tests).
// Throws Error{invalid_input} naming file:line, key and the reason (and the nearest valid key
// for unknown keys); Error{invalid_input} when an explicit config file is missing.
BusConfig load_config(const ConfigFlags& flags,
                      const std::map<std::string, std::string>& environment);

// Convenience: the real process environment.
std::map<std::string, std::string> process_environment();

// librdkafka properties derived from the config (contract §6 mapping plus evbus choices:
// partitioner=murmur2_random, enable.idempotence when acks=all, client.id, SASL/SSL mapping),
// followed by the `librdkafka:` passthrough and -X flags.
ClientProperties producer_properties(const BusConfig& config);
ClientProperties consumer_properties(const BusConfig& config);
// For admin and metadata-only clients (no producer/consumer specific keys).
ClientProperties common_properties(const BusConfig& config);

// `evbus config show`: every key, its effective value and its source; secrets as "***".
// format: "text" (aligned table) or "json".
void write_config_show(std::ostream& out, const BusConfig& config, std::string_view format);

// Warnings worth printing (e.g. snappy/lz4/zstd need an extra package on eventsource-py
// consumers; PLAINTEXT in use with SASL credentials set). Never errors.
std::vector<std::string> config_warnings(const BusConfig& config);

}  // namespace evbus
