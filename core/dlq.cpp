#include "core/dlq.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>
#include <thread>

#include "core/envelope.hpp"
#include "core/kafka_handles.hpp"
#include "core/output.hpp"
#include "core/text.hpp"
#include "core/timefmt.hpp"

namespace evbus {

std::string_view to_string(DlqDialect dialect) {
  switch (dialect) {
    case DlqDialect::eventsource:
      return "eventsource";
    case DlqDialect::spring:
      return "spring";
    case DlqDialect::connect:
      return "connect";
    case DlqDialect::unknown:
      return "unknown";
  }
  return "unknown";
}

namespace {

// ---- decoding helpers ----------------------------------------------------------------------

constexpr std::string_view kEventsourcePrefix = "dlq_";
constexpr std::string_view kSpringPrefix = "kafka_dlt-";
constexpr std::string_view kConnectPrefix = "__connect.errors.";

bool starts_with(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

// A header value for messages: the text, or {"base64": ...} for bytes that are not UTF-8.
std::string shown(const std::optional<std::string>& value) {
  if (!value) return "null";
  return bytes_to_json(*value).dump();
}

// Decimal text as Python's int() reads it for these headers: surrounding spaces, an optional sign.
std::optional<int64_t> parse_decimal(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() &&
         (text.back() == ' ' || text.back() == '\t' || text.back() == '\n' || text.back() == '\r'))
    text.remove_suffix(1);
  bool negative = false;
  if (!text.empty() && (text.front() == '+' || text.front() == '-')) {
    negative = text.front() == '-';
    text.remove_prefix(1);
  }
  if (text.empty() || text.size() > 18) return std::nullopt;  // 18 digits always fit int64
  int64_t value = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + (c - '0');
  }
  return negative ? -value : value;
}

// Spring writes partition, offset and timestamp as big-endian binary integers.
int64_t read_big_endian(std::string_view bytes) {
  uint64_t value = 0;
  for (const char c : bytes) value = (value << 8) | static_cast<uint8_t>(c);
  if (bytes.size() == 4) return static_cast<int32_t>(static_cast<uint32_t>(value));
  return static_cast<int64_t>(value);
}

struct HeaderReader {
  const Headers& headers;
  std::vector<std::string>& problems;

  // The first header of that name with a non-null value (eventsource-py reads the first).
  std::optional<std::string> text(std::string_view name) const {
    const Header* h = find_header(headers, name);
    if (h == nullptr || !h->value) return std::nullopt;
    return h->value;
  }

  std::optional<int64_t> decimal(std::string_view name) const {
    const Header* h = find_header(headers, name);
    if (h == nullptr || !h->value) return std::nullopt;
    auto value = parse_decimal(*h->value);
    if (!value)
      problems.push_back(fmt::format("header {}={} is not an integer", name, shown(h->value)));
    return value;
  }

  // Binary big-endian of `width` bytes; decimal text is accepted too (some tools rewrite them).
  std::optional<int64_t> binary(std::string_view name, size_t width) const {
    const Header* h = find_header(headers, name);
    if (h == nullptr || !h->value) return std::nullopt;
    if (h->value->size() == width) return read_big_endian(*h->value);
    if (is_valid_utf8(*h->value))
      if (auto value = parse_decimal(*h->value)) return value;
    problems.push_back(
        fmt::format("header {} has {} byte(s), expected a {}-byte big-endian integer", name,
                    h->value->size(), width));
    return std::nullopt;
  }

