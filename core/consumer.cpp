#include "core/consumer.hpp"

#include <fmt/format.h>

#include <cstring>

#include "core/envelope.hpp"
#include "core/kafka_handles.hpp"

namespace evbus {

std::optional<StartFrom> parse_start_from(std::string_view text) {
  if (text == "beginning") return StartFrom::beginning;
  if (text == "end") return StartFrom::end;
  if (text == "stored") return StartFrom::stored;
  return std::nullopt;
}

namespace {

struct PartitionState {
  int64_t end_snapshot = -1;  // high watermark when first assigned (exit_at_end only)
  int64_t position = -1;      // next offset this run will read, once known
  bool done = false;
};

bool is_cooperative(rd_kafka_t* rk) {
  const char* protocol = rd_kafka_rebalance_protocol(rk);
  return protocol != nullptr && std::strcmp(protocol, "COOPERATIVE") == 0;
}

}  // namespace

struct GroupConsumer::Impl {
  kafka::ClientContext context;
  kafka::ClientPtr client;
  ConsumerOptions options;
  std::map<int32_t, PartitionState> partitions;  // currently assigned
  std::map<int32_t, int64_t> resume_at;          // positions reached this run, across rebalances
  std::map<int32_t, int64_t> to_commit;          // partition -> next offset
  bool ever_assigned = false;
  int rebalance_count = 0;
  bool closed = false;

  void log(int level, const std::string& text) const {
    if (context.log) context.log(level, text);
  }

  int64_t committed_offset(int32_t partition) {
    kafka::PartitionListPtr list{rd_kafka_topic_partition_list_new(1)};
    rd_kafka_topic_partition_list_add(list.get(), options.topic.c_str(), partition);
    if (rd_kafka_committed(client.get(), list.get(), 10000) != RD_KAFKA_RESP_ERR_NO_ERROR)
      return RD_KAFKA_OFFSET_INVALID;
    return list->elems[0].offset;
  }

  // Where this run starts reading the partition, as an absolute offset.
  int64_t start_offset(int32_t partition, int64_t low, int64_t high) {
    if (auto it = resume_at.find(partition); it != resume_at.end()) return it->second;
    switch (options.from) {
      case StartFrom::beginning: return low;
      case StartFrom::end: return high;
      case StartFrom::stored: break;
    }
    const int64_t committed = committed_offset(partition);
    if (committed >= 0) return committed;
    return options.reset_to_earliest ? low : high;
  }

  void prepare_assignment(rd_kafka_topic_partition_list_t* parts) {
    for (int i = 0; i < parts->cnt; ++i) {
      auto& tp = parts->elems[i];
      PartitionState state;
      if (options.exit_at_end) {
        int64_t low = 0, high = 0;
        auto err = rd_kafka_query_watermark_offsets(client.get(), tp.topic, tp.partition, &low,
                                                    &high, 10000);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
          log(3, fmt::format("watermarks of {}[{}]: {}", tp.topic, tp.partition,
                             rd_kafka_err2str(err)));
        } else {
          state.end_snapshot = high;
          state.position = start_offset(tp.partition, low, high);
          state.done = state.position >= high;
          tp.offset = state.position;
        }
      }
      if (!options.exit_at_end || state.position < 0) {
        if (auto it = resume_at.find(tp.partition); it != resume_at.end()) {
          tp.offset = it->second;
        } else if (options.from == StartFrom::beginning) {
          tp.offset = RD_KAFKA_OFFSET_BEGINNING;
        } else if (options.from == StartFrom::end) {
          tp.offset = RD_KAFKA_OFFSET_END;
        }
      }
      partitions[tp.partition] = state;
    }
    ever_assigned = true;
  }

