// Loads the bus config: defaults < YAML file < EVBUS_<KEY> environment < flags, then validates it
// and derives the librdkafka client properties. Every error names where the bad value came from
// (file:line, environment variable or flag), because a config error without a place is a guessing
// game for the user.
#include "core/config.hpp"

#include <fmt/format.h>
#include <librdkafka/rdkafka.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string_view>
#include <variant>

#include "core/error.hpp"

extern char** environ;  // POSIX; declared here too because <unistd.h> only has it with _GNU_SOURCE

namespace evbus {

std::string_view to_string(ValueSource source) {
  switch (source) {
    case ValueSource::default_value:
      return "default";
    case ValueSource::file:
      return "file";
    case ValueSource::environment:
      return "environment";
    case ValueSource::flag:
      return "flag";
  }
  return "unknown";
}

namespace {

// ---------------------------------------------------------------------------------------------
// The key table: one row per KafkaEventBusConfig field, in eventsource-py's field order. That
// order is also the order of `config show`, so diffs against the Python config read naturally.

using Field = std::variant<std::string BusConfig::*, std::optional<std::string> BusConfig::*,
                           int BusConfig::*, double BusConfig::*, bool BusConfig::*>;

struct KeySpec {
  std::string_view name;
  Field field;
};

constexpr std::array<KeySpec, 33> kKeys{{
    {"bootstrap_servers", &BusConfig::bootstrap_servers},
    {"topic_prefix", &BusConfig::topic_prefix},
    {"consumer_group", &BusConfig::consumer_group},
    {"consumer_name", &BusConfig::consumer_name},
    {"acks", &BusConfig::acks},
    {"compression_type", &BusConfig::compression_type},
    {"producer_max_batch_bytes", &BusConfig::producer_max_batch_bytes},
    {"linger_ms", &BusConfig::linger_ms},
    {"auto_offset_reset", &BusConfig::auto_offset_reset},
    {"session_timeout_ms", &BusConfig::session_timeout_ms},
    {"heartbeat_interval_ms", &BusConfig::heartbeat_interval_ms},
    {"max_poll_interval_ms", &BusConfig::max_poll_interval_ms},
    {"fetch_max_bytes", &BusConfig::fetch_max_bytes},
    {"max_partition_fetch_bytes", &BusConfig::max_partition_fetch_bytes},
    {"max_retries", &BusConfig::max_retries},
    {"retry_base_delay", &BusConfig::retry_base_delay},
    {"retry_max_delay", &BusConfig::retry_max_delay},
    {"retry_jitter", &BusConfig::retry_jitter},
    {"enable_dlq", &BusConfig::enable_dlq},
    {"dlq_topic_suffix", &BusConfig::dlq_topic_suffix},
    {"dlq_consumer_group", &BusConfig::dlq_consumer_group},
    {"dlq_max_replay_attempts", &BusConfig::dlq_max_replay_attempts},
    {"security_protocol", &BusConfig::security_protocol},
    {"sasl_mechanism", &BusConfig::sasl_mechanism},
    {"sasl_username", &BusConfig::sasl_username},
    {"sasl_password", &BusConfig::sasl_password},
    {"ssl_cafile", &BusConfig::ssl_cafile},
    {"ssl_certfile", &BusConfig::ssl_certfile},
    {"ssl_keyfile", &BusConfig::ssl_keyfile},
    {"ssl_check_hostname", &BusConfig::ssl_check_hostname},
    {"enable_tracing", &BusConfig::enable_tracing},
    {"enable_metrics", &BusConfig::enable_metrics},
    {"shutdown_timeout", &BusConfig::shutdown_timeout},
}};

// eventsource-py 0.8.x calls producer_max_batch_bytes `batch_size`; accepting both lets one file
// serve both library generations.
constexpr std::string_view kBatchSizeAlias = "batch_size";
constexpr std::string_view kBatchKey = "producer_max_batch_bytes";
constexpr std::string_view kSchemasKey = "schemas";
constexpr std::string_view kLibrdkafkaKey = "librdkafka";
constexpr std::string_view kEnvPrefix = "EVBUS_";
// librdkafka's default for message.max.bytes: a consumer refuses a smaller fetch.max.bytes.
constexpr int kLibrdkafkaMessageMaxBytes = 1000000;
// librdkafka's default for message.timeout.ms: a producer refuses a linger.ms at or above it.
constexpr int kLibrdkafkaMessageTimeoutMs = 300000;
// Kafka's limit on topic name length.
constexpr std::size_t kMaxTopicNameLength = 249;

const KeySpec* find_key(std::string_view name) {
  for (const KeySpec& spec : kKeys) {
    if (spec.name == name) return &spec;
  }
  return nullptr;
}

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

std::string_view expected_type(const Field& field) {
  return std::visit(Overloaded{
                        [](std::string BusConfig::*) { return std::string_view("a string"); },
                        [](std::optional<std::string> BusConfig::*) {
                          return std::string_view("a string or null");
                        },
                        [](int BusConfig::*) { return std::string_view("an integer"); },
                        [](double BusConfig::*) { return std::string_view("a number"); },
                        [](bool BusConfig::*) { return std::string_view("true or false"); },
                    },
                    field);
}

// ---------------------------------------------------------------------------------------------
// Places and errors.

// Where a value came from: a file and line, an environment variable, or a flag (line 0).
struct Place {
  std::string where;
  int line = 0;
};

[[noreturn]] void fail(const Place& place, const std::string& message) {
  throw Error(ErrorKind::invalid_input, at_place(place.where, place.line, message));
}

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string upper(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trim(std::string_view text) {
  const auto is_space = [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; };
  while (!text.empty() && is_space(text.front())) text.remove_prefix(1);
  while (!text.empty() && is_space(text.back())) text.remove_suffix(1);
  return text;
}

// Optimal-string-alignment distance (Levenshtein plus adjacent swaps), so that both typos like
// `bootstrap_server` and transpositions like `ligner_ms` find their key.
std::size_t edit_distance(std::string_view a, std::string_view b) {
  const std::size_t rows = a.size() + 1;
  const std::size_t cols = b.size() + 1;
  std::vector<std::size_t> d(rows * cols);
  const auto at = [cols](std::size_t i, std::size_t j) { return i * cols + j; };
  for (std::size_t i = 0; i < rows; ++i) d[at(i, 0)] = i;
  for (std::size_t j = 0; j < cols; ++j) d[at(0, j)] = j;
  for (std::size_t i = 1; i < rows; ++i) {
    for (std::size_t j = 1; j < cols; ++j) {
      const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[at(i, j)] =
          std::min({d[at(i - 1, j)] + 1, d[at(i, j - 1)] + 1, d[at(i - 1, j - 1)] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[at(i, j)] = std::min(d[at(i, j)], d[at(i - 2, j - 2)] + 1);
      }
    }
  }
  return d[at(rows - 1, cols - 1)];
}

// Every name accepted at the top level of the file.
std::vector<std::string_view> top_level_names() {
  std::vector<std::string_view> names;
  for (const KeySpec& spec : kKeys) names.push_back(spec.name);
  names.insert(names.end(), {kBatchSizeAlias, kSchemasKey, kLibrdkafkaKey});
  return names;
}

// The nearest top-level key, only when it is close enough to be a plausible typo.
std::optional<std::string_view> nearest_key(std::string_view unknown) {
  const std::string wanted = lower(unknown);
  const std::size_t allowed = wanted.size() <= 4 ? 1 : wanted.size() <= 10 ? 2 : 3;
  std::optional<std::string_view> best;
  std::size_t best_distance = allowed + 1;
  for (std::string_view name : top_level_names()) {
    const std::size_t distance = edit_distance(wanted, name);
    if (distance < best_distance) {
      best = name;
      best_distance = distance;
    }
  }
  return best;
}

// ---------------------------------------------------------------------------------------------
// librdkafka: a scratch conf checks each property as it is loaded, and the property table gives
// each property's scope (producer, consumer or both) so that clients only get their own keys.

struct ConfDeleter {
  void operator()(rd_kafka_conf_t* conf) const { rd_kafka_conf_destroy(conf); }
};
using ConfPtr = std::unique_ptr<rd_kafka_conf_t, ConfDeleter>;

ConfPtr new_scratch_conf() {
  return ConfPtr(rd_kafka_conf_new());
}

// Returns librdkafka's error text, or nullopt when it accepted the property.
std::optional<std::string> librdkafka_rejects(rd_kafka_conf_t* conf, const std::string& name,
                                              const std::string& value) {
  std::array<char, 512> error{};
  if (rd_kafka_conf_set(conf, name.c_str(), value.c_str(), error.data(), error.size()) ==
      RD_KAFKA_CONF_OK) {
    return std::nullopt;
  }
  return std::string(trim(error.data()));
}

struct PropertyInfo {
  char scope = '*';       // '*' both, 'P' producer only, 'C' consumer only
  std::string canonical;  // the property an alias stands for, else the name itself
};

std::vector<std::string_view> split_view(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  while (true) {
    const std::size_t end = text.find(separator, start);
    parts.push_back(text.substr(start, end == std::string_view::npos ? end : end - start));
    if (end == std::string_view::npos) return parts;
    start = end + 1;
  }
}

// One row of rd_kafka_conf_properties_show's markdown table:
// "name | C/P | range | default | importance | description".
void parse_property_row(std::string_view row, std::map<std::string, PropertyInfo>& table) {
  const auto cells = split_view(row, '|');
  if (cells.size() < 6) return;
  const std::string_view name = trim(cells[0]);
  const std::string_view scope = trim(cells[1]);
  if (name.empty() || (scope != "*" && scope != "C" && scope != "P")) return;
  PropertyInfo info{scope[0], std::string(name)};
  constexpr std::string_view kAlias = "Alias for `";
  const std::string_view description = trim(cells.back());
  if (description.starts_with(kAlias)) {
    const std::size_t end = description.find('`', kAlias.size());
    if (end != std::string_view::npos) {
      info.canonical = std::string(description.substr(kAlias.size(), end - kAlias.size()));
    }
  }
  table.emplace(std::string(name), std::move(info));
}

std::map<std::string, PropertyInfo> read_property_table() {
  char* buffer = nullptr;
  std::size_t size = 0;
  FILE* stream = open_memstream(&buffer, &size);
  if (stream == nullptr) return {};
  rd_kafka_conf_properties_show(stream);
  std::fclose(stream);
  const std::unique_ptr<char, decltype(&std::free)> owned(buffer, &std::free);
  std::map<std::string, PropertyInfo> table;
  std::istringstream lines(std::string(buffer, size));
  for (std::string row; std::getline(lines, row);) parse_property_row(row, table);
  return table;
}

// librdkafka publishes its property table only as text; it is parsed once and never changes
// (it describes the linked library), so a function-local constant is not hidden state.
const std::map<std::string, PropertyInfo>& property_table() {
  static const std::map<std::string, PropertyInfo> table = read_property_table();
  return table;
}

PropertyInfo property_info(const std::string& name) {
  const auto& table = property_table();
  const auto found = table.find(name);
  return found == table.end() ? PropertyInfo{'*', name} : found->second;
}

// ---------------------------------------------------------------------------------------------
// Typed parsing, shared by the file and the environment so both follow the same rules.

std::optional<int> parse_int(std::string_view text) {
  text = trim(text);
  if (text.starts_with('+')) text.remove_prefix(1);
  long long value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc() || end != text.data() + text.size()) return {};
  if (value < std::numeric_limits<int>::min() || value > std::numeric_limits<int>::max()) return {};
  return static_cast<int>(value);
}

std::optional<double> parse_double(std::string_view text) {
  text = trim(text);
  if (text.starts_with('+')) text.remove_prefix(1);
  double value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc() || end != text.data() + text.size()) return {};
  if (!std::isfinite(value)) return {};
  return value;
}

// YAML 1.1 spellings as well as true/false, since yaml-cpp users write `yes`; 1/0 for env vars.
std::optional<bool> parse_bool(std::string_view text) {
  const std::string word = lower(trim(text));
  if (word == "true" || word == "yes" || word == "on" || word == "1") return true;
  if (word == "false" || word == "no" || word == "off" || word == "0") return false;
  return {};
}

[[noreturn]] void fail_type(const Place& place, std::string_view key, const KeySpec& spec,
                            std::string_view got) {
  fail(place, fmt::format("key '{}' expects {}, got {}", key, expected_type(spec.field), got));
}

std::string single_quoted(std::string_view text) {
  return fmt::format("'{}'", text);
}

// Stores one value; `text` is nullopt for a YAML null. `key` is the name as the user wrote it
// (batch_size or producer_max_batch_bytes), for the error message.
void assign(BusConfig& config, const KeySpec& spec, std::string_view key,
            const std::optional<std::string>& text, const Place& place) {
  if (!text && !std::holds_alternative<std::optional<std::string> BusConfig::*>(spec.field)) {
    fail_type(place, key, spec, "null");
  }
  std::visit(Overloaded{
                 [&](std::string BusConfig::*member) { config.*member = *text; },
                 [&](std::optional<std::string> BusConfig::*member) {
                   // An empty value means "unset": `EVBUS_SASL_MECHANISM=` clears a file value.
                   config.*member = text && !text->empty() ? text : std::nullopt;
                 },
                 [&](int BusConfig::*member) {
                   const auto value = parse_int(*text);
                   if (!value) fail_type(place, key, spec, single_quoted(*text));
                   config.*member = *value;
                 },
                 [&](double BusConfig::*member) {
                   const auto value = parse_double(*text);
                   if (!value) fail_type(place, key, spec, single_quoted(*text));
                   config.*member = *value;
                 },
                 [&](bool BusConfig::*member) {
                   const auto value = parse_bool(*text);
                   if (!value) fail_type(place, key, spec, single_quoted(*text));
                   config.*member = *value;
                 },
             },
             spec.field);
}

// ---------------------------------------------------------------------------------------------
// ${VAR} expansion, for secrets kept out of the file.

bool is_variable_name(std::string_view name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0]))) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_';
  });
}