  bool any_with_prefix(std::string_view prefix) const {
    return std::any_of(headers.begin(), headers.end(),
                       [&](const Header& h) { return starts_with(h.name, prefix); });
  }
};

template <typename T>
void fill(std::optional<T>& field, std::optional<T> value) {
  if (!field && value) field = std::move(value);
}

void decode_eventsource(DlqEntry& e, const HeaderReader& r) {
  fill(e.reason, r.text("dlq_reason"));
  fill(e.error_type, r.text("dlq_error_type"));
  fill(e.error_message, r.text("dlq_error_message"));
  fill(e.retry_count, r.decimal("dlq_retry_count"));
  fill(e.failed_at, r.text("dlq_timestamp"));
  fill(e.original_topic, r.text("dlq_original_topic"));
  if (auto p = r.decimal("dlq_original_partition"))
    fill(e.original_partition, std::optional<int32_t>(static_cast<int32_t>(*p)));
  fill(e.original_offset, r.decimal("dlq_original_offset"));
  fill(e.consumer_group, r.text("dlq_consumer_group"));
}

void decode_spring(DlqEntry& e, const HeaderReader& r) {
  fill(e.original_topic, r.text("kafka_dlt-original-topic"));
  if (auto p = r.binary("kafka_dlt-original-partition", 4))
    fill(e.original_partition, std::optional<int32_t>(static_cast<int32_t>(*p)));
  fill(e.original_offset, r.binary("kafka_dlt-original-offset", 8));
  fill(e.original_timestamp_ms, r.binary("kafka_dlt-original-timestamp", 8));
  fill(e.consumer_group, r.text("kafka_dlt-original-consumer-group"));
  fill(e.error_type, r.text("kafka_dlt-exception-fqcn"));
  fill(e.error_cause, r.text("kafka_dlt-exception-cause-fqcn"));
  fill(e.error_message, r.text("kafka_dlt-exception-message"));
  // A key that failed to deserialize gets its own header set.
  fill(e.error_type, r.text("kafka_dlt-key-exception-fqcn"));
  fill(e.error_message, r.text("kafka_dlt-key-exception-message"));
  // Spring's retry topics count attempts in this header.
  fill(e.retry_count, r.binary("retry_topic-attempts", 4));
}

void decode_connect(DlqEntry& e, const HeaderReader& r) {
  fill(e.original_topic, r.text("__connect.errors.topic"));
  if (auto p = r.decimal("__connect.errors.partition"))
    fill(e.original_partition, std::optional<int32_t>(static_cast<int32_t>(*p)));
  fill(e.original_offset, r.decimal("__connect.errors.offset"));
  fill(e.reason, r.text("__connect.errors.stage"));  // e.g. VALUE_CONVERTER: the why
  fill(e.error_type, r.text("__connect.errors.exception.class.name"));
  fill(e.error_message, r.text("__connect.errors.exception.message"));
  auto name = r.text("__connect.errors.connector.name");
  auto task = r.text("__connect.errors.task.id");
  if (name || task)
    fill(e.connector, std::optional<std::string>(name.value_or("?") + "/" + task.value_or("?")));
}

void decode_replay_count(DlqEntry& e, const Headers& headers) {
  const Header* h = find_header(headers, "dlq_replay_count");
  if (h == nullptr) return;  // never replayed: 0
  e.replay_count_text = h->value;
  const auto value = h->value ? parse_decimal(*h->value) : std::nullopt;
  if (value && *value >= 0) {
    e.replay_count = value;
    return;
  }
  e.replay_count = std::nullopt;
  e.problems.push_back(
      fmt::format("header dlq_replay_count={} is not a non-negative integer", shown(h->value)));
}

std::optional<std::string> body_string(const std::optional<Json>& body, const char* field) {
  if (!body || !body->is_object()) return std::nullopt;
  auto it = body->find(field);
  if (it == body->end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

}  // namespace

DlqEntry decode_dlq_entry(InRecord record) {
  DlqEntry e;
  e.record = std::move(record);
  const Headers& headers = e.record.headers;
  const HeaderReader reader{headers, e.problems};

  if (e.record.value) {
    try {
      e.body = Json::parse(*e.record.value);
    } catch (const Json::exception&) {
      // Not JSON (or not UTF-8): the formatters show the raw value instead.
    }
  }
  e.event_type = reader.text("event_type");
  e.event_id = reader.text("event_id");
  e.aggregate_id = reader.text("aggregate_id");
  fill(e.event_type, body_string(e.body, "event_type"));
  fill(e.event_id, body_string(e.body, "event_id"));
  fill(e.aggregate_id, body_string(e.body, "aggregate_id"));

  const bool eventsource = reader.any_with_prefix(kEventsourcePrefix);
  const bool spring = reader.any_with_prefix(kSpringPrefix);
  const bool connect = reader.any_with_prefix(kConnectPrefix);
  if (eventsource) decode_eventsource(e, reader);
  if (spring) decode_spring(e, reader);
  if (connect) decode_connect(e, reader);
  e.dialect = eventsource ? DlqDialect::eventsource
              : spring    ? DlqDialect::spring
              : connect   ? DlqDialect::connect
                          : DlqDialect::unknown;
  decode_replay_count(e, headers);
  return e;
}

Headers replay_headers(const Headers& dlq_headers, int64_t next_replay_count) {
  Headers out;
  for (const auto& h : dlq_headers) {
    if (starts_with(h.name, kEventsourcePrefix) || h.name == "retry_count") continue;
    out.push_back(h);
  }
  out.push_back({"retry_count", "0"});
  out.push_back({"dlq_replay_count", std::to_string(next_replay_count)});
  return out;
}

// ---- filters -------------------------------------------------------------------------------

namespace {

bool any_equal(const std::vector<std::string>& wanted, const std::optional<std::string>& value) {
  if (!value) return false;
  return std::find(wanted.begin(), wanted.end(), *value) != wanted.end();
}

// "ValueError" matches "ValueError" and a qualified "com.acme.ValueError" (Java class names).
bool error_type_matches(const std::string& wanted, const std::optional<std::string>& value) {
  if (!value) return false;
  if (*value == wanted) return true;
  return value->size() > wanted.size() &&
         value->compare(value->size() - wanted.size(), wanted.size(), wanted) == 0 &&
         ((*value)[value->size() - wanted.size() - 1] == '.' ||
          (*value)[value->size() - wanted.size() - 1] == '$');
}

std::string canonical_or_same(std::string_view text) {
  auto canonical = canonical_uuid(text);
  return canonical ? *canonical : std::string(text);
}

}  // namespace

bool DlqFilter::narrows() const {
  return !types.empty() || !reasons.empty() || !error_types.empty() || !aggregate_ids.empty() ||
         since_ms || until_ms || partition;
}

bool DlqFilter::matches(const DlqEntry& e) const {
  if (partition && e.record.partition != *partition) return false;
  if (since_ms && e.record.timestamp_ms < *since_ms) return false;
  if (until_ms && e.record.timestamp_ms >= *until_ms) return false;
  if (!types.empty() && !any_equal(types, e.event_type)) return false;
  if (!reasons.empty() && !any_equal(reasons, e.reason)) return false;
  if (!error_types.empty() &&
      std::none_of(error_types.begin(), error_types.end(), [&](const std::string& t) {
        return error_type_matches(t, e.error_type) || error_type_matches(t, e.error_cause);
      }))
    return false;
  if (!aggregate_ids.empty()) {
    const auto id = e.aggregate_id ? canonical_or_same(*e.aggregate_id) : std::string();
    const auto key = e.record.key ? canonical_or_same(*e.record.key) : std::string();
    const bool hit =
        std::any_of(aggregate_ids.begin(), aggregate_ids.end(), [&](const std::string& a) {
          const auto wanted = canonical_or_same(a);
          return (!id.empty() && wanted == id) || (!key.empty() && wanted == key);
        });
    if (!hit) return false;
  }
  return true;
}

int64_t now_epoch_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::optional<int64_t> parse_time_bound(std::string_view text, int64_t now_ms) {
  if (text.size() >= 2) {
    const char unit = text.back();
    const auto amount = parse_decimal(text.substr(0, text.size() - 1));
    const std::map<char, int64_t> unit_ms{
        {'s', 1000}, {'m', 60'000}, {'h', 3'600'000}, {'d', 86'400'000}, {'w', 604'800'000}};
    if (auto it = unit_ms.find(unit);
        it != unit_ms.end() && amount && *amount >= 0 && *amount < 1'000'000'000)
      return now_ms - *amount * it->second;
  }
  auto ts = parse_timestamp(text);
  if (!ts) return std::nullopt;
  // A naive time is read as UTC: the DLQ's own timestamps are UTC.
  return std::chrono::duration_cast<std::chrono::milliseconds>(ts->utc.time_since_epoch()).count();
}

// ---- reading a partition range -------------------------------------------------------------

namespace {

// A consumer handle that reads partitions by explicit assignment (no subscription, so no
// rebalances and no group membership). group.id is only used for committed()/commit(); a
// throwaway id never commits, so the broker keeps no group for it.
class PartitionReader {
 public:
  PartitionReader(const BusConfig& config, std::string topic, const std::string& group_id,
                  Diagnostics diagnostics)
      : topic_(std::move(topic)) {
    context_.log = std::move(diagnostics);
    ClientProperties properties;
    for (auto& p : consumer_properties(config)) {
      if (p.first == "group.id" || p.first == "group.instance.id" ||
          p.first == "auto.offset.reset" || p.first == "enable.auto.commit" ||
          p.first == "enable.partition.eof")
        continue;
      properties.push_back(p);
    }
    properties.emplace_back("group.id", group_id);
    properties.emplace_back("enable.auto.commit", "false");
    properties.emplace_back("enable.partition.eof", "true");
    // A vanished offset must be an error, never a silent jump to another record.
    properties.emplace_back("auto.offset.reset", "error");
    // Partitions are read one after another; a fetch parked at the end of the previous one
    // would otherwise hold the next one back by up to the default 500 ms.
    properties.emplace_back("fetch.wait.max.ms", "10");
    auto conf = kafka::make_conf(properties);
    kafka::attach_context(conf.get(), &context_);
    client_ = kafka::make_client(RD_KAFKA_CONSUMER, std::move(conf));
    rd_kafka_poll_set_consumer(client_.get());
  }
  ~PartitionReader() {
    if (client_) rd_kafka_consumer_close(client_.get());
  }
  PartitionReader(const PartitionReader&) = delete;
  PartitionReader& operator=(const PartitionReader&) = delete;

  const std::string& topic() const { return topic_; }

  // -1 when the topic does not exist (asking never creates it).
  int partition_count(std::chrono::milliseconds timeout) {
    return kafka::topic_partition_count(client_.get(), topic_, timeout);
  }

  PartitionRange watermarks(int32_t partition, std::chrono::milliseconds timeout) {
    const auto w = kafka::query_watermarks(client_.get(), topic_, partition, timeout);
    return PartitionRange{partition, w.low, w.high};
  }

  std::vector<PartitionRange> all_watermarks(int partitions, std::chrono::milliseconds timeout) {
    std::vector<PartitionRange> out;
    for (int32_t p = 0; p < partitions; ++p) out.push_back(watermarks(p, timeout));
    return out;
  }

  // The group's committed offset, or -1 when it has none.
  int64_t committed(int32_t partition, std::chrono::milliseconds timeout) {
    kafka::PartitionListPtr list{rd_kafka_topic_partition_list_new(1)};
    rd_kafka_topic_partition_list_add(list.get(), topic_.c_str(), partition);
    const auto err =
        rd_kafka_committed(client_.get(), list.get(), static_cast<int>(timeout.count()));
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
      throw Error(
          ErrorKind::runtime,
          fmt::format("committed offsets of {}[{}]: {}", topic_, partition, kafka::error_text(err)),
          static_cast<int>(err), true);
    return list->elems[0].offset >= 0 ? list->elems[0].offset : -1;
  }

  // `wait` = false sends the commit and returns (the final commit of a run waits, so any
  // refusal from the broker still surfaces).
  void commit(const std::map<int32_t, int64_t>& next_offsets, bool wait) {
    if (next_offsets.empty()) return;
    kafka::PartitionListPtr list{
        rd_kafka_topic_partition_list_new(static_cast<int>(next_offsets.size()))};
    for (const auto& [partition, next] : next_offsets)
      rd_kafka_topic_partition_list_add(list.get(), topic_.c_str(), partition)->offset = next;
    const auto err = rd_kafka_commit(client_.get(), list.get(), wait ? 0 : 1);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
      throw Error(
          ErrorKind::runtime,
          fmt::format("cannot commit replay progress on {}: {}", topic_, kafka::error_text(err)),
          static_cast<int>(err), true);
  }

  enum class End { reached, visitor_stopped, interrupted };
  using Visitor = std::function<bool(InRecord&&)>;

  // Reads [from, to) of one partition and stops exactly there; records past `to` arrived after
  // the snapshot and are not ours. A log that ends early (compaction, transaction markers) ends
  // at the partition EOF. `idle` bounds a broker that stops answering.
  End read(int32_t partition, int64_t from, int64_t to, const Visitor& visit,
           const std::atomic<bool>& stop, std::chrono::milliseconds idle) {
    if (from >= to) return End::reached;
    assign(partition, from);
    End end = End::reached;
    auto last_progress = std::chrono::steady_clock::now();
    for (;;) {
      if (stop.load()) {
        end = End::interrupted;
        break;
      }
      kafka::MessagePtr msg{rd_kafka_consumer_poll(client_.get(), 100)};
      if (!context_.fatal_error.empty())
        throw Error(ErrorKind::runtime, "fatal consumer error: " + context_.fatal_error);
      if (!msg) {
        if (std::chrono::steady_clock::now() - last_progress > idle) {
          unassign();
          throw Error(ErrorKind::runtime,
                      fmt::format("no data from {}[{}] at offset {} within {} ms", topic_,
                                  partition, from, idle.count()));
        }
        continue;
      }
      if (msg->partition != partition) continue;
      if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) break;
      if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (msg->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET ||
            msg->err == RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE) {
          unassign();
          throw Error(ErrorKind::invalid_input,
                      fmt::format("offset {} of {}[{}] no longer exists (deleted by retention?)",
                                  from, topic_, partition),
                      static_cast<int>(msg->err));
        }
        if (context_.log)
          context_.log(3, fmt::format("consumer: {}", rd_kafka_message_errstr(msg.get())));
        continue;
      }
      last_progress = std::chrono::steady_clock::now();
      if (msg->offset >= to) break;
      const bool last = msg->offset + 1 >= to;
      if (!visit(kafka::to_record(msg.get()))) {
        end = End::visitor_stopped;
        break;
      }
      if (last) break;
    }
    unassign();
    return end;
  }

 private:
  void assign(int32_t partition, int64_t offset) {
    kafka::PartitionListPtr list{rd_kafka_topic_partition_list_new(1)};
    rd_kafka_topic_partition_list_add(list.get(), topic_.c_str(), partition)->offset = offset;
    const auto err = rd_kafka_assign(client_.get(), list.get());
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
      throw Error(
          ErrorKind::runtime,
          fmt::format("cannot assign {}[{}]: {}", topic_, partition, kafka::error_text(err)),
          static_cast<int>(err));
  }
  void unassign() { rd_kafka_assign(client_.get(), nullptr); }

  kafka::ClientContext context_;
  kafka::ClientPtr client_;
  std::string topic_;
};

std::string throwaway_group() {
  return "evbus-dlq-reader-" + new_uuid4();
}

std::chrono::milliseconds idle_limit(const DlqSource& source) {
  return std::max(source.timeout, std::chrono::milliseconds(30000));
}

// Every record of the snapshot [low, high) of every partition (or of `only`), decoded, in
// partition then offset order. `visit` returns false to stop. Returns false if interrupted.
bool scan_dlq(PartitionReader& reader, const std::vector<PartitionRange>& ranges,
              const DlqSource& source, const std::function<bool(DlqEntry&&)>& visit,
              const std::atomic<bool>& stop) {
  uint64_t total = 0, done = 0;
  for (const auto& range : ranges) total += static_cast<uint64_t>(range.high - range.low);
  for (const auto& range : ranges) {
    bool keep_going = true;
    const auto end = reader.read(
        range.partition, range.low, range.high,
        [&](InRecord&& record) {
          keep_going = visit(decode_dlq_entry(std::move(record)));
          if (source.progress) source.progress(++done, total);
          return keep_going;
        },
        stop, idle_limit(source));
    if (end == PartitionReader::End::interrupted) return false;
    if (!keep_going) return true;
  }
  return true;
}

}  // namespace

// ---- list and count ------------------------------------------------------------------------

DlqListing list_dlq(const BusConfig& config, const DlqSource& source, const DlqFilter& filter,
                    const std::atomic<bool>& stop) {
  DlqListing listing;
  listing.topic = source.topic;
  PartitionReader reader(config, source.topic, throwaway_group(), source.diagnostics);
  const int partitions = reader.partition_count(source.timeout);
  if (partitions < 0) return listing;
  listing.topic_exists = true;
  auto ranges = reader.all_watermarks(partitions, source.timeout);
  if (filter.partition)
    std::erase_if(ranges,
                  [&](const PartitionRange& r) { return r.partition != *filter.partition; });
  listing.interrupted = !scan_dlq(
      reader, ranges, source,
      [&](DlqEntry&& entry) {
        ++listing.scanned;
        if (filter.matches(entry)) listing.entries.push_back(std::move(entry));
        return !filter.limit || listing.entries.size() < *filter.limit;
      },
      stop);
  return listing;
}

DlqCount count_dlq(const BusConfig& config, const DlqSource& source) {
  DlqCount count;
  count.topic = source.topic;
  PartitionReader reader(config, source.topic, throwaway_group(), source.diagnostics);
  const int partitions = reader.partition_count(source.timeout);
  if (partitions < 0) return count;
  count.topic_exists = true;
  count.partitions = reader.all_watermarks(partitions, source.timeout);
  for (const auto& r : count.partitions) count.total += r.count();
  return count;
}

std::optional<CountBy> parse_count_by(std::string_view text) {
  if (text == "reason") return CountBy::reason;
  if (text == "type") return CountBy::type;
  if (text == "error-type") return CountBy::error_type;
  if (text == "partition") return CountBy::partition;
  if (text == "original-partition") return CountBy::original_partition;
  return std::nullopt;
}

std::string_view to_string(CountBy by) {
  switch (by) {
    case CountBy::reason:
      return "reason";
    case CountBy::type:
      return "type";
    case CountBy::error_type:
      return "error-type";
    case CountBy::partition:
      return "partition";
    case CountBy::original_partition:
      return "original-partition";
  }
  return "reason";
}

namespace {

constexpr std::string_view kNone = "(none)";

std::string group_text(const std::optional<std::string>& value) {
  if (!value) return std::string(kNone);
  if (is_valid_utf8(*value)) return *value;
  return "base64:" + bytes_to_json(*value)["base64"].get<std::string>();
}

std::string group_value(const DlqEntry& e, CountBy by) {
  switch (by) {
    case CountBy::reason:
      return group_text(e.reason);
    case CountBy::type:
      return group_text(e.event_type);
    case CountBy::error_type:
      return group_text(e.error_type);
    case CountBy::partition:
      return std::to_string(e.record.partition);
    case CountBy::original_partition:
      if (!e.original_partition) return std::string(kNone);
      return fmt::format("{}[{}]", e.original_topic ? group_text(e.original_topic) : "?",
                         *e.original_partition);
  }
  return std::string(kNone);
}

}  // namespace

DlqGroupedCount count_dlq_by(const BusConfig& config, const DlqSource& source, CountBy by,
                             const DlqFilter& filter, const std::atomic<bool>& stop) {
  DlqGroupedCount out;
  out.topic = source.topic;
  out.by = by;
  PartitionReader reader(config, source.topic, throwaway_group(), source.diagnostics);
  const int partitions = reader.partition_count(source.timeout);
  if (partitions < 0) return out;
  out.topic_exists = true;
  const auto ranges = reader.all_watermarks(partitions, source.timeout);
  std::map<std::string, CountGroup> groups;
  const bool complete = scan_dlq(
      reader, ranges, source,
      [&](DlqEntry&& e) {
        if (!filter.matches(e)) return true;
        auto& g = groups[group_value(e, by)];
        ++g.count;
        ++out.total;
        if (e.record.timestamp_ms >= 0 && (g.oldest_ms < 0 || e.record.timestamp_ms < g.oldest_ms))
          g.oldest_ms = e.record.timestamp_ms;
        return true;
      },
      stop);
  if (!complete) throw Error(ErrorKind::interrupted, "interrupted while counting");
  for (auto& [value, g] : groups) {
    g.value = value;
    out.groups.push_back(g);
  }
  std::stable_sort(out.groups.begin(), out.groups.end(),
                   [](const CountGroup& a, const CountGroup& b) { return a.count > b.count; });
  return out;
}

// ---- replay --------------------------------------------------------------------------------

namespace {

// Why a record may not be replayed without --force, or nullopt when it may.
std::optional<std::string> refusal(const DlqEntry& e, const BusConfig& config, bool force) {
  if (force) return std::nullopt;
  if (!e.replay_count)
    return fmt::format(
        "dlq_replay_count is {}, not a non-negative integer, so the replay limit cannot be "
        "checked; --force replays it and restarts the count at 1",
        shown(e.replay_count_text));
  if (*e.replay_count >= config.dlq_max_replay_attempts)
    return fmt::format(
        "already replayed {} time(s), dlq_max_replay_attempts is {}; --force "
        "replays it anyway",
        *e.replay_count, config.dlq_max_replay_attempts);
  return std::nullopt;
}

ReplayOutcome plan_replay(const DlqEntry& entry, const BusConfig& config,
                          const ReplayOptions& options) {
  ReplayOutcome o;
  o.entry = entry;
  o.target_topic = options.target_topic;
  // An unparseable count restarts at 1 when forced, so the loop protection works again.
  o.next_replay_count = entry.replay_count ? *entry.replay_count + 1 : 1;
  o.copy.topic = options.target_topic;
  o.copy.key = entry.record.key;
  o.copy.value = entry.record.value;
  o.copy.headers = replay_headers(entry.record.headers, o.next_replay_count);
  if (auto why = refusal(entry, config, options.force)) {
    o.kind = ReplayOutcome::Kind::refused;
    o.reason = *why;
  }
  return o;
}

// Sends the copy and waits for the broker's answer: success only on an acknowledgement.
void deliver(Producer& producer, ReplayOutcome& o, uint64_t id, std::chrono::milliseconds timeout) {
  if (auto refused = producer.send(o.copy, id)) {
    o.kind = ReplayOutcome::Kind::failed;
    o.reason = *refused;
    return;
  }
  for (const auto& report : producer.flush(timeout)) {
    if (report.id != id) continue;
    if (report.error) {
      o.kind = ReplayOutcome::Kind::failed;
      o.reason = *report.error;
    } else {
      o.kind = ReplayOutcome::Kind::replayed;
      o.target_partition = report.partition;
      o.target_offset = report.offset;
    }
    return;
  }
  o.kind = ReplayOutcome::Kind::failed;
  o.reason = "no delivery report from the broker";
}

}  // namespace

namespace {
// A --to target must exist: a misspelt name would otherwise be auto-created by the broker and the
// records replayed into it. The bus topic itself may be auto-created, as eventsource-py relies on.
void require_target_topic(Producer& producer, const BusConfig& config, const std::string& topic,
                          std::chrono::milliseconds timeout) {
  if (topic == config.topic_name() || producer.partition_count(topic, timeout) > 0) return;
  throw Error(
      ErrorKind::invalid_input,
      fmt::format("replay target topic {} does not exist (check --to); nothing was sent", topic));
}
}  // namespace

ReplayOutcome replay_one(const BusConfig& config, const DlqSource& source, int32_t partition,
                         int64_t offset, const ReplayOptions& options, bool dry_run) {
  PartitionReader reader(config, source.topic, throwaway_group(), source.diagnostics);
  const int partitions = reader.partition_count(source.timeout);
  const auto where = fmt::format("{}[{}]@{}", source.topic, partition, offset);
  if (partitions < 0)
    throw Error(ErrorKind::invalid_input,
                fmt::format("no record at {}: topic {} does not exist", where, source.topic));
  if (partition < 0 || partition >= partitions)
    throw Error(ErrorKind::invalid_input, fmt::format("no record at {}: {} has partitions 0..{}",
                                                      where, source.topic, partitions - 1));
  const auto range = reader.watermarks(partition, source.timeout);
  if (offset < range.low || offset >= range.high)
    throw Error(ErrorKind::invalid_input,
                range.count() == 0
                    ? fmt::format("no record at {}: the partition is empty (next offset {})", where,
                                  range.high)
                    : fmt::format("no record at {}: offset out of range, the partition holds "
                                  "offsets {}..{}",
                                  where, range.low, range.high - 1));
  std::optional<InRecord> found;
  int64_t seen = -1;
  const std::atomic<bool> never{false};
  reader.read(
      partition, offset, range.high,
      [&](InRecord&& r) {
        seen = r.offset;
        if (r.offset == offset) found = std::move(r);
        return false;  // only the first record at or after `offset` matters
      },
      never, idle_limit(source));
  if (!found)
    throw Error(ErrorKind::invalid_input,
                seen >= 0 ? fmt::format("no record at {}: deleted or compacted away (the next "
                                        "record is at offset {})",
                                        where, seen)
                          : fmt::format("no record at {}: deleted or compacted away", where));

  ReplayOutcome o = plan_replay(decode_dlq_entry(std::move(*found)), config, options);
  if (o.kind == ReplayOutcome::Kind::refused || dry_run) return o;
  Producer producer(producer_properties(config), source.diagnostics);
  producer.ensure_reachable(source.timeout);
  require_target_topic(producer, config, options.target_topic, source.timeout);
  deliver(producer, o, 1, options.delivery_timeout);
  return o;
}

namespace {

struct Selection {
  std::vector<DlqEntry> entries;          // matched, in partition then offset order
  std::map<int32_t, int64_t> scanned_to;  // partition -> next unread offset of this run
  bool interrupted = false;
};

// The snapshot ranges, each starting at the group's committed offset when resuming.
std::vector<PartitionRange> replay_ranges(PartitionReader& reader, int partitions,
                                          const DlqSource& source, const DlqFilter& filter,
                                          bool from_group, bool& resumed) {
  auto ranges = reader.all_watermarks(partitions, source.timeout);
  if (filter.partition)
    std::erase_if(ranges,
                  [&](const PartitionRange& r) { return r.partition != *filter.partition; });
  if (!from_group) return ranges;
  for (auto& r : ranges) {
    const int64_t committed = reader.committed(r.partition, source.timeout);
    if (committed < 0) continue;
    resumed = true;
    r.low = std::clamp(committed, r.low, r.high);
  }
  return ranges;
}

Selection select_entries(PartitionReader& reader, const std::vector<PartitionRange>& ranges,
                         const DlqSource& source, const DlqFilter& filter,
                         const std::atomic<bool>& stop) {
  Selection s;
  for (const auto& r : ranges) s.scanned_to[r.partition] = r.low;
  s.interrupted = !scan_dlq(
      reader, ranges, source,
      [&](DlqEntry&& e) {
        s.scanned_to[e.record.partition] = e.record.offset + 1;
        if (filter.matches(e)) s.entries.push_back(std::move(e));
        return !filter.limit || s.entries.size() < *filter.limit;
      },
      stop);
  // A partition read to its snapshot end is covered up to there (trailing gaps included).
  const bool limited = filter.limit && s.entries.size() >= *filter.limit;
  if (!s.interrupted && !limited)
    for (const auto& r : ranges)
      s.scanned_to[r.partition] = std::max(s.scanned_to[r.partition], r.high);
  return s;
}

// The reorder check. Rule: a main-topic record with the same key and a different event_id, at a
// higher offset than the DLQ record's original offset in the same partition, is a newer event of
// that aggregate; the replay copy would land after it. Only the last `scan_limit` records of
// each partition are read, and only records past the smallest original offset.
void check_reordering(const BusConfig& config, const DlqSource& source,
                      const BulkReplayRequest& request, const std::vector<const DlqEntry*>& entries,
                      ReplayPreview& preview, const std::atomic<bool>& stop) {
  preview.reorder_rule = fmt::format(
      "a record of the same aggregate (same key, different event_id) in {} at a higher offset "
      "than the DLQ record's original offset, same partition; the last {} records per partition "
      "are scanned",
      request.options.target_topic, request.reorder_scan_limit);
  std::map<int32_t, std::vector<const DlqEntry*>> by_partition;
  for (const DlqEntry* e : entries)
    if (e->record.key && e->original_topic == request.options.target_topic &&
        e->original_partition && e->original_offset)
      by_partition[*e->original_partition].push_back(e);
    else
      ++preview.reorder_unchecked;
  if (by_partition.empty()) return;

  PartitionReader main(config, request.options.target_topic, throwaway_group(), source.diagnostics);
  const int partitions = main.partition_count(source.timeout);
  for (const auto& [partition, candidates] : by_partition) {
    if (partition < 0 || partition >= partitions) {
      preview.reorder_unchecked += candidates.size();
      continue;
    }
    const auto range = main.watermarks(partition, source.timeout);
    int64_t earliest = range.high;
    std::set<std::string> keys;
    for (const DlqEntry* e : candidates) {
      earliest = std::min(earliest, *e->original_offset + 1);
      keys.insert(*e->record.key);
    }
    const auto limit = static_cast<int64_t>(request.reorder_scan_limit);
    int64_t from = std::max(range.low, earliest);
    if (range.high - limit > from) {
      from = range.high - limit;
      preview.reorder_scan_truncated = true;
    }
    struct Seen {
      int64_t offset;
      std::optional<std::string> event_id;
      std::optional<std::string> event_type;
      bool replay_copy;  // carries dlq_replay_count: written by an earlier replay
    };
    std::map<std::string, std::vector<Seen>> seen;
    main.read(
        partition, from, range.high,
        [&](InRecord&& r) {
          if (r.key && keys.count(*r.key)) {
            const Header* id = find_header(r.headers, "event_id");
            const Header* type = find_header(r.headers, "event_type");
            seen[*r.key].push_back({r.offset, id ? id->value : std::nullopt,
                                    type ? type->value : std::nullopt,
                                    find_header(r.headers, "dlq_replay_count") != nullptr});
          }
          return true;
        },
        stop, idle_limit(source));
    for (const DlqEntry* e : candidates) {
      ReorderWarning w{*e->record.key,
                       e->record.partition,
                       e->record.offset,
                       partition,
                       *e->original_offset,
                       0,
                       -1,
                       std::nullopt};
      bool replayed_before = false;
      for (const auto& s : seen[*e->record.key]) {
        if (s.offset <= *e->original_offset) continue;
        if (s.event_id && s.event_id == e->event_id) {
          replayed_before = replayed_before || s.replay_copy;
          continue;  // a retry or replay copy of this very event
        }
        ++w.newer_events;
        if (s.offset > w.newest_offset) {
          w.newest_offset = s.offset;
          w.newest_type = s.event_type;
        }
      }
      if (replayed_before) ++preview.already_replayed;
      if (w.newer_events > 0) preview.reorder_warnings.push_back(std::move(w));
    }
  }
}

void summarize(ReplayPreview& preview, const std::vector<DlqEntry>& entries,
               const BusConfig& config, bool force) {
  std::map<std::pair<std::string, std::string>, uint64_t> groups;
  for (const auto& e : entries) {
    ++preview.selected;
    if (refusal(e, config, force)) ++preview.refused;
    ++groups[{group_text(e.event_type), group_text(e.reason)}];
  }
  for (const auto& [key, count] : groups) preview.groups.push_back({key.first, key.second, count});
  std::stable_sort(preview.groups.begin(), preview.groups.end(),
                   [](const auto& a, const auto& b) { return a.count > b.count; });
}

// Waits until `due`, a little at a time so a stop request is seen at once.
bool pace_until(std::chrono::steady_clock::time_point due, const std::atomic<bool>& stop) {
  while (std::chrono::steady_clock::now() < due) {
    if (stop.load()) return false;
    std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(
        due - std::chrono::steady_clock::now(), std::chrono::milliseconds(50)));
  }
  return !stop.load();
}

void count_outcome(BulkReplayReport& report, ReplayOutcome::Kind kind) {
  switch (kind) {
    case ReplayOutcome::Kind::replayed:
      ++report.replayed;
      break;
    case ReplayOutcome::Kind::refused:
      ++report.refused;
      break;
    default:
      ++report.failed;
      break;
  }
}

// Replays the selection in DLQ order. With a group, offset+1 of each record is committed only
// after its copy was acknowledged (or it was refused, which is final); a failed copy blocks its
// partition so that no later commit passes it.
void execute_replay(const BusConfig& config, const DlqSource& source,
                    const BulkReplayRequest& request, const Selection& selection,
                    const std::vector<PartitionRange>& ranges, PartitionReader& reader,
                    BulkReplayReport& report, const ReplaySink& on_outcome,
                    const std::atomic<bool>& stop) {
  Producer producer(producer_properties(config), source.diagnostics);
  producer.ensure_reachable(source.timeout);
  require_target_topic(producer, config, request.options.target_topic, source.timeout);
  const auto start = std::chrono::steady_clock::now();
  std::set<int32_t> blocked;
  std::map<int32_t, int64_t> progress;  // partition -> next offset, committed
  uint64_t sent = 0;
  for (const auto& entry : selection.entries) {
    const int32_t partition = entry.record.partition;
    if (blocked.count(partition)) continue;
    if (stop.load()) {
      report.interrupted = true;
      break;
    }
    ReplayOutcome o = plan_replay(entry, config, request.options);
    if (o.kind != ReplayOutcome::Kind::refused) {
      if (request.rate) {
        const auto due =
            start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                        std::chrono::duration<double>(static_cast<double>(sent) / *request.rate));
        if (!pace_until(due, stop)) {
          report.interrupted = true;
          break;
        }
      }
      deliver(producer, o, ++sent, request.options.delivery_timeout);
    }
    count_outcome(report, o.kind);
    if (source.progress)
      source.progress(report.replayed + report.refused + report.failed, report.preview.selected);
    if (o.kind == ReplayOutcome::Kind::failed) {
      blocked.insert(partition);
    } else if (request.group) {
      progress[partition] = entry.record.offset + 1;
      reader.commit({{partition, entry.record.offset + 1}}, false);
    }
    on_outcome(o);
  }
  if (!request.group) return;
  if (!report.interrupted) {
    // Records that did not match, up to where the selection scan got, are done too.
    for (const auto& [partition, next] : selection.scanned_to) {
      const auto range = std::find_if(ranges.begin(), ranges.end(), [&](const PartitionRange& r) {
        return r.partition == partition;
      });
      if (!blocked.count(partition) && range != ranges.end() && next > range->low)
        progress[partition] = std::max(progress[partition], next);
    }
  }
  reader.commit(progress, true);
}

}  // namespace

BulkReplayReport replay_bulk(const BusConfig& config, const DlqSource& source,
                             const BulkReplayRequest& request, const ReplaySink& on_outcome,
                             const std::atomic<bool>& stop) {
  BulkReplayReport report;
  ReplayPreview& preview = report.preview;
  preview.source_topic = source.topic;
  preview.target_topic = request.options.target_topic;
  preview.resume_group = request.group;

  PartitionReader reader(config, source.topic, request.group.value_or(throwaway_group()),
                         source.diagnostics);
  const int partitions = reader.partition_count(source.timeout);
  if (partitions < 0) return report;
  preview.topic_exists = true;
  const auto ranges = replay_ranges(reader, partitions, source, request.filter,
                                    request.group.has_value(), preview.resumed);
  Selection selection = select_entries(reader, ranges, source, request.filter, stop);
  if (selection.interrupted) {
    report.interrupted = true;
    return report;
  }
  summarize(preview, selection.entries, config, request.options.force);
  if (!request.execute) {
    std::vector<const DlqEntry*> replayable;
    for (const auto& e : selection.entries)
      if (!refusal(e, config, request.options.force)) replayable.push_back(&e);
    check_reordering(config, source, request, replayable, preview, stop);
    return report;
  }

  report.executed = true;
  execute_replay(config, source, request, selection, ranges, reader, report, on_outcome, stop);
  return report;
}

// ---- formatters ----------------------------------------------------------------------------

namespace {

Json optional_bytes(const std::optional<std::string>& value) {
  return value ? bytes_to_json(*value) : Json(nullptr);
}

template <typename T>
Json optional_number(const std::optional<T>& value) {
  return value ? Json(*value) : Json(nullptr);
}

Json timestamp_json(int64_t ms) {
  return ms >= 0 ? Json(format_epoch_ms(ms)) : Json(nullptr);
}

// One line of readable text: null "-", bytes that are not UTF-8 "<binary>", controls as spaces.
std::string cell_text(const std::optional<std::string>& value) {
  if (!value) return "-";
  if (!is_valid_utf8(*value)) return "<binary>";
  std::string out;
  out.reserve(value->size());
  for (const char c : *value) {
    const auto u = static_cast<unsigned char>(c);
    out += (u < 0x20 || u == 0x7f) ? ' ' : c;
  }
  return out;
}

// Exactly `width` code points: padded, or cut with "…" (never inside a UTF-8 sequence).
std::string fit(std::string_view s, size_t width) {
  const size_t n = code_points(s);
  if (n <= width) return std::string(s) + std::string(width - n, ' ');
  size_t kept = 0;
  size_t i = 0;
  while (i < s.size()) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) {
      if (kept == width - 1) break;
      ++kept;
    }
    ++i;
  }
  return std::string(s.substr(0, i)) + "…";
}