  void commit_partitions(const rd_kafka_topic_partition_list_t* parts) {
    kafka::PartitionListPtr list{rd_kafka_topic_partition_list_new(parts->cnt)};
    for (int i = 0; i < parts->cnt; ++i) {
      auto it = to_commit.find(parts->elems[i].partition);
      if (it == to_commit.end()) continue;
      rd_kafka_topic_partition_list_add(list.get(), options.topic.c_str(), it->first)->offset =
          it->second;
    }
    if (list->cnt == 0) return;
    auto err = rd_kafka_commit(client.get(), list.get(), 0);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      log(3, fmt::format("commit on revocation failed: {}", rd_kafka_err2str(err)));
      return;
    }
    for (int i = 0; i < list->cnt; ++i) to_commit.erase(list->elems[i].partition);
  }

  static void on_rebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                           rd_kafka_topic_partition_list_t* parts, void* /*opaque*/) {
    auto* self = static_cast<Impl*>(kafka::context_of(rk)->owner);
    const bool cooperative = is_cooperative(rk);
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
      self->prepare_assignment(parts);
      if (cooperative)
        rd_kafka_incremental_assign(rk, parts);
      else
        rd_kafka_assign(rk, parts);
      return;
    }
    // Revoked (or lost): commit what was processed so the next owner does not redo it.
    ++self->rebalance_count;
    if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS && !rd_kafka_assignment_lost(rk))
      self->commit_partitions(parts);
    for (int i = 0; i < parts->cnt; ++i) self->partitions.erase(parts->elems[i].partition);
    if (cooperative)
      rd_kafka_incremental_unassign(rk, parts);
    else
      rd_kafka_assign(rk, nullptr);
  }
};

GroupConsumer::GroupConsumer(const ClientProperties& properties, ConsumerOptions options,
                             Diagnostics diagnostics)
    : impl_(std::make_unique<Impl>()) {
  impl_->context.log = std::move(diagnostics);
  impl_->context.owner = impl_.get();
  impl_->options = std::move(options);
  auto conf = kafka::make_conf(properties);
  kafka::attach_context(conf.get(), &impl_->context);
  rd_kafka_conf_set_rebalance_cb(conf.get(), &Impl::on_rebalance);
  impl_->client = kafka::make_client(RD_KAFKA_CONSUMER, std::move(conf));
  rd_kafka_poll_set_consumer(impl_->client.get());
}

GroupConsumer::~GroupConsumer() { close(); }

void GroupConsumer::close() {
  if (!impl_ || impl_->closed) return;
  impl_->closed = true;
  rd_kafka_consumer_close(impl_->client.get());
}

void GroupConsumer::ensure_reachable(std::chrono::milliseconds timeout) {
  (void)kafka::fetch_metadata(impl_->client.get(), timeout);
}

bool GroupConsumer::topic_exists(std::chrono::milliseconds timeout) {
  return kafka::topic_partition_count(impl_->client.get(), impl_->options.topic, timeout) > 0;
}

void GroupConsumer::subscribe() {
  kafka::PartitionListPtr topics{rd_kafka_topic_partition_list_new(1)};
  rd_kafka_topic_partition_list_add(topics.get(), impl_->options.topic.c_str(),
                                    RD_KAFKA_PARTITION_UA);
  auto err = rd_kafka_subscribe(impl_->client.get(), topics.get());
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    throw Error(ErrorKind::runtime,
                fmt::format("cannot subscribe to {}: {}", impl_->options.topic,
                            rd_kafka_err2str(err)),
                static_cast<int>(err));
}

std::optional<InRecord> GroupConsumer::poll(std::chrono::milliseconds timeout) {
  kafka::MessagePtr msg{
      rd_kafka_consumer_poll(impl_->client.get(), static_cast<int>(timeout.count()))};
  if (!impl_->context.fatal_error.empty())
    throw Error(ErrorKind::runtime, "fatal consumer error: " + impl_->context.fatal_error);
  if (!msg) return std::nullopt;
  auto& states = impl_->partitions;
  if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
    if (auto it = states.find(msg->partition); it != states.end()) it->second.done = true;
    return std::nullopt;
  }
  if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    impl_->log(msg->err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC ||
                       msg->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART
                   ? 4
                   : 3,
               fmt::format("consumer: {}", rd_kafka_message_errstr(msg.get())));
    return std::nullopt;
  }
  if (impl_->options.exit_at_end) {
    auto it = states.find(msg->partition);
    if (it != states.end() && it->second.end_snapshot >= 0 &&
        msg->offset >= it->second.end_snapshot) {
      it->second.done = true;  // arrived after the snapshot: not ours to read or commit
      return std::nullopt;
    }
  }
  return kafka::to_record(msg.get());
}

void GroupConsumer::mark_done(const InRecord& record) {
  const int64_t next = record.offset + 1;
  impl_->to_commit[record.partition] = next;
  impl_->resume_at[record.partition] = next;
  if (auto it = impl_->partitions.find(record.partition); it != impl_->partitions.end()) {
    it->second.position = next;
    if (it->second.end_snapshot >= 0 && next >= it->second.end_snapshot) it->second.done = true;
  }
}