std::string expand_variable(std::string_view reference, const std::string& key,
                            const std::map<std::string, std::string>& environment,
                            const Place& place) {
  const std::size_t default_at = reference.find(":-");
  const std::string_view name = reference.substr(0, default_at);
  if (!is_variable_name(name)) {
    fail(place,
         fmt::format("key '{}': '${{{}}}' is not a valid variable reference", key, reference));
  }
  const auto found = environment.find(std::string(name));
  if (default_at != std::string_view::npos) {
    // As in the shell, ${VAR:-default} also replaces a VAR that is set but empty.
    if (found == environment.end() || found->second.empty()) {
      return std::string(reference.substr(default_at + 2));
    }
    return found->second;
  }
  if (found == environment.end()) {
    fail(place,
         fmt::format("key '{}': environment variable '{}' is not set (write ${{{}:-default}} "
                     "to give a default)",
                     key, name, name));
  }
  return found->second;
}

// Replaces ${VAR} and ${VAR:-default}; `$$` is a literal dollar; any other `$` is kept as is.
std::string expand(std::string_view text, const std::string& key,
                   const std::map<std::string, std::string>& environment, const Place& place) {
  std::string out;
  std::size_t i = 0;
  while (i < text.size()) {
    if (text[i] != '$' || i + 1 == text.size()) {
      out += text[i++];
    } else if (text[i + 1] == '$') {
      out += '$';
      i += 2;
    } else if (text[i + 1] == '{') {
      const std::size_t close = text.find('}', i + 2);
      if (close == std::string_view::npos) {
        fail(place,
             fmt::format("key '{}': '${{' without a closing '}}' (write $$ for a literal $)", key));
      }
      out += expand_variable(text.substr(i + 2, close - i - 2), key, environment, place);
      i = close + 1;
    } else {
      out += text[i++];
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The loader: the config being built plus where each value came from.

struct Loader {
  const std::map<std::string, std::string>& environment;
  BusConfig config;
  std::map<std::string, Place> places;  // only keys that did not keep their default
  ConfPtr scratch = new_scratch_conf();

  void set_source(const std::string& key, ValueSource source, Place place) {
    config.sources[key] = source;
    places[key] = std::move(place);
  }
  Place place_of(const std::string& key) const {
    const auto found = places.find(key);
    return found == places.end() ? Place{} : found->second;
  }
  // For a rule between two keys: blame the one the user set (the first if both were set).
  Place place_of_either(const std::string& first, const std::string& second) const {
    return places.contains(first) ? place_of(first) : place_of(second);
  }
};

void add_passthrough(Loader& loader, const std::string& name, const std::string& value,
                     ValueSource source, const Place& place) {
  if (name.empty()) fail(place, "empty librdkafka property name");
  if (const auto error = librdkafka_rejects(loader.scratch.get(), name, value)) {
    fail(place, fmt::format("librdkafka property '{}' rejected: {}", name, *error));
  }
  // Later sources replace earlier ones and move to the end, so that the last setting of a
  // property (or of one of its aliases) is also the last one librdkafka applies.
  auto& properties = loader.config.librdkafka;
  std::erase_if(properties, [&](const auto& property) { return property.first == name; });
  properties.emplace_back(name, value);
  loader.set_source("librdkafka." + name, source, place);
}

std::vector<std::string> resolve_schema_paths(const std::vector<std::string>& paths,
                                              const std::filesystem::path& base,
                                              const Place& place) {
  std::vector<std::string> resolved;
  for (const std::string& path : paths) {
    if (path.empty()) fail(place, "key 'schemas': empty path");
    std::filesystem::path full(path);
    if (full.is_relative() && !base.empty()) full = (base / full).lexically_normal();
    std::error_code error;
    if (!std::filesystem::exists(full, error)) {
      fail(place, fmt::format("key 'schemas': '{}' does not exist", full.string()));
    }
    resolved.push_back(full.string());
  }
  return resolved;
}

// ---------------------------------------------------------------------------------------------
// Layer 1: the YAML file.

int line_of(const YAML::Node& node) {
  return node.Mark().line >= 0 ? node.Mark().line + 1 : 0;
}

std::string node_kind(const YAML::Node& node) {
  if (node.IsSequence()) return "a list";
  if (node.IsMap()) return "a map";
  return "null";
}

YAML::Node parse_yaml_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail({path, 0}, "cannot read the config file");
  std::ostringstream content;
  content << in.rdbuf();
  try {
    return YAML::Load(content.str());
  } catch (const YAML::Exception& e) {
    fail({path, e.mark.line >= 0 ? e.mark.line + 1 : 0}, "YAML syntax error: " + e.msg);
  }
}

// A scalar's text after ${VAR} expansion; nullopt for null. Lists and maps are type errors.
std::optional<std::string> file_scalar(const Loader& loader, const YAML::Node& value,
                                       const std::string& key, std::string_view expected,
                                       const Place& place) {
  if (value.IsNull()) return std::nullopt;
  if (!value.IsScalar()) {
    fail(place, fmt::format("key '{}' expects {}, got {}", key, expected, node_kind(value)));
  }
  return expand(value.Scalar(), key, loader.environment, place);
}

void load_file_schemas(Loader& loader, const YAML::Node& value, const Place& file_place) {
  std::vector<std::string> paths;
  const std::string key(kSchemasKey);
  constexpr std::string_view kExpected = "a path or a list of paths";
  if (value.IsSequence()) {
    for (const YAML::Node& item : value) {
      const Place item_place{file_place.where, line_of(item) ? line_of(item) : file_place.line};
      const auto text = file_scalar(loader, item, key, kExpected, item_place);
      if (!text) fail(item_place, "key 'schemas': a list item is null");
      paths.push_back(*text);
    }
  } else if (const auto text = file_scalar(loader, value, key, kExpected, file_place)) {
    paths.push_back(*text);
  }
  const auto base = std::filesystem::path(file_place.where).parent_path();
  loader.config.schemas = resolve_schema_paths(paths, base, file_place);
  loader.set_source(key, ValueSource::file, file_place);
}

void load_file_librdkafka(Loader& loader, const YAML::Node& value, const Place& file_place) {
  if (value.IsNull()) return;
  if (!value.IsMap()) {
    fail(file_place,
         fmt::format("key 'librdkafka' expects a map of librdkafka properties, got {}",
                     value.IsScalar() ? single_quoted(value.Scalar()) : node_kind(value)));
  }
  std::map<std::string, int> seen;
  for (const auto& entry : value) {
    const Place place{file_place.where, line_of(entry.first)};
    const std::string name = entry.first.Scalar();
    if (const auto [earlier, fresh] = seen.emplace(name, place.line); !fresh) {
      fail(place, fmt::format("duplicate librdkafka property '{}' (first given on line {})", name,
                              earlier->second));
    }
    const std::string key = "librdkafka." + name;
    const auto text = file_scalar(loader, entry.second, key, "a scalar value", place);
    if (!text) fail(place, fmt::format("key '{}' expects a scalar value, got null", key));
    add_passthrough(loader, name, *text, ValueSource::file, place);
  }
}

[[noreturn]] void fail_unknown_key(const Place& place, const std::string& name) {
  if (const auto suggestion = nearest_key(name)) {
    fail(place, fmt::format("unknown key '{}'; did you mean '{}'?", name, *suggestion));
  }
  if (property_table().contains(name)) {
    fail(place,
         fmt::format("unknown key '{}'; librdkafka properties go under 'librdkafka:'", name));
  }
  fail(place, fmt::format("unknown key '{}'; see docs/CONFIG.md for the valid keys", name));
}

void load_file_key(Loader& loader, const std::string& name, const YAML::Node& value,
                   const Place& place) {
  if (name == kSchemasKey) return load_file_schemas(loader, value, place);
  if (name == kLibrdkafkaKey) return load_file_librdkafka(loader, value, place);
  const KeySpec* spec = find_key(name == kBatchSizeAlias ? kBatchKey : std::string_view(name));
  if (spec == nullptr) fail_unknown_key(place, name);
  const auto text = file_scalar(loader, value, name, expected_type(spec->field), place);
  assign(loader.config, *spec, name, text, place);
  loader.set_source(std::string(spec->name), ValueSource::file, place);
}

void load_file(Loader& loader, const std::string& path) {
  const YAML::Node root = parse_yaml_file(path);
  loader.config.config_path = path;
  if (root.IsNull()) return;  // an empty file (or only comments) means all defaults
  if (!root.IsMap()) {
    fail({path, line_of(root)},
         "the config file must be a map of keys (key: value), got " +
             (root.IsScalar() ? single_quoted(root.Scalar()) : node_kind(root)));
  }
  std::map<std::string, int> seen;
  for (const auto& entry : root) {
    const Place place{path, line_of(entry.first)};
    if (!entry.first.IsScalar()) fail(place, "a key must be a plain name");
    const std::string name = entry.first.Scalar();
    if (const auto [earlier, fresh] = seen.emplace(name, place.line); !fresh) {
      fail(place,
           fmt::format("duplicate key '{}' (first given on line {})", name, earlier->second));
    }
    load_file_key(loader, name, entry.second, place);
  }
  if (seen.contains(std::string(kBatchSizeAlias)) && seen.contains(std::string(kBatchKey))) {
    const int line = std::max(seen[std::string(kBatchSizeAlias)], seen[std::string(kBatchKey)]);
    fail({path, line},
         "give either 'batch_size' or 'producer_max_batch_bytes', not both (they "
         "are the same setting; batch_size is the eventsource-py 0.8 name)");
  }
}

// Layer 0: which file, if any.
std::optional<std::string> choose_config_path(const ConfigFlags& flags,
                                              const std::map<std::string, std::string>& environment,
                                              Place& named_by) {
  if (flags.config_path && !flags.config_path->empty()) {
    named_by = {"--config", 0};
    return flags.config_path;
  }
  if (const auto found = environment.find("EVBUS_CONFIG");
      found != environment.end() && !found->second.empty()) {
    named_by = {"EVBUS_CONFIG", 0};
    return found->second;
  }
  std::error_code error;
  if (std::filesystem::is_regular_file("evbus.yaml", error)) return "evbus.yaml";
  return std::nullopt;
}

void check_named_file(const std::string& path, const Place& named_by) {
  std::error_code error;
  if (!std::filesystem::exists(path, error)) {
    fail(named_by, fmt::format("config file '{}' does not exist", path));
  }
  if (std::filesystem::is_directory(path, error)) {
    fail(named_by, fmt::format("config file '{}' is a directory", path));
  }
}

// ---------------------------------------------------------------------------------------------
// Layer 2: EVBUS_<KEY> environment variables.

std::optional<std::string> env_value(const Loader& loader, const std::string& variable) {
  const auto found = loader.environment.find(variable);
  if (found == loader.environment.end()) return std::nullopt;
  return found->second;
}

std::string env_name(std::string_view key) {
  return std::string(kEnvPrefix) + upper(key);
}

void load_env_schemas(Loader& loader) {
  const std::string variable = env_name(kSchemasKey);
  const auto value = env_value(loader, variable);
  if (!value) return;
  std::vector<std::string> paths;
  for (std::string_view part : split_view(*value, ',')) {
    if (!trim(part).empty()) paths.emplace_back(trim(part));
  }
  // Relative paths stay relative to the working directory, where the variable was written.
  const Place place{variable, 0};
  loader.config.schemas = resolve_schema_paths(paths, {}, place);
  loader.set_source(std::string(kSchemasKey), ValueSource::environment, place);
}

void load_environment(Loader& loader) {
  const auto batch_alias = env_value(loader, env_name(kBatchSizeAlias));
  if (batch_alias && env_value(loader, env_name(kBatchKey))) {
    fail({env_name(kBatchSizeAlias), 0},
         fmt::format("set either {} or {}, not both", env_name(kBatchSizeAlias),
                     env_name(kBatchKey)));
  }
  for (const KeySpec& spec : kKeys) {
    std::string variable = env_name(spec.name);
    auto value = env_value(loader, variable);
    std::string_view key = spec.name;
    if (!value && spec.name == kBatchKey && batch_alias) {
      variable = env_name(kBatchSizeAlias);
      value = batch_alias;
      key = kBatchSizeAlias;
    }
    if (!value) continue;
    const Place place{variable, 0};
    assign(loader.config, spec, key, value, place);
    loader.set_source(std::string(spec.name), ValueSource::environment, place);
  }
  load_env_schemas(loader);
}

// ---------------------------------------------------------------------------------------------
// Layer 3: flags.

void load_flag(Loader& loader, std::string_view key, const std::optional<std::string>& value,
               std::string_view flag) {
  if (!value) return;
  const Place place{std::string(flag), 0};
  assign(loader.config, *find_key(key), key, value, place);
  loader.set_source(std::string(key), ValueSource::flag, place);
}

void load_flags(Loader& loader, const ConfigFlags& flags) {
  load_flag(loader, "bootstrap_servers", flags.bootstrap_servers, "--bootstrap-servers");
  load_flag(loader, "topic_prefix", flags.topic_prefix, "--topic-prefix");
  load_flag(loader, "consumer_group", flags.consumer_group, "--group");
  for (const auto& [name, value] : flags.properties) {
    // The value stays out of the place: -X often carries passwords.
    add_passthrough(loader, name, value, ValueSource::flag, {"-X " + name, 0});
  }
}

// ---------------------------------------------------------------------------------------------
// Normalising and validating the merged config.

// Enumerations are matched case-insensitively and stored in their canonical spelling.
void normalize(BusConfig& config) {
  config.acks = lower(config.acks);
  config.auto_offset_reset = lower(config.auto_offset_reset);
  config.security_protocol = upper(config.security_protocol);
  if (config.sasl_mechanism) config.sasl_mechanism = upper(*config.sasl_mechanism);
  if (config.compression_type) {
    config.compression_type = lower(*config.compression_type);
    if (config.compression_type == "none" || config.compression_type == "null") {
      config.compression_type = std::nullopt;
    }
  }
}

std::string join(const std::vector<std::string_view>& items, std::string_view separator) {
  std::string out;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += separator;
    out += items[i];
  }
  return out;
}

void check_one_of(const Loader& loader, const std::string& key, const std::string& value,
                  const std::vector<std::string_view>& allowed) {
  if (std::find(allowed.begin(), allowed.end(), value) == allowed.end()) {
    fail(loader.place_of(key),
         fmt::format("key '{}' must be one of {}; got '{}'", key, join(allowed, ", "), value));
  }
}

void check_enumerations(const Loader& loader) {
  const BusConfig& c = loader.config;
  check_one_of(loader, "acks", c.acks, {"all", "-1", "0", "1"});
  if (c.compression_type) {
    check_one_of(loader, "compression_type", *c.compression_type,
                 {"none", "null", "gzip", "snappy", "lz4", "zstd"});
  }
  check_one_of(loader, "auto_offset_reset", c.auto_offset_reset, {"earliest", "latest"});
  check_one_of(loader, "security_protocol", c.security_protocol,
               {"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"});
  if (c.sasl_mechanism) {
    check_one_of(loader, "sasl_mechanism", *c.sasl_mechanism,
                 {"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"});
  }
}

void check_at_least(const Loader& loader, const std::string& key, int value, int minimum) {
  if (value < minimum) {
    fail(loader.place_of(key), fmt::format("key '{}' must be {}, got {}", key,
                                           minimum == 0 ? "0 or more" : "greater than 0", value));
  }
}

void check_sizes_and_timeouts(const Loader& loader) {
  const BusConfig& c = loader.config;
  for (const auto& [key, value] : std::initializer_list<std::pair<std::string, int>>{
           {"producer_max_batch_bytes", c.producer_max_batch_bytes},
           {"session_timeout_ms", c.session_timeout_ms},
           {"heartbeat_interval_ms", c.heartbeat_interval_ms},
           {"max_poll_interval_ms", c.max_poll_interval_ms},
           {"fetch_max_bytes", c.fetch_max_bytes},
           {"max_partition_fetch_bytes", c.max_partition_fetch_bytes}}) {
    check_at_least(loader, key, value, 1);
  }
  check_at_least(loader, "linger_ms", c.linger_ms, 0);
  check_at_least(loader, "max_retries", c.max_retries, 0);
  check_at_least(loader, "dlq_max_replay_attempts", c.dlq_max_replay_attempts, 0);
  if (c.heartbeat_interval_ms >= c.session_timeout_ms) {
    fail(loader.place_of_either("heartbeat_interval_ms", "session_timeout_ms"),
         fmt::format("heartbeat_interval_ms ({}) must be less than session_timeout_ms ({})",
                     c.heartbeat_interval_ms, c.session_timeout_ms));
  }
  // librdkafka refuses to create such a consumer; say so here, with the place.
  if (c.max_poll_interval_ms < c.session_timeout_ms) {
    fail(loader.place_of_either("max_poll_interval_ms", "session_timeout_ms"),
         fmt::format("max_poll_interval_ms ({}) must be at least session_timeout_ms ({})",
                     c.max_poll_interval_ms, c.session_timeout_ms));
  }
}

void check_retry_policy(const Loader& loader) {
  const BusConfig& c = loader.config;
  if (!(c.retry_base_delay > 0)) {
    fail(loader.place_of("retry_base_delay"),
         fmt::format("key 'retry_base_delay' must be greater than 0, got {}", c.retry_base_delay));
  }
  if (!(c.retry_max_delay > 0)) {
    fail(loader.place_of("retry_max_delay"),
         fmt::format("key 'retry_max_delay' must be greater than 0, got {}", c.retry_max_delay));
  }
  if (c.retry_max_delay < c.retry_base_delay) {
    fail(loader.place_of_either("retry_max_delay", "retry_base_delay"),
         fmt::format("retry_max_delay ({}) must be at least retry_base_delay ({})",
                     c.retry_max_delay, c.retry_base_delay));
  }
  if (c.retry_jitter < 0 || c.retry_jitter > 1) {
    fail(loader.place_of("retry_jitter"),
         fmt::format("key 'retry_jitter' must be between 0 and 1, got {}", c.retry_jitter));
  }
  if (!(c.shutdown_timeout > 0)) {
    fail(loader.place_of("shutdown_timeout"),
         fmt::format("key 'shutdown_timeout' must be greater than 0, got {}", c.shutdown_timeout));
  }
}

bool is_topic_text(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '_' || c == '-';
  });
}