std::string table_time(int64_t ms) {
  if (ms < 0) return "-";
  auto text = format_epoch_ms(ms);  // 2025-01-15T10:30:00.123Z
  text[10] = ' ';
  return text.substr(0, 19);
}

// The short class name (Java's are fully qualified) and the message: "IllegalStateException: …".
std::string error_cell(const DlqEntry& e) {
  auto type = cell_text(e.error_cause ? e.error_cause : e.error_type);
  if (const auto dot = type.rfind('.'); dot != std::string::npos && dot + 1 < type.size())
    type = type.substr(dot + 1);
  if (!e.error_message) return type;
  return type + ": " + cell_text(e.error_message);
}

std::string format_age(int64_t seconds) {
  if (seconds < 0) seconds = 0;
  if (seconds < 60) return fmt::format("{}s", seconds);
  if (seconds < 3600) return fmt::format("{}m{:02}s", seconds / 60, seconds % 60);
  if (seconds < 86400) return fmt::format("{}h{:02}m", seconds / 3600, seconds / 60 % 60);
  return fmt::format("{}d{:02}h", seconds / 86400, seconds / 3600 % 24);
}

}  // namespace

Json dlq_entry_to_json(const DlqEntry& e) {
  const InRecord& r = e.record;
  Json out = Json::object();
  out["topic"] = r.topic;
  out["partition"] = r.partition;
  out["offset"] = r.offset;
  out["timestamp"] = timestamp_json(r.timestamp_ms);
  out["key"] = optional_bytes(r.key);
  out["event_type"] = optional_bytes(e.event_type);
  out["event_id"] = optional_bytes(e.event_id);
  out["aggregate_id"] = optional_bytes(e.aggregate_id);
  out["dialect"] = to_string(e.dialect);
  out["reason"] = optional_bytes(e.reason);
  out["error_type"] = optional_bytes(e.error_type);
  if (e.error_cause) out["error_cause"] = optional_bytes(e.error_cause);
  out["error_message"] = optional_bytes(e.error_message);
  out["retry_count"] = optional_number(e.retry_count);
  out["replay_count"] = optional_number(e.replay_count);
  out["original_topic"] = optional_bytes(e.original_topic);
  out["original_partition"] = optional_number(e.original_partition);
  out["original_offset"] = optional_number(e.original_offset);
  if (e.original_timestamp_ms) out["original_timestamp"] = timestamp_json(*e.original_timestamp_ms);
  out["consumer_group"] = optional_bytes(e.consumer_group);
  if (e.connector) out["connector"] = optional_bytes(e.connector);
  out["failed_at"] = optional_bytes(e.failed_at);
  if (e.body) {
    out["event"] = *e.body;
  } else {
    out["event"] = nullptr;
    out["value"] = optional_bytes(r.value);
  }
  Json headers = Json::array();
  for (const auto& h : r.headers)
    headers.push_back(Json::array({bytes_to_json(h.name), optional_bytes(h.value)}));
  out["headers"] = std::move(headers);
  if (!e.problems.empty()) out["problems"] = e.problems;
  return out;
}

