#include "core/stats.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <set>
#include <thread>

#include "core/consumer.hpp"  // RunStats
#include "core/error.hpp"
#include "core/kafka_handles.hpp"
#include "core/metrics.hpp"

namespace evbus {

// =============================================================================================
// Run statistics

namespace {
Json time_or_null(const std::optional<Timestamp>& t) {
  return t ? Json(format_header_time(*t)) : Json(nullptr);
}
}  // namespace

Json run_stats_to_json(const RunStats& s) {
  Json out = Json::object();
  out["events_published"] = s.events_published;
  out["events_consumed"] = s.events_consumed;
  out["events_processed_success"] = s.events_processed_success;
  out["events_processed_failed"] = s.events_processed_failed;
  out["messages_sent_to_dlq"] = s.messages_sent_to_dlq;
  out["handler_errors"] = s.handler_errors;
  out["reconnections"] = s.reconnections;
  out["rebalance_count"] = s.rebalance_count;
  out["last_publish_at"] = time_or_null(s.last_publish_at);
  out["last_consume_at"] = time_or_null(s.last_consume_at);
  out["last_error_at"] = time_or_null(s.last_error_at);
  out["connected_at"] = time_or_null(s.connected_at);
  return out;
}

std::string run_stats_summary(const RunStats& s, std::chrono::duration<double> elapsed) {
  return fmt::format(
      "published {}, consumed {}, processed {} ok / {} failed, {} to DLQ, {} handler errors, "
      "{} rebalances, {} reconnections in {:.1f}s",
      s.events_published, s.events_consumed, s.events_processed_success, s.events_processed_failed,
      s.messages_sent_to_dlq, s.handler_errors, s.rebalance_count, s.reconnections,
      elapsed.count());
}

void write_run_stats_file(const std::string& path, const RunStats& stats) {
  const std::string temporary = path + ".tmp";
  {
    std::ofstream out(temporary, std::ios::trunc);
    out << run_stats_to_json(stats).dump(2) << '\n';
    out.flush();
    if (!out)
      throw Error(ErrorKind::runtime, fmt::format("--stats-json: cannot write {}", temporary));
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    std::remove(temporary.c_str());
    throw Error(ErrorKind::runtime, fmt::format("--stats-json: cannot write {}", path));
  }
}

// =============================================================================================
// Bus statistics: value helpers

int64_t TopicStats::messages() const {
  int64_t n = 0;
  for (const auto& p : partitions) n += p.messages();
  return n;
}

int64_t TopicStats::high_sum() const {
  int64_t n = 0;
  for (const auto& p : partitions) n += p.high;
  return n;
}

const PartitionStats* TopicStats::partition(int32_t id) const {
  for (const auto& p : partitions)
    if (p.partition == id) return &p;
  return nullptr;
}

int64_t GroupStats::lag() const {
  int64_t n = 0;
  for (const auto& p : partitions) n += p.lag;
  return n;
}

bool GroupStats::has_commits() const {
  return std::any_of(partitions.begin(), partitions.end(),
                     [](const GroupPartitionStats& p) { return p.committed.has_value(); });
}

StatsRates compute_rates(const BusStats& before, const BusStats& after) {
  StatsRates r;
  r.seconds = std::chrono::duration<double>(after.taken_steady - before.taken_steady).count();
  if (r.seconds <= 0) return r;
  r.messages_in_per_second =
      static_cast<double>(after.main.high_sum() - before.main.high_sum()) / r.seconds;
  r.dlq_in_per_second =
      static_cast<double>(after.dlq_topic.high_sum() - before.dlq_topic.high_sum()) / r.seconds;
  for (const auto& g : after.groups)
    for (const auto& old : before.groups)
      if (old.name == g.name)
        r.lag_change_per_second[g.name] = static_cast<double>(g.lag() - old.lag()) / r.seconds;
  return r;
}

// =============================================================================================
// Bus statistics: collection

namespace {

// One librdkafka handle and the context its callbacks read (kept at a stable address).
struct Client {
  kafka::ClientContext context;
  kafka::ClientPtr handle;