void check_topic_part(const Loader& loader, const std::string& key, const std::string& value) {
  if (value.empty()) fail(loader.place_of(key), fmt::format("key '{}' must not be empty", key));
  if (!is_topic_text(value)) {
    fail(loader.place_of(key),
         fmt::format("key '{}' may only contain letters, digits, '.', '_' and '-' (it becomes "
                     "part of a Kafka topic name); got '{}'",
                     key, value));
  }
}

void check_names(const Loader& loader) {
  const BusConfig& c = loader.config;
  check_topic_part(loader, "topic_prefix", c.topic_prefix);
  check_topic_part(loader, "dlq_topic_suffix", c.dlq_topic_suffix);
  if (c.dlq_topic_name().size() > kMaxTopicNameLength) {
    fail(loader.place_of_either("topic_prefix", "dlq_topic_suffix"),
         fmt::format("topic name '{}' is longer than Kafka's limit of {} characters",
                     c.dlq_topic_name(), kMaxTopicNameLength));
  }
  if (c.consumer_group.empty()) {
    fail(loader.place_of("consumer_group"), "key 'consumer_group' must not be empty");
  }
  if (trim(c.bootstrap_servers).empty()) {
    fail(loader.place_of("bootstrap_servers"), "key 'bootstrap_servers' must not be empty");
  }
}