void write_dlq_table(std::ostream& out, const DlqListing& listing) {
  if (!listing.topic_exists) {
    out << fmt::format("{}: the topic does not exist (no DLQ record was ever written)\n",
                       listing.topic);
    return;
  }
  // 120 columns: 9+19+16+9+21+3+3 = 80 plus 7 gaps leaves 33 for the error. The full aggregate
  // id and error are in --output json.
  constexpr size_t kError = 33;
  out << fmt::format("{} {} {} {} {} {} {} {}\n", fit("PART@OFF", 9), fit("TIME (UTC)", 19),
                     fit("TYPE", 16), fit("AGGREGATE", 9), fit("REASON", 21), fit("TRY", 3),
                     fit("RPL", 3), "ERROR");
  for (const auto& e : listing.entries) {
    const auto replay = e.replay_count ? std::to_string(*e.replay_count) : "?";
    const auto retry = e.retry_count ? std::to_string(*e.retry_count) : "-";
    std::string error = error_cell(e);
    if (code_points(error) > kError) error = fit(error, kError);
    out << fmt::format("{} {} {} {} {} {} {} {}\n",
                       fit(fmt::format("{}@{}", e.record.partition, e.record.offset), 9),
                       fit(table_time(e.record.timestamp_ms), 19), fit(cell_text(e.event_type), 16),
                       fit(cell_text(e.aggregate_id), 9), fit(cell_text(e.reason), 21),
                       fit(retry, 3), fit(replay, 3), error);
  }
  out << fmt::format("{} record(s) listed, {} read from {}\n", listing.entries.size(),
                     listing.scanned, listing.topic);
}