  Client(rd_kafka_type_t type, const ClientProperties& properties, const Diagnostics& diagnostics) {
    context.log = diagnostics;
    auto conf = kafka::make_conf(properties);
    kafka::attach_context(conf.get(), &context);
    handle = kafka::make_client(type, std::move(conf));
  }
  rd_kafka_t* get() const { return handle.get(); }
};

ClientProperties with(ClientProperties base, const ClientProperties& extra) {
  base.insert(base.end(), extra.begin(), extra.end());
  return base;
}

std::string state_name(rd_kafka_consumer_group_state_t state) {
  switch (state) {
    case RD_KAFKA_CONSUMER_GROUP_STATE_PREPARING_REBALANCE:
      return "PreparingRebalance";
    case RD_KAFKA_CONSUMER_GROUP_STATE_COMPLETING_REBALANCE:
      return "CompletingRebalance";
    case RD_KAFKA_CONSUMER_GROUP_STATE_STABLE:
      return "Stable";
    case RD_KAFKA_CONSUMER_GROUP_STATE_DEAD:
      return "Dead";
    case RD_KAFKA_CONSUMER_GROUP_STATE_EMPTY:
      return "Empty";
    default:
      return "Unknown";
  }
}

struct GroupDescription {
  std::string state = "Unknown";
  int members = 0;
  bool assigned_main_topic = false;
};

// A record boundary visited while reading a partition range.
struct RecordSeen {
  int32_t partition = 0;
  int64_t offset = 0;
  int64_t timestamp_ms = -1;
  std::optional<std::string> dlq_timestamp;
};

struct Range {
  int32_t partition = 0;
  int64_t from = 0;
  int64_t to = 0;  // exclusive (a high watermark snapshot)
};

// Returns false when the partition needs no more records.
using Visitor = std::function<bool(const rd_kafka_message_t*)>;

double age_from(const RecordSeen& r, Micros now) {
  if (r.dlq_timestamp)
    if (auto ts = parse_timestamp(*r.dlq_timestamp))
      return std::chrono::duration<double>(now - ts->utc).count();
  if (r.timestamp_ms < 0) return 0.0;
  const Micros at{std::chrono::milliseconds(r.timestamp_ms)};
  return std::chrono::duration<double>(now - at).count();
}

}  // namespace

struct BusInspector::Impl {
  BusConfig config;
  Diagnostics diagnostics;
  std::unique_ptr<Client> admin;
  kafka::QueuePtr queue;
  std::unique_ptr<Client> reader;  // assign-only consumer for DLQ ends and the type scan
  // Committed offsets of another group can only be fetched by a consumer in that group (without
  // joining it), so one consumer per group of interest is kept across --watch refreshes.
  std::map<std::string, std::unique_ptr<Client>> group_clients;

  void log(int level, const std::string& text) const {
    if (diagnostics) diagnostics(level, text);
  }

  kafka::AdminOptionsPtr admin_options(rd_kafka_admin_op_t op,
                                       std::chrono::milliseconds timeout) const {
    return kafka::admin_options(admin->get(), op, timeout);
  }

  void watermarks(const std::string& topic, PartitionStats& p,
                  std::chrono::milliseconds timeout) const {
    const auto w = kafka::query_watermarks(admin->get(), topic, p.partition, timeout);
    p.low = w.low;
    p.high = w.high;
  }

  TopicStats describe_topic(const rd_kafka_metadata_t& md, const std::string& name,
                            std::chrono::milliseconds timeout) const {
    TopicStats t;
    t.name = name;
    for (int i = 0; i < md.topic_cnt; ++i) {
      const auto& mt = md.topics[i];
      if (name != mt.topic || mt.err != RD_KAFKA_RESP_ERR_NO_ERROR) continue;
      t.exists = true;
      for (int p = 0; p < mt.partition_cnt; ++p)
        t.partitions.push_back({mt.partitions[p].id, mt.partitions[p].leader, 0, 0});
    }
    std::sort(t.partitions.begin(), t.partitions.end(),
              [](const auto& a, const auto& b) { return a.partition < b.partition; });
    for (auto& p : t.partitions) watermarks(name, p, timeout);
    return t;
  }

  std::vector<std::string> list_groups(std::chrono::milliseconds timeout) const {
    auto opts = admin_options(RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPS, timeout);
    rd_kafka_ListConsumerGroups(admin->get(), opts.get(), queue.get());
    auto ev =
        kafka::wait_admin_result(queue.get(), RD_KAFKA_EVENT_LISTCONSUMERGROUPS_RESULT, timeout);
    if (rd_kafka_event_error(ev.get()) != RD_KAFKA_RESP_ERR_NO_ERROR)
      throw Error(ErrorKind::runtime,
                  fmt::format("list consumer groups: {}", rd_kafka_event_error_string(ev.get())));
    const auto* result = rd_kafka_event_ListConsumerGroups_result(ev.get());
    size_t count = 0;
    const auto* listings = rd_kafka_ListConsumerGroups_result_valid(result, &count);
    std::vector<std::string> names;
    for (size_t i = 0; i < count; ++i)
      names.emplace_back(rd_kafka_ConsumerGroupListing_group_id(listings[i]));
    size_t error_count = 0;
    const auto* errors = rd_kafka_ListConsumerGroups_result_errors(result, &error_count);
    for (size_t i = 0; i < error_count; ++i)
      log(4, fmt::format("list consumer groups: {}", rd_kafka_error_string(errors[i])));
    return names;
  }