bool is_sasl(const BusConfig& config) {
  return config.security_protocol.starts_with("SASL_");
}
bool is_ssl(const BusConfig& config) {
  return config.security_protocol.ends_with("SSL");
}

void check_security(const Loader& loader) {
  const BusConfig& c = loader.config;
  if (is_sasl(c)) {
    if (!c.sasl_mechanism) {
      fail(loader.place_of("security_protocol"),
           fmt::format("security_protocol {} needs sasl_mechanism (PLAIN, SCRAM-SHA-256 or "
                       "SCRAM-SHA-512)",
                       c.security_protocol));
    }
    if (!c.sasl_username || !c.sasl_password) {
      fail(loader.place_of("security_protocol"),
           fmt::format("security_protocol {} needs a non-empty sasl_username and sasl_password",
                       c.security_protocol));
    }
  }
  if (c.ssl_certfile.has_value() != c.ssl_keyfile.has_value()) {
    fail(
        loader.place_of_either("ssl_certfile", "ssl_keyfile"),
        "ssl_certfile and ssl_keyfile must be given together (a client certificate needs its key)");
  }
}

void validate(const Loader& loader) {
  check_enumerations(loader);
  check_sizes_and_timeouts(loader);
  check_retry_policy(loader);
  check_names(loader);
  check_security(loader);
}

