#include "core/consumer.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <deque>

#include "core/envelope.hpp"
#include "core/kafka_handles.hpp"
#include "core/output.hpp"
#include "core/retry.hpp"

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
  bool cut = false;  // a record past the snapshot was dropped: never extend the end past it
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
  // The group's committed offset when --from beginning/end repositioned this run: commits never
  // go below it, so re-reading history never rewinds a group that other services share.
  std::map<int32_t, int64_t> commit_floor;
  bool ever_assigned = false;
  int rebalance_count = 0;
  bool closed = false;
  std::function<void(const std::vector<int32_t>&)> revoke_hook;

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
      case StartFrom::beginning:
        return low;
      case StartFrom::end:
        return high;
      case StartFrom::stored:
        break;
    }
    const int64_t committed = committed_offset(partition);
    if (committed >= 0) return committed;
    return options.reset_to_earliest ? low : high;
  }

  void prepare_assignment(rd_kafka_topic_partition_list_t* parts) {
    for (int i = 0; i < parts->cnt; ++i) {
      auto& tp = parts->elems[i];
      PartitionState state;
      if (options.from != StartFrom::stored && !commit_floor.contains(tp.partition))
        commit_floor[tp.partition] = committed_offset(tp.partition);
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
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
      log(3, fmt::format("commit on revocation failed: {}", rd_kafka_err2str(err)));
    // Either way these are no longer ours to commit: the next owner redoes what failed here.
    for (int i = 0; i < list->cnt; ++i) to_commit.erase(list->elems[i].partition);
  }

  kafka::PartitionListPtr one_partition(int32_t partition) const {
    kafka::PartitionListPtr list{rd_kafka_topic_partition_list_new(1)};
    rd_kafka_topic_partition_list_add(list.get(), options.topic.c_str(), partition);
    return list;
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
    // Leaving the group on close revokes everything too; that is not a rebalance.
    if (parts->cnt > 0 && !self->closed) ++self->rebalance_count;
    if (self->revoke_hook) {
      std::vector<int32_t> revoked;
      for (int i = 0; i < parts->cnt; ++i) revoked.push_back(parts->elems[i].partition);
      if (!self->closed) self->revoke_hook(revoked);
    }
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

GroupConsumer::~GroupConsumer() {
  close();
}

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
    throw Error(
        ErrorKind::runtime,
        fmt::format("cannot subscribe to {}: {}", impl_->options.topic, rd_kafka_err2str(err)),
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
    // The end reached may be older than an end extended since (extend_end), so compare.
    if (auto it = states.find(msg->partition);
        it != states.end() &&
        (it->second.end_snapshot < 0 || msg->offset >= it->second.end_snapshot))
      it->second.done = true;
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
      it->second.cut = true;
      return std::nullopt;
    }
  }
  return kafka::to_record(msg.get());
}