  std::map<std::string, GroupDescription> describe_groups(const std::vector<std::string>& names,
                                                          std::chrono::milliseconds timeout) const {
    std::map<std::string, GroupDescription> out;
    if (names.empty()) return out;
    std::vector<const char*> raw;
    for (const auto& n : names) raw.push_back(n.c_str());
    auto opts = admin_options(RD_KAFKA_ADMIN_OP_DESCRIBECONSUMERGROUPS, timeout);
    rd_kafka_DescribeConsumerGroups(admin->get(), raw.data(), raw.size(), opts.get(), queue.get());
    auto ev = kafka::wait_admin_result(queue.get(), RD_KAFKA_EVENT_DESCRIBECONSUMERGROUPS_RESULT,
                                       timeout);
    if (rd_kafka_event_error(ev.get()) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      log(4, fmt::format("describe consumer groups: {}", rd_kafka_event_error_string(ev.get())));
      return out;
    }
    size_t count = 0;
    const auto* groups = rd_kafka_DescribeConsumerGroups_result_groups(
        rd_kafka_event_DescribeConsumerGroups_result(ev.get()), &count);
    const std::string topic = config.topic_name();
    for (size_t i = 0; i < count; ++i) {
      if (rd_kafka_ConsumerGroupDescription_error(groups[i]) != nullptr) continue;
      GroupDescription d;
      d.state = state_name(rd_kafka_ConsumerGroupDescription_state(groups[i]));
      const size_t members = rd_kafka_ConsumerGroupDescription_member_count(groups[i]);
      d.members = static_cast<int>(members);
      for (size_t m = 0; m < members; ++m) {
        const auto* member = rd_kafka_ConsumerGroupDescription_member(groups[i], m);
        const auto* parts =
            rd_kafka_MemberAssignment_partitions(rd_kafka_MemberDescription_assignment(member));
        for (int p = 0; parts != nullptr && p < parts->cnt; ++p)
          if (topic == parts->elems[p].topic) d.assigned_main_topic = true;
      }
      out[rd_kafka_ConsumerGroupDescription_group_id(groups[i])] = d;
    }
    return out;
  }

  Client& group_client(const std::string& group) {
    auto& slot = group_clients[group];
    if (!slot)
      slot = std::make_unique<Client>(
          RD_KAFKA_CONSUMER,
          with(common_properties(config), {{"group.id", group}, {"enable.auto.commit", "false"}}),
          diagnostics);
    return *slot;
  }

  // Committed offsets of `group` on the main topic's partitions (nullopt where none).
  std::map<int32_t, std::optional<int64_t>> committed(const std::string& group,
                                                      const TopicStats& main,
                                                      std::chrono::milliseconds timeout) {
    std::map<int32_t, std::optional<int64_t>> out;
    if (main.partitions.empty()) return out;
    kafka::PartitionListPtr list{
        rd_kafka_topic_partition_list_new(static_cast<int>(main.partitions.size()))};
    for (const auto& p : main.partitions)
      rd_kafka_topic_partition_list_add(list.get(), main.name.c_str(), p.partition);
    auto err = rd_kafka_committed(group_client(group).get(), list.get(),
                                  static_cast<int>(timeout.count()));
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      log(3, fmt::format("committed offsets of group {}: {}", group, rd_kafka_err2str(err)));
      return out;
    }
    for (int i = 0; i < list->cnt; ++i) {
      const auto& e = list->elems[i];
      out[e.partition] = e.offset >= 0 ? std::optional<int64_t>(e.offset) : std::nullopt;
    }
    return out;
  }

  // Starts the coordinator lookups of many groups at once: creating a consumer begins them in
  // the background, so the committed() calls that follow mostly find them done.
  void warm_up(const std::vector<std::string>& groups) {
    for (const auto& g : groups) (void)group_client(g);
  }

  GroupStats group_stats(const std::string& name, const TopicStats& main,
                         const std::map<int32_t, std::optional<int64_t>>& offsets,
                         const std::map<std::string, GroupDescription>& described,
                         bool listed) const {
    GroupStats g;
    g.name = name;
    g.configured = name == config.consumer_group;
    const bool from_earliest = config.auto_offset_reset != "latest";
    for (const auto& p : main.partitions) {
      GroupPartitionStats gp;
      gp.partition = p.partition;
      gp.high = p.high;
      if (auto it = offsets.find(p.partition); it != offsets.end()) gp.committed = it->second;
      // Without a commit, a new consumer starts where auto_offset_reset says.
      const int64_t position =
          gp.committed ? std::max(*gp.committed, p.low) : (from_earliest ? p.low : p.high);
      gp.lag = std::max<int64_t>(0, p.high - position);
      g.partitions.push_back(gp);
    }
    if (auto it = described.find(name); it != described.end()) {
      g.state = it->second.state;
      g.members = it->second.members;
    } else {
      g.state = "Dead";
    }
    g.known = listed || g.has_commits() || g.members > 0;
    if (!g.known) g.state = "absent";
    return g;
  }