// ---------------------------------------------------------------------------------------------
// Derived librdkafka properties. Each remembers the key it came from, so that a value librdkafka
// rejects (e.g. linger_ms above its 900000 limit) is reported at that key's place.

struct Derived {
  std::string name;
  std::string value;
  std::string_view key;  // empty for evbus's fixed choices
};

std::vector<Derived> derived_common(const BusConfig& c) {
  std::vector<Derived> out{
      {"bootstrap.servers", c.bootstrap_servers, "bootstrap_servers"},
      {"client.id", c.client_name, "consumer_name"},
      {"security.protocol", lower(c.security_protocol), "security_protocol"},
  };
  // SASL and SSL keys only where the protocol uses them; config_warnings() reports the rest.
  if (is_sasl(c)) {
    if (c.sasl_mechanism) out.push_back({"sasl.mechanisms", *c.sasl_mechanism, "sasl_mechanism"});
    if (c.sasl_username) out.push_back({"sasl.username", *c.sasl_username, "sasl_username"});
    if (c.sasl_password) out.push_back({"sasl.password", *c.sasl_password, "sasl_password"});
  }
  if (is_ssl(c)) {
    if (c.ssl_cafile) out.push_back({"ssl.ca.location", *c.ssl_cafile, "ssl_cafile"});
    if (c.ssl_certfile) {
      out.push_back({"ssl.certificate.location", *c.ssl_certfile, "ssl_certfile"});
    }
    if (c.ssl_keyfile) out.push_back({"ssl.key.location", *c.ssl_keyfile, "ssl_keyfile"});
    out.push_back({"ssl.endpoint.identification.algorithm", c.ssl_check_hostname ? "https" : "none",
                   "ssl_check_hostname"});
  }
  return out;
}