void write_dlq_json(std::ostream& out, const DlqListing& listing) {
  Json all = Json::array();
  for (const auto& e : listing.entries) all.push_back(dlq_entry_to_json(e));
  out << all.dump(2) << '\n';
}

void write_dlq_jsonl(std::ostream& out, const DlqListing& listing) {
  for (const auto& e : listing.entries) out << dlq_entry_to_json(e).dump() << '\n';
}

void write_count_table(std::ostream& out, const DlqCount& count) {
  if (!count.topic_exists) {
    out << fmt::format("{}: 0 records (the topic does not exist)\n", count.topic);
    return;
  }
  out << fmt::format("{}: {} record(s)\n", count.topic, count.total);
  out << fmt::format("{:>9} {:>12} {:>12} {:>9}\n", "PARTITION", "LOW", "HIGH", "RECORDS");
  for (const auto& r : count.partitions)
    out << fmt::format("{:>9} {:>12} {:>12} {:>9}\n", r.partition, r.low, r.high, r.count());
}

void write_count_json(std::ostream& out, const DlqCount& count) {
  Json partitions = Json::array();
  for (const auto& r : count.partitions)
    partitions.push_back(
        {{"partition", r.partition}, {"low", r.low}, {"high", r.high}, {"count", r.count()}});
  Json j = {{"topic", count.topic},
            {"exists", count.topic_exists},
            {"count", count.total},
            {"partitions", std::move(partitions)}};
  out << j.dump(2) << '\n';
}