  std::vector<GroupStats> collect_groups(const TopicStats& main,
                                         std::chrono::milliseconds timeout) {
    const auto listed = list_groups(timeout);
    const auto described = describe_groups(listed, timeout);
    std::vector<GroupStats> out;
    std::set<std::string> candidates(listed.begin(), listed.end());
    candidates.insert(config.consumer_group);
    // Only groups that turn out relevant keep their consumer; the rest are checked in batches
    // so a busy cluster does not get hundreds of clients at once.
    std::vector<std::string> all(candidates.begin(), candidates.end());
    constexpr size_t kBatch = 16;
    for (size_t start = 0; start < all.size(); start += kBatch) {
      const std::vector<std::string> batch(
          all.begin() + static_cast<long>(start),
          all.begin() + static_cast<long>(std::min(all.size(), start + kBatch)));
      if (main.exists) warm_up(batch);
      for (const auto& name : batch) {
        const auto offsets = main.exists ? committed(name, main, timeout)
                                         : std::map<int32_t, std::optional<int64_t>>{};
        const bool is_listed = std::find(listed.begin(), listed.end(), name) != listed.end();
        GroupStats g = group_stats(name, main, offsets, described, is_listed);
        const auto d = described.find(name);
        const bool assigned = d != described.end() && d->second.assigned_main_topic;
        if (g.configured || g.has_commits() || assigned)
          out.push_back(std::move(g));
        else
          group_clients.erase(name);
      }
    }
    std::stable_sort(out.begin(), out.end(), [](const GroupStats& a, const GroupStats& b) {
      return a.configured != b.configured ? a.configured : a.name < b.name;
    });
    return out;
  }

  Client& reader_client() {
    if (!reader)
      reader = std::make_unique<Client>(
          RD_KAFKA_CONSUMER,
          // librdkafka needs a group.id to assign partitions; this one never joins or commits.
          with(common_properties(config), {{"group.id", "evbus-stats-reader"},
                                           {"enable.auto.commit", "false"},
                                           {"enable.auto.offset.store", "false"},
                                           {"enable.partition.eof", "true"}}),
          diagnostics);
    return *reader;
  }