std::vector<Derived> derived_producer(const BusConfig& c) {
  const bool acks_all = c.acks == "all" || c.acks == "-1";
  return {
      // eventsource-py (aiokafka) partitions with murmur2 like the Java client; librdkafka's
      // default is CRC32-based, which would put an aggregate's events on another partition.
      {"partitioner", "murmur2_random", ""},
      {"acks", c.acks, "acks"},
      // Idempotence needs acks=all; with it, retries cannot reorder or duplicate an aggregate.
      {"enable.idempotence", acks_all ? "true" : "false", "acks"},
      {"compression.codec", c.compression_type.value_or("none"), "compression_type"},
      {"batch.size", std::to_string(c.producer_max_batch_bytes), "producer_max_batch_bytes"},
      {"linger.ms", std::to_string(c.linger_ms), "linger_ms"},
  };
}

std::vector<Derived> derived_consumer(const BusConfig& c) {
  std::vector<Derived> out{{"group.id", c.consumer_group, "consumer_group"}};
  // Only an explicit name makes a static member: a generated one would leave a ghost member
  // behind every run until session_timeout_ms expires.
  if (c.consumer_name) out.push_back({"group.instance.id", *c.consumer_name, "consumer_name"});
  out.insert(
      out.end(),
      {
          // evbus commits only after handling, like eventsource-py.
          {"enable.auto.commit", "false", ""},
          {"auto.offset.reset", c.auto_offset_reset, "auto_offset_reset"},
          {"session.timeout.ms", std::to_string(c.session_timeout_ms), "session_timeout_ms"},
          {"heartbeat.interval.ms", std::to_string(c.heartbeat_interval_ms),
           "heartbeat_interval_ms"},
          {"max.poll.interval.ms", std::to_string(c.max_poll_interval_ms), "max_poll_interval_ms"},
          {"fetch.max.bytes", std::to_string(c.fetch_max_bytes), "fetch_max_bytes"},
          {"max.partition.fetch.bytes", std::to_string(c.max_partition_fetch_bytes),
           "max_partition_fetch_bytes"},
          // Lets `consume --until-end` see where each partition ends.
          {"enable.partition.eof", "true", ""},
      });
  return out;
}