void write_grouped_count_table(std::ostream& out, const DlqGroupedCount& count, int64_t now_ms) {
  if (!count.topic_exists) {
    out << fmt::format("{}: 0 records (the topic does not exist)\n", count.topic);
    return;
  }
  out << fmt::format("{}: {} record(s) by {}\n", count.topic, count.total, to_string(count.by));
  std::string heading(to_string(count.by));
  std::transform(heading.begin(), heading.end(), heading.begin(),
                 [](char c) { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 32) : c; });
  out << fmt::format("{} {:>8}  {}  {}\n", fit(heading, 40), "COUNT", fit("OLDEST (UTC)", 19),
                     "AGE");
  for (const auto& g : count.groups)
    out << fmt::format("{} {:>8}  {}  {}\n", fit(cell_text(g.value), 40), g.count,
                       fit(table_time(g.oldest_ms), 19),
                       g.oldest_ms >= 0 ? format_age((now_ms - g.oldest_ms) / 1000) : "-");
}

void write_grouped_count_json(std::ostream& out, const DlqGroupedCount& count, int64_t now_ms) {
  Json groups = Json::array();
  for (const auto& g : count.groups)
    groups.push_back({{"value", g.value},
                      {"count", g.count},
                      {"oldest", timestamp_json(g.oldest_ms)},
                      {"oldest_age_seconds",
                       g.oldest_ms >= 0 ? Json((now_ms - g.oldest_ms) / 1000) : Json(nullptr)}});
  Json j = {{"topic", count.topic},
            {"exists", count.topic_exists},
            {"by", to_string(count.by)},
            {"count", count.total},
            {"groups", std::move(groups)}};
  out << j.dump(2) << '\n';
}