void GroupConsumer::mark_done(const InRecord& record) {
  const int64_t next = record.offset + 1;
  const auto floor = impl_->commit_floor.find(record.partition);
  if (floor == impl_->commit_floor.end() || next > floor->second)
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
    rd_kafka_topic_partition_list_add(list.get(), impl_->options.topic.c_str(), partition)->offset =
        offset;
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

int GroupConsumer::rebalances() const {
  return impl_->rebalance_count;
}

void GroupConsumer::pause(int32_t partition) {
  auto list = impl_->one_partition(partition);
  auto err = rd_kafka_pause_partitions(impl_->client.get(), list.get());
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    impl_->log(3, fmt::format("pause of partition {}: {}", partition, rd_kafka_err2str(err)));
}

void GroupConsumer::resume(int32_t partition) {
  auto list = impl_->one_partition(partition);
  auto err = rd_kafka_resume_partitions(impl_->client.get(), list.get());
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    impl_->log(3, fmt::format("resume of partition {}: {}", partition, rd_kafka_err2str(err)));
}

bool GroupConsumer::is_assigned(int32_t partition) const {
  return impl_->partitions.count(partition) > 0;
}

void GroupConsumer::extend_end(int32_t partition, int64_t end) {
  auto it = impl_->partitions.find(partition);
  if (it == impl_->partitions.end() || it->second.end_snapshot < 0 || it->second.cut) return;
  if (end <= it->second.end_snapshot) return;
  it->second.end_snapshot = end;
  it->second.done = it->second.position >= 0 && it->second.position >= end;
}

void GroupConsumer::on_statistics(std::function<void(std::string_view json)> sink) {
  impl_->context.statistics = std::move(sink);
}

void GroupConsumer::set_revoke_hook(std::function<void(const std::vector<int32_t>&)> hook) {
  impl_->revoke_hook = std::move(hook);
}

ConsumedEvent inspect_record(InRecord record, const SchemaSet& schemas) {
  ConsumedEvent out;
  const Header* type_header = find_header(record.headers, "event_type");
  bool type_not_utf8 = false;
  if (type_header && type_header->value) {
    // A non-UTF-8 type is a poison pill for eventsource-py; here it is just an invalid record.
    if (is_valid_utf8(*type_header->value))
      out.event_type = *type_header->value;
    else
      type_not_utf8 = true;
  }
  out.retry_count = parse_retry_count(record.headers);
  if (record.value) {
    auto parsed = parse_event_json(*record.value);
    if (parsed.value)
      out.body = std::move(parsed.value);
    else
      out.problems.push_back({"", "value is not JSON: " + parsed.error});
  } else {
    out.problems.push_back({"", "value is null"});
  }
  if (type_not_utf8) {
    out.problems.push_back({"", "event_type header is not valid UTF-8"});
  } else if (!out.event_type) {
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

double now_epoch_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string where(const InRecord& r) {
  return fmt::format("{}[{}]@{}", r.topic, r.partition, r.offset);
}

// Why eventsource-py's consumer could not turn this record into an event (contract §3), as the
// message of its DeserializationError; nullopt when it deserializes. Without schemas evbus knows
// no types, so only the header and the JSON object are checked.
std::optional<std::string> deserialization_failure(const ConsumedEvent& event,
                                                   const SchemaSet& schemas) {
  const Header* type_header = find_header(event.record.headers, "event_type");
  if (type_header && type_header->value && !event.event_type)
    return std::string("event_type header is not valid UTF-8");
  if (!event.event_type || event.event_type->empty())
    return std::string("Message missing event_type header");
  const std::string& type = *event.event_type;
  if (!schemas.empty() && schemas.find(type) == nullptr)
    return fmt::format("Unknown event type: {}", type);
  if (!event.record.value) return fmt::format("Failed to deserialize {}: value is null", type);
  if (!event.body || !event.body->is_object() || (!schemas.empty() && !event.problems.empty()))
    return fmt::format("Failed to deserialize {}: {}", type, describe_errors(event.problems));
  return std::nullopt;
}

// The run loop shared by consume (print) and consume --exec (handle, retry, dead-letter).
class ConsumeLoop {
 public:
  ConsumeLoop(const BusConfig& config, const SchemaSet& schemas, const ConsumeRequest& request,
              const EventHandler& handler, const std::atomic<bool>& stop, Diagnostics diagnostics,
              Notices notices, bool handling)
      : config_(config),
        schemas_(schemas),
        request_(request),
        handler_(handler),
        stop_(stop),
        diagnostics_(std::move(diagnostics)),
        notices_(std::move(notices)),
        handling_(handling),
        policy_(RetryPolicy::from_config(config)),
        consumer_(consumer_properties(config), options(config, request), diagnostics_) {}

  ConsumeSummary run() {
    try {
      run_loop();
    } catch (...) {
      finish();
      throw;
    }
    finish();
    if (fatal_) throw *fatal_;
    return summary_;
  }

 private:
  // Hands the statistics out and marks the connection closed, on every way out of run().
  void finish() {
    summary_.rebalances = consumer_.rebalances();
    summary_.stats.rebalance_count = static_cast<uint64_t>(summary_.rebalances);
    if (fatal_ && !summary_.stats.last_error_at) summary_.stats.last_error_at = now_utc();
    if (metrics()) metrics()->connections_active(config_.consumer_group, false);
    if (request_.on_finish) request_.on_finish(summary_.stats);
  }

  BusMetrics* metrics() const { return request_.metrics; }

  void run_loop() {
    if (metrics())
      consumer_.on_statistics(
          [m = metrics(), group = config_.consumer_group](std::string_view json) {
            m->librdkafka_statistics(json, group);
          });
    consumer_.ensure_reachable(request_.connect_timeout);
    summary_.stats.connected_at = now_utc();
    if (metrics()) metrics()->connections_active(config_.consumer_group, true);
    if (!consumer_.topic_exists(request_.connect_timeout)) {
      summary_.topic_missing = true;
      if (request_.exit_at_end) return;  // nothing to read, so the end is reached at once
    }
    if (handling_ && schemas_.empty())
      notify(NoticeLevel::warning,
             "the config names no schemas: event types and bodies are not validated, so only "
             "records without an event_type header or with a non-JSON body are dead-lettered");
    consumer_.set_revoke_hook([this](const std::vector<int32_t>& revoked) {
      if (metrics()) metrics()->rebalance(config_.consumer_group);
      forget(revoked);
    });
    consumer_.subscribe();
    while (!stop_.load() && keep_going_) {
      if (request_.max && summary_.delivered_to_sink >= *request_.max) break;
      if (consumer_.reached_end() && parked_.empty()) break;
      if (!handle_due_records()) break;
      auto record = consumer_.poll(poll_timeout());
      if (!record) {
        commit_if_idle();
        continue;
      }
      if (!accept(*record)) continue;
      if (parked_.count(record->partition)) {
        parked_[record->partition].waiting.push_back(std::move(*record));
        continue;
      }
      keep_going_ = process(std::move(*record));
    }
    commit_now(true);
    consumer_.close();
  }

  // A partition whose next record waits for its retry_after; later records queue behind it.
  struct Parked {
    InRecord record;
    double due_epoch = 0;
    std::deque<InRecord> waiting;
  };

  static ConsumerOptions options(const BusConfig& config, const ConsumeRequest& request) {
    ConsumerOptions o;
    o.topic = config.topic_name();
    o.from = request.from;
    o.exit_at_end = request.exit_at_end;
    o.reset_to_earliest = config.auto_offset_reset != "latest";
    return o;
  }

  void notify(NoticeLevel level, const std::string& text) const {
    if (notices_) notices_(level, text);
  }

  // Counts a newly polled record; false for a duplicate (librdkafka refetching after a resume).
  bool accept(const InRecord& record) {
    auto [it, inserted] = highest_seen_.try_emplace(record.partition, record.offset);
    if (!inserted) {
      if (record.offset <= it->second) return false;
      it->second = record.offset;
    }
    ++summary_.polled;
    ++summary_.stats.events_consumed;
    summary_.stats.last_consume_at = now_utc();
    if (metrics()) {
      // As the seed: counted per record that carries an event_type header.
      const Header* type = find_header(record.headers, "event_type");
      if (type != nullptr && type->value)
        metrics()->consumed(record.topic, record.partition, printable(*type->value));
    }
    return true;
  }

  // Partitions taken away in a rebalance: their parked and queued records are the new owner's.
  void forget(const std::vector<int32_t>& revoked) {
    for (const int32_t p : revoked) {
      if (parked_.erase(p) > 0) consumer_.resume(p);  // librdkafka keeps pause across assignments
      highest_seen_.erase(p);
    }
  }

  std::chrono::milliseconds poll_timeout() const {
    constexpr std::chrono::milliseconds kIdle{100};
    if (parked_.empty()) return kIdle;
    double next_due = parked_.begin()->second.due_epoch;
    for (const auto& [p, parked] : parked_) next_due = std::min(next_due, parked.due_epoch);
    const auto wait = std::chrono::milliseconds(
        static_cast<int64_t>(std::ceil((next_due - now_epoch_seconds()) * 1000.0)));
    return std::clamp(wait, std::chrono::milliseconds(1), kIdle);
  }

  // Handles every parked record whose time has come, then what queued behind it.
  bool handle_due_records() {
    if (parked_.empty()) return true;
    const double now = now_epoch_seconds();
    std::vector<int32_t> due;
    for (const auto& [p, parked] : parked_)
      if (parked.due_epoch <= now) due.push_back(p);
    for (const int32_t p : due) {
      Parked parked = std::move(parked_.at(p));
      parked_.erase(p);
      consumer_.resume(p);
      if (!handle(std::move(parked.record))) return false;
      while (!parked.waiting.empty()) {
        InRecord next = std::move(parked.waiting.front());
        parked.waiting.pop_front();
        if (parked_.count(p)) {  // it parked again: the rest keeps waiting, in order
          parked_[p].waiting.push_back(std::move(next));
          continue;
        }
        if (!process(std::move(next))) return false;
      }
      if (stop_.load()) return false;
    }
    return true;
  }

  // The next record of its partition: wait for its retry_after if that is ahead, else handle it.
  bool process(InRecord record) {
    if (handling_) {
      const double now = now_epoch_seconds();
      const RetryAfter after = parse_retry_after(record.headers, now, policy_.longest_delay());
      if (after.problem) {
        notify(NoticeLevel::warning,
               fmt::format("{}: {}; handling it now", where(record), *after.problem));
      } else if (after.due_epoch > now) {
        park(std::move(record), after.due_epoch);
        return true;
      }
    }
    return handle(std::move(record));
  }

  void park(InRecord record, double due_epoch) {
    const int32_t p = record.partition;
    notify(NoticeLevel::info,
           fmt::format("{}: waiting {:.3f} s for retry_after; partition {} paused", where(record),
                       due_epoch - now_epoch_seconds(), p));
    ++summary_.retry_waits;
    consumer_.pause(p);
    Parked parked;
    parked.record = std::move(record);
    parked.due_epoch = due_epoch;
    parked_[p] = std::move(parked);
  }

  bool handle(InRecord record) {
    const auto started = std::chrono::steady_clock::now();
    const std::string topic = record.topic;
    const bool go_on = handle_record(std::move(record));
    if (metrics()) metrics()->consume_duration(topic, elapsed_ms(started));
    return go_on;
  }

  static double elapsed_ms(std::chrono::steady_clock::time_point since) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - since)
        .count();
  }

  bool handle_record(InRecord record) {
    ConsumedEvent event = inspect_record(std::move(record), schemas_);
    if (handling_) {
      if (auto why = deserialization_failure(event, schemas_)) {
        ++summary_.invalid;
        return dead_letter(
            event.record, DeadLetter{DlqReason::deserialization_error, "DeserializationError", *why,
                                     event.retry_count});
      }
    }
    if (!wanted(request_.types, event.event_type)) {
      ++summary_.filtered;
      ++summary_.stats.events_processed_success;  // no handler for it: a success, as in §3
      done(event.record);
      return true;
    }
    if (!event.problems.empty()) ++summary_.invalid;
    const auto handler_started = std::chrono::steady_clock::now();
    const Disposition d = handler_(event);
    if (d.kind == Disposition::Kind::stop) return false;
    if (handling_ && metrics()) record_handler_metrics(event, d, elapsed_ms(handler_started));
    ++summary_.delivered_to_sink;
    if (d.kind == Disposition::Kind::failed) return failed(event, d);
    ++summary_.stats.events_processed_success;
    done(event.record);
    return true;
  }

  void record_handler_metrics(const ConsumedEvent& event, const Disposition& d, double ms) const {
    const std::string type = event.event_type.value_or("");
    metrics()->handler_duration(request_.handler_name, type, ms);
    if (d.kind == Disposition::Kind::failed)
      metrics()->handler_error(request_.handler_name, type, d.error_type);
    else
      metrics()->handler_invoked(request_.handler_name, type);
  }

  bool failed(const ConsumedEvent& event, const Disposition& d) {
    auto& stats = summary_.stats;
    ++stats.events_processed_failed;
    ++stats.handler_errors;
    stats.last_error_at = now_utc();
    const int64_t count = event.retry_count;
    if (!policy_.should_retry(count))
      return dead_letter(event.record, DeadLetter{DlqReason::max_retries_exceeded, d.error_type,
                                                  d.message, count});
    const double delay = policy_.delay_for(count);
    const OutRecord copy = make_retry_record(event.record, count + 1, now_epoch_seconds() + delay);
    const DeliveryReport report = deliver(copy);
    if (report.error) {
      notify(NoticeLevel::warning,
             fmt::format("{}: retry copy not acknowledged ({}); dead-lettering it",
                         where(event.record), *report.error));
      return dead_letter(event.record,
                         DeadLetter{DlqReason::republish_failed, "KafkaError",
                                    "cannot republish for retry: " + *report.error, count});
    }
    ++summary_.retried;
    // With exit_at_end the run also follows the copy it just appended.
    if (report.topic == config_.topic_name())
      consumer_.extend_end(report.partition, report.offset + 1);
    notify(NoticeLevel::info,
           fmt::format("{}: {} ({}); retry {}/{} in {:.3f} s as {}[{}]@{}", where(event.record),
                       d.error_type, first_line(d.message), count + 1, policy_.max_retries, delay,
                       report.topic, report.partition, report.offset));
    done(event.record);
    return true;
  }

  bool dead_letter(const InRecord& record, const DeadLetter& letter) {
    if (!config_.enable_dlq) {
      if (request_.skip_failed) {
        ++summary_.skipped;
        notify(NoticeLevel::warning,
               fmt::format("{}: {}: {} ({}); enable_dlq is false, skipped", where(record),
                           to_string(letter.reason), letter.error_type,
                           first_line(letter.error_message)));
        done(record);
        return true;
      }
      fatal_ = Error(ErrorKind::handler_failed,
                     fmt::format("{}: {} ({}: {}) and enable_dlq is false: stopped, the record "
                                 "stays uncommitted (--skip-failed commits and skips such records)",
                                 where(record), to_string(letter.reason), letter.error_type,
                                 first_line(letter.error_message)));
      return false;
    }
    const OutRecord copy = make_dlq_record(record, letter, config_.dlq_topic_name(),
                                           config_.consumer_group, now_utc());
    const DeliveryReport report = deliver(copy);
    if (report.error) {
      fatal_ =
          Error(ErrorKind::runtime,
                fmt::format("{}: DLQ copy to {} not acknowledged: {}; stopped, the record stays "
                            "uncommitted",
                            where(record), copy.topic, *report.error));
      return false;
    }
    ++summary_.dead_lettered;
    ++summary_.stats.messages_sent_to_dlq;
    if (metrics()) metrics()->sent_to_dlq(to_string(letter.reason), letter.error_type);
    notify(NoticeLevel::warning, fmt::format("{}: {} ({}: {}); sent to {}[{}]@{}", where(record),
                                             to_string(letter.reason), letter.error_type,
                                             first_line(letter.error_message), report.topic,
                                             report.partition, report.offset));
    done(record);
    return true;
  }

  static std::string first_line(const std::string& text) {
    const auto nl = text.find('\n');
    return nl == std::string::npos ? text : text.substr(0, nl) + " ...";
  }

  // Sends a copy and waits for its delivery report: the source offset may be committed only once
  // the copy is durable, and waiting here keeps commits in offset order without bookkeeping.
  DeliveryReport deliver(const OutRecord& record) {
    if (!producer_)
      producer_ = std::make_unique<Producer>(producer_properties(config_), diagnostics_);
    const uint64_t id = ++next_copy_id_;
    DeliveryReport mine;
    mine.id = id;
    mine.topic = record.topic;
    if (auto refused = producer_->send(record, id)) {
      mine.error = *refused;
      return mine;
    }
    mine.error = "no delivery report";
    for (auto& report : producer_->flush(request_.delivery_timeout))
      if (report.id == id) mine = std::move(report);
    return mine;
  }

  void done(const InRecord& record) {
    consumer_.mark_done(record);
    ++uncommitted_;
    // A handler's side effects are not free to repeat: commit each record right away. Printing
    // is, so it commits in batches.
    constexpr uint64_t kCommitEvery = 500;
    if (handling_ || uncommitted_ >= kCommitEvery) commit_now(false);
  }

  void commit_if_idle() {
    if (uncommitted_ > 0 &&
        std::chrono::steady_clock::now() - last_commit_ > std::chrono::seconds(1))
      commit_now(false);
  }

  // A failed commit mid-run (e.g. during a rebalance) is retried with the next one; the final
  // commit's failure is an error.
  void commit_now(bool final) {
    try {
      consumer_.commit();
      uncommitted_ = 0;
      last_commit_ = std::chrono::steady_clock::now();
    } catch (const Error& e) {
      if (final) throw;
      notify(NoticeLevel::warning, fmt::format("{}; retrying with the next commit", e.what()));
    }
  }

  const BusConfig& config_;
  const SchemaSet& schemas_;
  const ConsumeRequest& request_;
  const EventHandler& handler_;
  const std::atomic<bool>& stop_;
  Diagnostics diagnostics_;
  Notices notices_;
  bool handling_;
  RetryPolicy policy_;
  GroupConsumer consumer_;
  std::unique_ptr<Producer> producer_;  // created by the first retry or DLQ copy
  uint64_t next_copy_id_ = 0;
  std::map<int32_t, Parked> parked_;
  std::map<int32_t, int64_t> highest_seen_;
  uint64_t uncommitted_ = 0;
  std::chrono::steady_clock::time_point last_commit_ = std::chrono::steady_clock::now();
  bool keep_going_ = true;
  std::optional<Error> fatal_;
  ConsumeSummary summary_;
};

}  // namespace

ConsumeSummary consume_events(const BusConfig& config, const SchemaSet& schemas,
                              const ConsumeRequest& request, const EventSink& sink,
                              const std::atomic<bool>& stop, Diagnostics diagnostics) {
  const EventHandler printer = [&sink](const ConsumedEvent& event) {
    return sink(event) == Verdict::stop ? Disposition::stop() : Disposition::handled();
  };
  ConsumeLoop loop(config, schemas, request, printer, stop, std::move(diagnostics), {}, false);
  return loop.run();
}

ConsumeSummary handle_events(const BusConfig& config, const SchemaSet& schemas,
                             const ConsumeRequest& request, const EventHandler& handler,
                             const std::atomic<bool>& stop, Diagnostics diagnostics,
                             Notices notices) {
  ConsumeLoop loop(config, schemas, request, handler, stop, std::move(diagnostics),
                   std::move(notices), true);
  return loop.run();
}

}  // namespace evbus