// The passthrough properties meant for a client whose own scope is `scope` ('P', 'C', or '*' for
// admin clients), so that no client gets keys librdkafka would warn about and ignore.
void append_passthrough(ClientProperties& out, const BusConfig& config, char scope) {
  for (const auto& property : config.librdkafka) {
    const char property_scope = property_info(property.first).scope;
    if (property_scope == '*' || property_scope == scope) out.push_back(property);
  }
}

ClientProperties build_properties(const BusConfig& config, const std::vector<Derived>& extra,
                                  char scope) {
  ClientProperties out;
  for (const Derived& d : derived_common(config)) out.emplace_back(d.name, d.value);
  for (const Derived& d : extra) out.emplace_back(d.name, d.value);
  append_passthrough(out, config, scope);
  return out;
}

void check_derived_with_librdkafka(const Loader& loader) {
  const ConfPtr conf = new_scratch_conf();
  std::vector<Derived> all = derived_common(loader.config);
  for (const auto& list : {derived_producer(loader.config), derived_consumer(loader.config)}) {
    all.insert(all.end(), list.begin(), list.end());
  }
  for (const Derived& d : all) {
    if (const auto error = librdkafka_rejects(conf.get(), d.name, d.value)) {
      fail(loader.place_of(std::string(d.key)),
           fmt::format("key '{}' gives {}={}, which librdkafka rejects: {}", d.key, d.name,
                       d.key == "sasl_password" ? "***" : d.value, *error));
    }
  }
}

// The effective value of an integer librdkafka property after the passthrough (aliases included).
int effective_int(rd_kafka_conf_t* conf, const char* name, int fallback) {
  std::array<char, 64> value{};
  std::size_t size = value.size();
  if (rd_kafka_conf_get(conf, name, value.data(), &size) != RD_KAFKA_CONF_OK) return fallback;
  return parse_int(value.data()).value_or(fallback);
}

// Rules librdkafka checks only when a client is created, between a key and a passthrough value.
void check_against_passthrough(const Loader& loader) {
  const BusConfig& c = loader.config;
  rd_kafka_conf_t* conf = loader.scratch.get();
  const int max_message = effective_int(conf, "message.max.bytes", kLibrdkafkaMessageMaxBytes);
  if (c.fetch_max_bytes < max_message) {
    fail(loader.place_of("fetch_max_bytes"),
         fmt::format("key 'fetch_max_bytes' ({}) must be at least librdkafka's message.max.bytes "
                     "({})",
                     c.fetch_max_bytes, max_message));
  }
  const int message_timeout =
      effective_int(conf, "message.timeout.ms", kLibrdkafkaMessageTimeoutMs);
  if (message_timeout != 0 && c.linger_ms >= message_timeout) {
    fail(loader.place_of("linger_ms"),
         fmt::format("key 'linger_ms' ({}) must be less than librdkafka's message.timeout.ms ({})",
                     c.linger_ms, message_timeout));
  }
}

std::string hostname() {
  std::array<char, 256> name{};
  if (gethostname(name.data(), name.size() - 1) != 0 || name[0] == '\0') return "evbus";
  return name.data();
}

// eventsource-py's default consumer_name: f"{socket.gethostname()}-{uuid4().hex[:8]}".
std::string generated_client_name() {
  std::random_device random;
  std::uniform_int_distribution<std::uint32_t> any;
  return fmt::format("{}-{:08x}", hostname(), any(random));
}

void record_default_sources(BusConfig& config) {
  for (const KeySpec& spec : kKeys) {
    config.sources.try_emplace(std::string(spec.name), ValueSource::default_value);
  }
  config.sources.try_emplace(std::string(kSchemasKey), ValueSource::default_value);
}

// ---------------------------------------------------------------------------------------------
// config show.

bool is_secret(std::string_view key) {
  const std::string name = lower(key);
  for (std::string_view marker : {"password", "secret", "key.pem", "oauthbearer.config"}) {
    if (name.find(marker) != std::string::npos) return true;
  }
  return false;
}

using OrderedJson = nlohmann::ordered_json;

OrderedJson field_json(const BusConfig& config, const Field& field) {
  return std::visit(Overloaded{
                        [&](std::string BusConfig::*m) { return OrderedJson(config.*m); },
                        [&](std::optional<std::string> BusConfig::*m) {
                          return config.*m ? OrderedJson(*(config.*m)) : OrderedJson(nullptr);
                        },
                        [&](int BusConfig::*m) { return OrderedJson(config.*m); },
                        [&](double BusConfig::*m) { return OrderedJson(config.*m); },
                        [&](bool BusConfig::*m) { return OrderedJson(config.*m); },
                    },
                    field);
}

struct ShowRow {
  std::string key;
  OrderedJson value;
  std::string source;
};