namespace {
std::string_view outcome_name(ReplayOutcome::Kind kind) {
  switch (kind) {
    case ReplayOutcome::Kind::replayed:
      return "replayed";
    case ReplayOutcome::Kind::refused:
      return "refused";
    case ReplayOutcome::Kind::failed:
      return "failed";
    case ReplayOutcome::Kind::planned:
      return "planned";
  }
  return "?";
}
}  // namespace

void write_replay_outcome_text(std::ostream& out, const ReplayOutcome& o) {
  const auto& r = o.entry.record;
  const auto what =
      fmt::format("{} {}", cell_text(o.entry.event_type), cell_text(o.entry.aggregate_id));
  switch (o.kind) {
    case ReplayOutcome::Kind::replayed:
      out << fmt::format("replayed {}[{}]@{} -> {}[{}]@{}  {}  dlq_replay_count={}\n", r.topic,
                         r.partition, r.offset, o.target_topic, o.target_partition, o.target_offset,
                         what, o.next_replay_count);
      break;
    case ReplayOutcome::Kind::refused:
    case ReplayOutcome::Kind::failed:
      out << fmt::format("{:<8} {}[{}]@{}  {}: {}\n", outcome_name(o.kind), r.topic, r.partition,
                         r.offset, what, o.reason);
      break;
    case ReplayOutcome::Kind::planned:
      write_replay_plan_text(out, o);
      break;
  }
}