  // Reads every range until its end snapshot, end of partition, the visitor is satisfied, or
  // no record arrives for `idle` (a gap left by compaction or transaction markers).
  void read_ranges(const std::string& topic, const std::vector<Range>& ranges,
                   std::chrono::milliseconds idle, const Visitor& visit) {
    rd_kafka_t* rk = reader_client().get();
    std::map<int32_t, Range> open;
    kafka::PartitionListPtr list{
        rd_kafka_topic_partition_list_new(static_cast<int>(ranges.size()))};
    for (const auto& r : ranges) {
      if (r.from >= r.to) continue;
      rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), r.partition)->offset = r.from;
      open[r.partition] = r;
    }
    if (open.empty()) return;
    if (auto err = rd_kafka_assign(rk, list.get()); err != RD_KAFKA_RESP_ERR_NO_ERROR)
      throw Error(ErrorKind::runtime, fmt::format("reading {}: {}", topic, rd_kafka_err2str(err)));
    auto last_activity = std::chrono::steady_clock::now();
    while (!open.empty() && std::chrono::steady_clock::now() - last_activity < idle) {
      kafka::MessagePtr msg{rd_kafka_consumer_poll(rk, 100)};
      if (!msg) continue;
      last_activity = std::chrono::steady_clock::now();
      auto it = open.find(msg->partition);
      if (it == open.end()) continue;
      if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        open.erase(it);
        continue;
      }
      if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        log(4, fmt::format("reading {}[{}]: {}", topic, msg->partition,
                           rd_kafka_message_errstr(msg.get())));
        continue;
      }
      if (!visit(msg.get()) || msg->offset + 1 >= it->second.to) open.erase(it);
    }
    rd_kafka_assign(rk, nullptr);
  }

  static RecordSeen seen(const rd_kafka_message_t* msg) {
    RecordSeen r;
    r.partition = msg->partition;
    r.offset = msg->offset;
    rd_kafka_timestamp_type_t type{};
    r.timestamp_ms = rd_kafka_message_timestamp(msg, &type);
    const auto headers = kafka::to_headers(msg);
    if (const auto* h = find_header(headers, "dlq_timestamp"); h && h->value)
      r.dlq_timestamp = h->value;
    return r;
  }

  DlqStats collect_dlq(const TopicStats& dlq, std::chrono::milliseconds timeout) {
    DlqStats out;
    out.depth = dlq.messages();
    if (out.depth == 0) return out;
    std::map<int32_t, RecordSeen> first, last;
    std::vector<Range> heads, tails;
    for (const auto& p : dlq.partitions) {
      if (p.messages() <= 0) continue;
      heads.push_back({p.partition, p.low, p.high});
      // A few records back from the end, in case the last offsets are transaction markers.
      tails.push_back({p.partition, std::max(p.low, p.high - 16), p.high});
    }
    read_ranges(dlq.name, heads, timeout, [&](const rd_kafka_message_t* m) {
      first[m->partition] = seen(m);
      return false;
    });
    read_ranges(dlq.name, tails, timeout, [&](const rd_kafka_message_t* m) {
      last[m->partition] = seen(m);
      return true;
    });
    const Micros now = now_utc().utc;
    auto info = [&](const RecordSeen& r) {
      return DlqRecordInfo{r.partition, r.offset, r.timestamp_ms, r.dlq_timestamp,
                           age_from(r, now)};
    };
    for (const auto& [partition, r] : first) {
      auto candidate = info(r);
      if (!out.oldest || candidate.age_seconds > out.oldest->age_seconds) out.oldest = candidate;
    }
    for (const auto& [partition, r] : last) {
      auto candidate = info(r);
      if (!out.newest || candidate.age_seconds < out.newest->age_seconds) out.newest = candidate;
    }
    return out;
  }

  // The newest `limit` records, shared across partitions in proportion to their size.
  static std::vector<Range> scan_plan(const TopicStats& main, uint64_t limit) {
    const int64_t total = main.messages();
    std::vector<Range> plan;
    if (total <= 0) return plan;
    const auto budget =
        static_cast<int64_t>(std::min<uint64_t>(limit, static_cast<uint64_t>(total)));
    int64_t assigned = 0;
    for (const auto& p : main.partitions) {
      const int64_t share = p.messages() * budget / total;
      plan.push_back({p.partition, p.high - share, p.high});
      assigned += share;
    }
    // Rounding leftovers go to partitions that still have unscanned records.
    for (auto& r : plan) {
      if (assigned >= budget) break;
      const auto* p = main.partition(r.partition);
      if (r.from > p->low) {
        --r.from;
        ++assigned;
      }
    }
    return plan;
  }

  TypeScan scan_types(const TopicStats& main, uint64_t limit, std::chrono::milliseconds timeout,
                      const ScanProgress& progress) {
    TypeScan scan;
    scan.limit = limit;
    scan.available = main.messages();
    const auto plan = scan_plan(main, limit);
    uint64_t target = 0;
    for (const auto& r : plan) {
      target += static_cast<uint64_t>(r.to - r.from);
      scan.partitions.push_back({r.partition, r.from, r.from});
    }
    if (progress) progress(0, target);
    read_ranges(main.name, plan, timeout, [&](const rd_kafka_message_t* m) {
      ++scan.scanned;
      for (auto& sp : scan.partitions)
        if (sp.partition == m->partition) sp.to = m->offset + 1;
      const auto headers = kafka::to_headers(m);
      const auto* h = find_header(headers, "event_type");
      if (h == nullptr || !h->value)
        ++scan.without_event_type;
      else
        ++scan.counts[*h->value];
      if (progress) progress(scan.scanned, target);
      return true;
    });
    bool reached_all = true;
    for (const auto& sp : scan.partitions) {
      const auto* p = main.partition(sp.partition);
      if (sp.from > p->low || sp.to < p->high) reached_all = false;
    }
    scan.complete = reached_all && static_cast<int64_t>(scan.scanned) >= scan.available;
    return scan;
  }
};

BusInspector::BusInspector(const BusConfig& config, Diagnostics diagnostics)
    : impl_(std::make_unique<Impl>()) {
  impl_->config = config;
  impl_->diagnostics = std::move(diagnostics);
  // Admin requests are answered by any broker; a producer handle is the lightest client.
  impl_->admin =
      std::make_unique<Client>(RD_KAFKA_PRODUCER, common_properties(config), impl_->diagnostics);
  impl_->queue.reset(rd_kafka_queue_new(impl_->admin->get()));
}

BusInspector::~BusInspector() = default;

BusStats BusInspector::collect(const StatsRequest& request, const ScanProgress& progress) {
  BusStats s;
  s.bootstrap_servers = impl_->config.bootstrap_servers;
  s.taken_at = now_utc();
  s.taken_steady = std::chrono::steady_clock::now();
  auto md = kafka::fetch_metadata(impl_->admin->get(), request.timeout);
  s.main = impl_->describe_topic(*md, impl_->config.topic_name(), request.timeout);
  s.dlq_topic = impl_->describe_topic(*md, impl_->config.dlq_topic_name(), request.timeout);
  s.groups = impl_->collect_groups(s.main, request.timeout);
  s.dlq = impl_->collect_dlq(s.dlq_topic, request.timeout);
  if (request.by_type)
    s.by_type = impl_->scan_types(s.main, request.scan_limit, request.timeout, progress);
  return s;
}