void GroupConsumer::commit() {
  if (impl_->to_commit.empty()) return;
  kafka::PartitionListPtr list{
      rd_kafka_topic_partition_list_new(static_cast<int>(impl_->to_commit.size()))};
  for (const auto& [partition, offset] : impl_->to_commit)
    rd_kafka_topic_partition_list_add(list.get(), impl_->options.topic.c_str(), partition)
        ->offset = offset;
  auto err = rd_kafka_commit(impl_->client.get(), list.get(), 0);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    throw Error(ErrorKind::runtime, fmt::format("offset commit failed: {}", rd_kafka_err2str(err)),
                static_cast<int>(err), true);
  impl_->to_commit.clear();
}

bool GroupConsumer::reached_end() const {
  if (!impl_->options.exit_at_end || !impl_->ever_assigned) return false;
  for (const auto& [partition, state] : impl_->partitions)
    if (!state.done) return false;
  return true;
}

int GroupConsumer::rebalances() const { return impl_->rebalance_count; }

ConsumedEvent inspect_record(InRecord record, const SchemaSet& schemas) {
  ConsumedEvent out;
  if (const Header* h = find_header(record.headers, "event_type"); h && h->value)
    out.event_type = *h->value;
  if (record.value) {
    try {
      out.body = Json::parse(*record.value);
    } catch (const Json::parse_error& e) {
      out.problems.push_back({"", fmt::format("value is not JSON: {}", e.what())});
    }
  } else {
    out.problems.push_back({"", "value is null"});
  }
  if (!out.event_type) {
    out.problems.push_back({"", "record has no event_type header"});
  } else if (out.body && out.body->is_object()) {
    if (schemas.find(*out.event_type) == nullptr) {
      out.problems.push_back({"", fmt::format("unknown event type '{}'", *out.event_type)});
    } else {
      Json input = *out.body;
      // Routing follows the header, as eventsource-py does; the body's own type is kept.
      input.erase("event_type");
      auto built = build_event(input, out.event_type, schemas, EnvelopeDefaults::system());
      for (auto& e : built.errors) out.problems.push_back(std::move(e));
    }
  } else if (out.body) {
    out.problems.push_back({"", "value is not a JSON object"});
  }
  out.record = std::move(record);
  return out;
}

namespace {

bool wanted(const std::vector<std::string>& types, const std::optional<std::string>& type) {
  if (types.empty()) return true;
  if (!type) return false;
  for (const auto& t : types)
    if (t == *type) return true;
  return false;
}

}  // namespace

ConsumeSummary consume_events(const BusConfig& config, const SchemaSet& schemas,
                              const ConsumeRequest& request, const EventSink& sink,
                              const std::atomic<bool>& stop, Diagnostics diagnostics) {
  ConsumerOptions options;
  options.topic = config.topic_name();
  options.from = request.from;
  options.exit_at_end = request.exit_at_end;
  options.reset_to_earliest = config.auto_offset_reset != "latest";
  GroupConsumer consumer(consumer_properties(config), options, std::move(diagnostics));
  consumer.ensure_reachable(request.connect_timeout);

  ConsumeSummary summary;
  if (!consumer.topic_exists(request.connect_timeout)) {
    summary.topic_missing = true;
    if (request.exit_at_end) return summary;  // nothing to read, so the end is reached at once
  }
  consumer.subscribe();

  constexpr uint64_t kCommitEvery = 500;
  uint64_t uncommitted = 0;
  auto last_commit = std::chrono::steady_clock::now();
  auto commit_now = [&] {
    consumer.commit();
    uncommitted = 0;
    last_commit = std::chrono::steady_clock::now();
  };

  while (!stop.load()) {
    if (request.max && summary.delivered_to_sink >= *request.max) break;
    if (consumer.reached_end()) break;
    auto record = consumer.poll(std::chrono::milliseconds(100));
    if (!record) {
      if (uncommitted > 0 && std::chrono::steady_clock::now() - last_commit > std::chrono::seconds(1))
        commit_now();
      continue;
    }
    ++summary.polled;
    auto event = inspect_record(std::move(*record), schemas);
    if (!wanted(request.types, event.event_type)) {
      ++summary.filtered;
      consumer.mark_done(event.record);
      ++uncommitted;
      continue;
    }
    if (!event.problems.empty()) ++summary.invalid;
    if (sink(event) == Verdict::stop) break;
    ++summary.delivered_to_sink;
    consumer.mark_done(event.record);
    if (++uncommitted >= kCommitEvery) commit_now();
  }
  commit_now();
  summary.rebalances = consumer.rebalances();
  consumer.close();
  return summary;
}

}  // namespace evbus