Json replay_outcome_to_json(const ReplayOutcome& o) {
  Json j = Json::object();
  j["status"] = outcome_name(o.kind);
  j["source"] = {{"topic", o.entry.record.topic},
                 {"partition", o.entry.record.partition},
                 {"offset", o.entry.record.offset}};
  j["event_type"] = optional_bytes(o.entry.event_type);
  j["aggregate_id"] = optional_bytes(o.entry.aggregate_id);
  j["target_topic"] = o.target_topic;
  if (o.kind == ReplayOutcome::Kind::replayed) {
    j["target_partition"] = o.target_partition;
    j["target_offset"] = o.target_offset;
  }
  j["dlq_replay_count"] = o.next_replay_count;
  if (!o.reason.empty()) j["reason"] = o.reason;
  if (o.kind == ReplayOutcome::Kind::planned) {
    Json headers = Json::array();
    for (const auto& h : o.copy.headers)
      headers.push_back(Json::array({bytes_to_json(h.name), optional_bytes(h.value)}));
    j["key"] = optional_bytes(o.copy.key);
    j["headers"] = std::move(headers);
    j["value"] = optional_bytes(o.copy.value);
  }
  return j;
}

void write_replay_plan_text(std::ostream& out, const ReplayOutcome& o) {
  const auto& r = o.entry.record;
  out << fmt::format("dry run: {}[{}]@{} would be replayed (nothing was sent)\n", r.topic,
                     r.partition, r.offset);
  out << "topic:   " << o.target_topic << '\n';
  out << "key:     " << (o.copy.key ? bytes_to_json(*o.copy.key).dump() : "null") << '\n';
  out << "headers:\n";
  for (const auto& h : o.copy.headers)
    out << "  " << cell_text(h.name) << ": "
        << (h.value && is_valid_utf8(*h.value) ? cell_text(h.value) : shown(h.value)) << '\n';
  out << "value:   " << (o.copy.value ? cell_text(o.copy.value) : "null") << '\n';
}

void write_replay_preview_text(std::ostream& out, const ReplayPreview& p) {
  if (!p.topic_exists) {
    out << fmt::format("{}: the topic does not exist; nothing to replay\n", p.source_topic);
    return;
  }
  out << fmt::format("preview: {} record(s) selected in {}, {} would be replayed to {}", p.selected,
                     p.source_topic, p.selected - p.refused, p.target_topic);
  out << " (nothing was sent; add --yes to replay)\n";
  if (p.resume_group)
    out << fmt::format("  group {}: {}\n", *p.resume_group,
                       p.resumed ? "resuming after its committed offsets on the DLQ topic"
                                 : "no progress committed yet, starting at the low watermarks");
  if (!p.groups.empty()) {
    out << fmt::format("  {} {} {:>7}\n", fit("EVENT TYPE", 30), fit("REASON", 24), "COUNT");
    for (const auto& g : p.groups)
      out << fmt::format("  {} {} {:>7}\n", fit(cell_text(g.event_type), 30),
                         fit(cell_text(g.reason), 24), g.count);
  }
  if (p.refused > 0)
    out << fmt::format(
        "  {} record(s) would be refused: over dlq_max_replay_attempts or an "
        "unparseable dlq_replay_count (--force overrides)\n",
        p.refused);
  if (p.reorder_rule.empty()) return;
  out << "reordering check: " << p.reorder_rule << '\n';
  if (p.reorder_scan_truncated)
    out << "  note: the scan limit was reached, older newer-events may be missed\n";
  if (p.reorder_unchecked > 0)
    out << fmt::format("  {} record(s) not checked: no key, or no original position in {}\n",
                       p.reorder_unchecked, p.target_topic);
  if (p.already_replayed > 0)
    out << fmt::format(
        "  warning: {} record(s) already have a replay copy in {} (same event_id, "
        "with dlq_replay_count); replaying again would duplicate them\n",
        p.already_replayed, p.target_topic);
  if (p.reorder_warnings.empty()) out << "  no checked aggregate has newer events\n";
  for (const auto& w : p.reorder_warnings)
    out << fmt::format(
        "  warning: aggregate {} has {} newer event(s) in {}[{}] after offset {} (newest at {}, "
        "{}); replaying {}[{}]@{} would put an older event after them\n",
        cell_text(w.aggregate_key), w.newer_events, p.target_topic, w.original_partition,
        w.original_offset, w.newest_offset, cell_text(w.newest_type), p.source_topic,
        w.dlq_partition, w.dlq_offset);
}

Json replay_preview_to_json(const ReplayPreview& p) {
  Json groups = Json::array();
  for (const auto& g : p.groups)
    groups.push_back({{"event_type", g.event_type}, {"reason", g.reason}, {"count", g.count}});
  Json warnings = Json::array();
  for (const auto& w : p.reorder_warnings)
    warnings.push_back({{"aggregate_key", bytes_to_json(w.aggregate_key)},
                        {"dlq_partition", w.dlq_partition},
                        {"dlq_offset", w.dlq_offset},
                        {"original_partition", w.original_partition},
                        {"original_offset", w.original_offset},
                        {"newer_events", w.newer_events},
                        {"newest_offset", w.newest_offset},
                        {"newest_type", optional_bytes(w.newest_type)}});
  return {{"source_topic", p.source_topic},
          {"target_topic", p.target_topic},
          {"exists", p.topic_exists},
          {"selected", p.selected},
          {"would_replay", p.selected - p.refused},
          {"would_refuse", p.refused},
          {"groups", std::move(groups)},
          {"group", p.resume_group ? Json(*p.resume_group) : Json(nullptr)},
          {"resumed", p.resumed},
          {"reorder_rule", p.reorder_rule},
          {"reorder_scan_truncated", p.reorder_scan_truncated},
          {"reorder_unchecked", p.reorder_unchecked},
          {"already_replayed", p.already_replayed},
          {"reorder_warnings", std::move(warnings)}};
}

void write_replay_summary_text(std::ostream& out, const BulkReplayReport& report) {
  out << fmt::format("replayed {}, refused {}, failed {}{}\n", report.replayed, report.refused,
                     report.failed, report.interrupted ? " (interrupted)" : "");
}

Json replay_report_to_json(const BulkReplayReport& report) {
  Json j = {{"executed", report.executed},
            {"interrupted", report.interrupted},
            {"replayed", report.replayed},
            {"refused", report.refused},
            {"failed", report.failed}};
  if (!report.executed) j["preview"] = replay_preview_to_json(report.preview);
  return j;
}

}  // namespace evbus