// =============================================================================================
// Bus statistics: formatters

namespace {

std::string format_age(double seconds) {
  const auto total = static_cast<int64_t>(std::max(0.0, seconds));
  const int64_t d = total / 86400, h = total / 3600 % 24, m = total / 60 % 60, s = total % 60;
  if (d > 0) return fmt::format("{}d {}h", d, h);
  if (h > 0) return fmt::format("{}h {:02}m", h, m);
  if (m > 0) return fmt::format("{}m {:02}s", m, s);
  return fmt::format("{}s", s);
}

std::string record_time(const DlqRecordInfo& r) {
  if (r.dlq_timestamp) return *r.dlq_timestamp;
  return r.timestamp_ms >= 0 ? format_epoch_ms(r.timestamp_ms) : "-";
}

void write_topic_rows(std::ostream& out, const TopicStats& t, size_t width) {
  if (!t.exists) {
    out << fmt::format("{:<{}}  absent (no such topic)\n", t.name, width);
    return;
  }
  for (const auto& p : t.partitions)
    out << fmt::format("{:<{}}  {:>9}  {:>6}  {:>12}  {:>12}  {:>10}\n", t.name, width, p.partition,
                       p.leader, p.low, p.high, p.messages());
  out << fmt::format("{:<{}}  {:>9}  {:>6}  {:>12}  {:>12}  {:>10}\n", t.name, width, "total", "",
                     "", "", t.messages());
}

void write_group_rows(std::ostream& out, const GroupStats& g, size_t width) {
  const std::string name = g.configured ? g.name + " *" : g.name;
  if (!g.known) {
    out << fmt::format("{:<{}}  absent (no members, no committed offsets)  lag {}\n", name, width,
                       g.lag());
    return;
  }
  bool first = true;
  for (const auto& p : g.partitions) {
    out << fmt::format("{:<{}}  {:<19}  {:>7}  {:>9}  {:>12}  {:>12}  {:>10}\n", first ? name : "",
                       width, first ? g.state : "", first ? std::to_string(g.members) : "",
                       p.partition, p.committed ? std::to_string(*p.committed) : "-", p.high,
                       p.lag);
    first = false;
  }
  if (first)  // the main topic is absent: nothing to lag behind
    out << fmt::format("{:<{}}  {:<19}  {:>7}\n", name, width, g.state, g.members);
  else
    out << fmt::format("{:<{}}  {:<19}  {:>7}  {:>9}  {:>12}  {:>12}  {:>10}\n", "", width, "", "",
                       "total", "", "", g.lag());
}

void write_type_rows(std::ostream& out, const TypeScan& scan) {
  out << fmt::format("\nEVENT TYPES (scanned {} of {} records{}, newest first; --scan-limit {})\n",
                     scan.scanned, scan.available, scan.complete ? ", complete" : "", scan.limit);
  std::vector<std::pair<std::string, uint64_t>> rows(scan.counts.begin(), scan.counts.end());
  std::stable_sort(rows.begin(), rows.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  size_t width = 16;
  for (const auto& [type, n] : rows) width = std::max(width, type.size());
  for (const auto& [type, n] : rows) out << fmt::format("{:<{}}  {:>10}\n", type, width, n);
  if (scan.without_event_type > 0)
    out << fmt::format("{:<{}}  {:>10}\n", "(no event_type)", width, scan.without_event_type);
  for (const auto& p : scan.partitions)
    out << (p.to > p.from
                ? fmt::format("  partition {}: offsets {}..{}\n", p.partition, p.from, p.to - 1)
                : fmt::format("  partition {}: nothing scanned\n", p.partition));
}

}  // namespace

void write_stats_table(std::ostream& out, const BusStats& s, const StatsRates* rates) {
  out << fmt::format("bus {} at {}, {}\n\n", s.main.name, s.bootstrap_servers,
                     format_body_time(s.taken_at));
  const size_t topic_width = std::max({size_t{5}, s.main.name.size(), s.dlq_topic.name.size()});
  out << fmt::format("{:<{}}  {:>9}  {:>6}  {:>12}  {:>12}  {:>10}\n", "TOPIC", topic_width,
                     "PARTITION", "LEADER", "LOW", "HIGH", "MESSAGES");
  write_topic_rows(out, s.main, topic_width);
  write_topic_rows(out, s.dlq_topic, topic_width);

  size_t group_width = 14;
  for (const auto& g : s.groups) group_width = std::max(group_width, g.name.size() + 2);
  out << fmt::format("\n{:<{}}  {:<19}  {:>7}  {:>9}  {:>12}  {:>12}  {:>10}\n", "CONSUMER GROUP",
                     group_width, "STATE", "MEMBERS", "PARTITION", "COMMITTED", "HIGH", "LAG");
  for (const auto& g : s.groups) write_group_rows(out, g, group_width);
  out << "(* = consumer_group of the config)\n";

  out << '\n';
  if (!s.dlq_topic.exists) {
    out << fmt::format("DLQ {}: absent (no such topic; nothing was dead-lettered)\n",
                       s.dlq_topic.name);
  } else if (s.dlq.depth == 0) {
    out << fmt::format("DLQ {}: empty\n", s.dlq_topic.name);
  } else {
    out << fmt::format("DLQ {}: {} record{}", s.dlq_topic.name, s.dlq.depth,
                       s.dlq.depth == 1 ? "" : "s");
    if (s.dlq.oldest)
      out << fmt::format("; oldest {} ago ({})", format_age(s.dlq.oldest->age_seconds),
                         record_time(*s.dlq.oldest));
    if (s.dlq.newest)
      out << fmt::format("; newest {} ago ({})", format_age(s.dlq.newest->age_seconds),
                         record_time(*s.dlq.newest));
    out << '\n';
  }
  if (s.by_type) write_type_rows(out, *s.by_type);
  if (rates && rates->seconds > 0) {
    out << fmt::format("\nRATES over {:.1f}s: in {:.1f} msg/s, DLQ in {:.1f} msg/s", rates->seconds,
                       rates->messages_in_per_second, rates->dlq_in_per_second);
    for (const auto& [group, change] : rates->lag_change_per_second)
      out << fmt::format("; lag {} {:+.1f}/s", group, change);
    out << '\n';
  }
}

namespace {

Json topic_json(const TopicStats& t, std::string_view role) {
  Json out = Json::object();
  out["topic"] = t.name;
  out["role"] = role;
  out["exists"] = t.exists;
  Json parts = Json::array();
  for (const auto& p : t.partitions)
    parts.push_back(Json{{"partition", p.partition},
                         {"leader", p.leader},
                         {"low", p.low},
                         {"high", p.high},
                         {"messages", p.messages()}});
  out["partitions"] = std::move(parts);
  out["messages"] = t.messages();
  return out;
}

Json group_json(const GroupStats& g) {
  Json out = Json::object();
  out["group"] = g.name;
  out["configured"] = g.configured;
  out["exists"] = g.known;
  out["state"] = g.state;
  out["members"] = g.members;
  Json parts = Json::array();
  for (const auto& p : g.partitions)
    parts.push_back(Json{{"partition", p.partition},
                         {"committed", p.committed ? Json(*p.committed) : Json(nullptr)},
                         {"high", p.high},
                         {"lag", p.lag}});
  out["partitions"] = std::move(parts);
  out["lag"] = g.lag();
  return out;
}

Json record_json(const std::optional<DlqRecordInfo>& r) {
  if (!r) return nullptr;
  return Json{
      {"partition", r->partition},
      {"offset", r->offset},
      {"timestamp", r->timestamp_ms >= 0 ? Json(format_epoch_ms(r->timestamp_ms)) : Json(nullptr)},
      {"dlq_timestamp", r->dlq_timestamp ? Json(*r->dlq_timestamp) : Json(nullptr)},
      {"age_seconds", std::round(r->age_seconds * 1000.0) / 1000.0}};
}

Json scan_json(const TypeScan& scan) {
  Json counts = Json::object();
  for (const auto& [type, n] : scan.counts) counts[type] = n;
  Json parts = Json::array();
  for (const auto& p : scan.partitions)
    parts.push_back(Json{{"partition", p.partition}, {"from", p.from}, {"to", p.to}});
  return Json{{"limit", scan.limit},
              {"scanned", scan.scanned},
              {"available", scan.available},
              {"complete", scan.complete},
              {"partitions", parts},
              {"counts", counts},
              {"without_event_type", scan.without_event_type}};
}

}  // namespace

Json stats_to_json(const BusStats& s, const StatsRates* rates) {
  Json out = Json::object();
  out["bootstrap_servers"] = s.bootstrap_servers;
  out["taken_at"] = format_body_time(s.taken_at);
  out["topics"] = Json::array({topic_json(s.main, "main"), topic_json(s.dlq_topic, "dlq")});
  Json groups = Json::array();
  for (const auto& g : s.groups) groups.push_back(group_json(g));
  out["groups"] = std::move(groups);
  out["dlq"] = Json{{"topic", s.dlq_topic.name},
                    {"exists", s.dlq_topic.exists},
                    {"depth", s.dlq.depth},
                    {"oldest", record_json(s.dlq.oldest)},
                    {"newest", record_json(s.dlq.newest)}};
  if (s.by_type) out["by_type"] = scan_json(*s.by_type);
  if (rates && rates->seconds > 0) {
    Json lag = Json::object();
    for (const auto& [group, change] : rates->lag_change_per_second) lag[group] = change;
    out["rates"] = Json{{"seconds", rates->seconds},
                        {"messages_in_per_second", rates->messages_in_per_second},
                        {"dlq_in_per_second", rates->dlq_in_per_second},
                        {"lag_change_per_second", lag}};
  }
  return out;
}

void write_stats_prometheus(std::ostream& out, const BusStats& s) {
  MetricsRegistry r;
  using T = MetricType;
  r.declare("kafka_eventbus_topic_exists", T::gauge, "1 when the topic exists, 0 when absent");
  r.declare("kafka_eventbus_topic_low_watermark", T::gauge, "Log start offset per partition");
  r.declare("kafka_eventbus_topic_high_watermark", T::gauge, "High watermark per partition");
  r.declare("kafka_eventbus_topic_messages", T::gauge, "Records retained per partition");
  r.declare("kafka_eventbus_consumer_group_members", T::gauge, "Members of the consumer group");
  r.declare("kafka_eventbus_consumer_group_committed_offset", T::gauge,
            "Committed offset of the group per partition of the bus topic");
  r.declare(std::string(metric::consumer_lag), T::gauge,
            "Records between the partition's high watermark and the group's committed offset");
  r.declare("kafka_eventbus_dlq_depth", T::gauge, "Records retained in the dead-letter queue");
  r.declare("kafka_eventbus_dlq_oldest_age_seconds", T::gauge, "Age of the oldest DLQ record");
  r.declare("kafka_eventbus_dlq_newest_age_seconds", T::gauge, "Age of the newest DLQ record");
  for (const auto* t : {&s.main, &s.dlq_topic}) {
    r.set("kafka_eventbus_topic_exists", {{"messaging_destination", t->name}}, t->exists ? 1 : 0);
    for (const auto& p : t->partitions) {
      const MetricLabels labels{{"messaging_destination", t->name},
                                {"messaging_kafka_partition", std::to_string(p.partition)}};
      r.set("kafka_eventbus_topic_low_watermark", labels, static_cast<double>(p.low));
      r.set("kafka_eventbus_topic_high_watermark", labels, static_cast<double>(p.high));
      r.set("kafka_eventbus_topic_messages", labels, static_cast<double>(p.messages()));
    }
  }
  for (const auto& g : s.groups) {
    r.set("kafka_eventbus_consumer_group_members",
          {{"messaging_kafka_consumer_group", g.name}, {"state", g.state}}, g.members);
    for (const auto& p : g.partitions) {
      const MetricLabels labels{{"messaging_kafka_partition", std::to_string(p.partition)},
                                {"messaging_kafka_consumer_group", g.name},
                                {"messaging_destination", s.main.name}};
      if (p.committed)
        r.set("kafka_eventbus_consumer_group_committed_offset", labels,
              static_cast<double>(*p.committed));
      r.set(metric::consumer_lag, labels, static_cast<double>(p.lag));
    }
  }
  const MetricLabels dlq{{"messaging_destination", s.dlq_topic.name}};
  r.set("kafka_eventbus_dlq_depth", dlq, static_cast<double>(s.dlq.depth));
  if (s.dlq.oldest) r.set("kafka_eventbus_dlq_oldest_age_seconds", dlq, s.dlq.oldest->age_seconds);
  if (s.dlq.newest) r.set("kafka_eventbus_dlq_newest_age_seconds", dlq, s.dlq.newest->age_seconds);
  if (s.by_type) {
    r.declare("kafka_eventbus_scan_events", T::gauge,
              "Records per event_type header among the scanned records (--by-type)");
    r.declare("kafka_eventbus_scan_records", T::gauge, "Records scanned (--by-type)");
    r.declare("kafka_eventbus_scan_complete", T::gauge, "1 when the scan covered every record");
    for (const auto& [type, n] : s.by_type->counts)
      r.set("kafka_eventbus_scan_events", {{"event_type", type}}, static_cast<double>(n));
    if (s.by_type->without_event_type > 0)
      r.set("kafka_eventbus_scan_events", {{"event_type", ""}},
            static_cast<double>(s.by_type->without_event_type));
    r.set("kafka_eventbus_scan_records", {}, static_cast<double>(s.by_type->scanned));
    r.set("kafka_eventbus_scan_complete", {}, s.by_type->complete ? 1 : 0);
  }
  r.write_text(out);
}

}  // namespace evbus