std::string source_of(const BusConfig& config, const std::string& key) {
  const auto found = config.sources.find(key);
  return std::string(
      to_string(found == config.sources.end() ? ValueSource::default_value : found->second));
}

OrderedJson redacted(std::string_view key, OrderedJson value) {
  return is_secret(key) && !value.is_null() ? OrderedJson("***") : value;
}

std::vector<ShowRow> show_rows(const BusConfig& config) {
  std::vector<ShowRow> rows;
  for (const KeySpec& spec : kKeys) {
    const std::string key(spec.name);
    rows.push_back({key, redacted(key, field_json(config, spec.field)), source_of(config, key)});
  }
  const std::string schemas(kSchemasKey);
  rows.push_back({schemas, OrderedJson(config.schemas), source_of(config, schemas)});
  for (const auto& [name, value] : config.librdkafka) {
    const std::string key = "librdkafka." + name;
    rows.push_back({key, redacted(name, OrderedJson(value)), source_of(config, key)});
  }
  rows.push_back({"topic_name", config.topic_name(), "derived"});
  rows.push_back({"dlq_topic_name", config.dlq_topic_name(), "derived"});
  rows.push_back({"client_name", config.client_name, "derived"});
  return rows;
}

std::string show_text(const OrderedJson& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_array()) {
    std::string out;
    for (const auto& item : value) out += (out.empty() ? "" : ",") + show_text(item);
    return out.empty() ? "[]" : out;
  }
  return value.dump();
}

void write_show_text(std::ostream& out, const std::vector<ShowRow>& rows) {
  std::size_t key_width = 3;
  std::size_t value_width = 5;
  std::vector<std::string> values;
  for (const ShowRow& row : rows) {
    values.push_back(show_text(row.value));
    key_width = std::max(key_width, row.key.size());
    value_width = std::max(value_width, values.back().size());
  }
  out << fmt::format("{:<{}}  {:<{}}  {}\n", "key", key_width, "value", value_width, "source");
  for (std::size_t i = 0; i < rows.size(); ++i) {
    out << fmt::format("{:<{}}  {:<{}}  {}\n", rows[i].key, key_width, values[i], value_width,
                       rows[i].source);
  }
}

void write_show_json(std::ostream& out, const std::vector<ShowRow>& rows) {
  OrderedJson object = OrderedJson::object();
  for (const ShowRow& row : rows) object[row.key] = {{"value", row.value}, {"source", row.source}};
  out << object.dump(2) << '\n';
}

}  // namespace

// -----------------------------------------------------------------------------------------------
// Public interface.

BusConfig load_config(const ConfigFlags& flags,
                      const std::map<std::string, std::string>& environment) {
  Loader loader{environment, {}, {}};
  Place named_by;
  if (const auto path = choose_config_path(flags, environment, named_by)) {
    if (!named_by.where.empty()) check_named_file(*path, named_by);
    load_file(loader, *path);
  }
  load_environment(loader);
  load_flags(loader, flags);
  record_default_sources(loader.config);
  normalize(loader.config);
  loader.config.client_name = loader.config.consumer_name.value_or(generated_client_name());
  validate(loader);
  check_derived_with_librdkafka(loader);
  check_against_passthrough(loader);
  return std::move(loader.config);
}

std::map<std::string, std::string> process_environment() {
  std::map<std::string, std::string> environment;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    const std::string_view text(*entry);
    const std::size_t equals = text.find('=');
    if (equals == std::string_view::npos) continue;
    environment.emplace(text.substr(0, equals), text.substr(equals + 1));
  }
  return environment;
}

ClientProperties common_properties(const BusConfig& config) {
  return build_properties(config, {}, '*');
}

ClientProperties producer_properties(const BusConfig& config) {
  return build_properties(config, derived_producer(config), 'P');
}

ClientProperties consumer_properties(const BusConfig& config) {
  return build_properties(config, derived_consumer(config), 'C');
}

void write_config_show(std::ostream& out, const BusConfig& config, std::string_view format) {
  const auto rows = show_rows(config);
  if (format == "json") {
    write_show_json(out, rows);
  } else if (format == "text") {
    write_show_text(out, rows);
  } else {
    throw Error(ErrorKind::usage, fmt::format("unknown format '{}' (text or json)", format));
  }
}

std::vector<std::string> config_warnings(const BusConfig& config) {
  std::vector<std::string> warnings;
  const auto& codec = config.compression_type;
  if (codec && (*codec == "snappy" || *codec == "lz4" || *codec == "zstd")) {
    warnings.push_back(fmt::format(
        "eventsource-py consumers need the 'cramjam' package to read {}-compressed records; gzip "
        "or none work with a default install",
        *codec));
  }
  if (!is_sasl(config) && (config.sasl_mechanism || config.sasl_username || config.sasl_password)) {
    warnings.push_back(fmt::format(
        "sasl_mechanism/sasl_username/sasl_password are set but security_protocol is {}, so they "
        "are ignored; use SASL_PLAINTEXT or SASL_SSL to authenticate",
        config.security_protocol));
  }
  if (!is_ssl(config) && (config.ssl_cafile || config.ssl_certfile || config.ssl_keyfile)) {
    warnings.push_back(fmt::format(
        "ssl_cafile/ssl_certfile/ssl_keyfile are set but security_protocol is {}, so they are "
        "ignored; use SSL or SASL_SSL for TLS",
        config.security_protocol));
  }
  if (is_ssl(config) && !config.ssl_check_hostname) {
    warnings.push_back(
        "ssl_check_hostname is false: the broker's certificate is not checked against its host "
        "name");
  }
  // A passthrough property that replaces a derived one is allowed (it is applied later), but
  // worth saying: it can break what evbus promises, such as murmur2 partitioning.
  std::vector<Derived> derived = derived_common(config);
  for (const auto& list : {derived_producer(config), derived_consumer(config)}) {
    derived.insert(derived.end(), list.begin(), list.end());
  }
  for (const auto& property : config.librdkafka) {
    const std::string canonical = property_info(property.first).canonical;
    for (const Derived& d : derived) {
      if (property_info(d.name).canonical != canonical) continue;
      warnings.push_back(fmt::format("librdkafka property '{}' overrides {} (derived from {})",
                                     property.first, d.name, d.key.empty() ? "evbus" : d.key));
      break;
    }
  }
  return warnings;
}

}  // namespace evbus
