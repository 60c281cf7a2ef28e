#include "core/kafka_handles.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <thread>

namespace evbus::kafka {

ConfPtr make_conf(const ClientProperties& properties) {
  ConfPtr conf{rd_kafka_conf_new()};
  std::array<char, 512> errstr{};
  for (const auto& [key, value] : properties) {
    if (rd_kafka_conf_set(conf.get(), key.c_str(), value.c_str(), errstr.data(), errstr.size()) !=
        RD_KAFKA_CONF_OK) {
      throw Error(ErrorKind::invalid_input,
                  fmt::format("client property '{}': {}", key, errstr.data()));
    }
  }
  return conf;
}

ClientContext* context_of(const rd_kafka_t* client) {
  return static_cast<ClientContext*>(rd_kafka_opaque(client));
}

namespace {
void log_to_context(const rd_kafka_t* rk, int level, const char* fac, const char* buf) {
  const auto* ctx = context_of(rk);
  if (ctx != nullptr && ctx->log) ctx->log(level, fmt::format("{}: {}", fac, buf));
}

void error_to_context(rd_kafka_t* rk, int err, const char* reason, void* opaque) {
  auto* ctx = static_cast<ClientContext*>(opaque);
  if (ctx == nullptr) return;
  const auto code = static_cast<rd_kafka_resp_err_t>(err);
  if (code == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) ctx->all_brokers_down = true;
  if (code == RD_KAFKA_RESP_ERR__FATAL) {
    std::array<char, 512> text{};
    rd_kafka_fatal_error(rk, text.data(), text.size());
    ctx->fatal_error = text.data();
  }
  if (ctx->log) ctx->log(3, fmt::format("{}: {}", rd_kafka_err2name(code), reason));
}

int statistics_to_context(rd_kafka_t* /*rk*/, char* json, size_t len, void* opaque) {
  auto* ctx = static_cast<ClientContext*>(opaque);
  if (ctx != nullptr && ctx->statistics) ctx->statistics(std::string_view(json, len));
  return 0;  // librdkafka frees the JSON
}
}  // namespace

void attach_context(rd_kafka_conf_t* conf, ClientContext* context) {
  rd_kafka_conf_set_opaque(conf, context);
  rd_kafka_conf_set_log_cb(conf, log_to_context);
  rd_kafka_conf_set_error_cb(conf, error_to_context);
  rd_kafka_conf_set_stats_cb(conf, statistics_to_context);
}

ClientPtr make_client(rd_kafka_type_t type, ConfPtr conf) {
  std::array<char, 512> errstr{};
  rd_kafka_t* rk = rd_kafka_new(type, conf.get(), errstr.data(), errstr.size());
  if (rk == nullptr) {
    throw Error(ErrorKind::invalid_input,
                fmt::format("cannot create Kafka client: {}", errstr.data()));
  }
  (void)conf.release();  // rd_kafka_new took ownership
  return ClientPtr{rk};
}

MetadataPtr fetch_metadata(rd_kafka_t* client, std::chrono::milliseconds timeout) {
  const rd_kafka_metadata_t* md = nullptr;
  auto err = rd_kafka_metadata(client, 1, nullptr, &md, static_cast<int>(timeout.count()));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    throw Error(ErrorKind::runtime,
                fmt::format("no answer from the Kafka cluster within {} ms: {}", timeout.count(),
                            rd_kafka_err2str(err)),
                static_cast<int>(err), true);
  }
  return MetadataPtr{md};
}

int topic_partition_count(rd_kafka_t* client, const std::string& topic,
                          std::chrono::milliseconds timeout) {
  auto md = fetch_metadata(client, timeout);
  for (int i = 0; i < md->topic_cnt; ++i) {
    const auto& t = md->topics[i];
    if (topic == t.topic) {
      if (t.err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) return -1;
      return t.partition_cnt;
    }
  }
  return -1;
}

AdminOptionsPtr admin_options(rd_kafka_t* client, rd_kafka_admin_op_t op,
                              std::chrono::milliseconds timeout) {
  AdminOptionsPtr opts{rd_kafka_AdminOptions_new(client, op)};
  std::array<char, 256> err{};
  const int ms = static_cast<int>(timeout.count());
  rd_kafka_AdminOptions_set_request_timeout(opts.get(), ms, err.data(), err.size());
  // Refused for operations without a broker-side timeout; the request timeout still bounds them.
  rd_kafka_AdminOptions_set_operation_timeout(opts.get(), ms, err.data(), err.size());
  return opts;
}

Watermarks query_watermarks(rd_kafka_t* client, const std::string& topic, int32_t partition,
                            std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  Watermarks w;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    const auto err =
        rd_kafka_query_watermark_offsets(client, topic.c_str(), partition, &w.low, &w.high,
                                         static_cast<int>(std::max<int64_t>(1, left.count())));
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return w;
    const bool transient = err == RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION ||
                           err == RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE ||
                           err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
                           err == RD_KAFKA_RESP_ERR__TRANSPORT;
    if (!transient || std::chrono::steady_clock::now() >= deadline)
      throw Error(ErrorKind::runtime,
                  fmt::format("watermarks of {}[{}]: {}", topic, partition, rd_kafka_err2str(err)),
                  static_cast<int>(err), transient);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

Headers to_headers(const rd_kafka_message_t* message) {
  Headers out;
  rd_kafka_headers_t* hdrs = nullptr;
  // rd_kafka_message_headers keeps ownership with the message.
  if (rd_kafka_message_headers(message, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR) return out;
  const char* name = nullptr;
  const void* value = nullptr;
  size_t size = 0;
  for (size_t i = 0;
       rd_kafka_header_get_all(hdrs, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR; ++i) {
    Header h{name, std::nullopt};
    if (value != nullptr) h.value = std::string(static_cast<const char*>(value), size);
    out.push_back(std::move(h));
  }
  return out;
}

HeadersPtr to_kafka_headers(const Headers& headers) {
  HeadersPtr out{rd_kafka_headers_new(headers.size())};
  for (const auto& h : headers) {
    const char* data = h.value ? h.value->data() : nullptr;
    const auto size = h.value ? static_cast<ssize_t>(h.value->size()) : 0;
    rd_kafka_header_add(out.get(), h.name.data(), static_cast<ssize_t>(h.name.size()), data, size);
  }
  return out;
}

InRecord to_record(const rd_kafka_message_t* message) {
  InRecord r;
  r.topic = rd_kafka_topic_name(message->rkt);
  r.partition = message->partition;
  r.offset = message->offset;
  rd_kafka_timestamp_type_t tstype{};
  r.timestamp_ms = rd_kafka_message_timestamp(message, &tstype);
  if (message->key != nullptr)
    r.key = std::string(static_cast<const char*>(message->key), message->key_len);
  if (message->payload != nullptr)
    r.value = std::string(static_cast<const char*>(message->payload), message->len);
  r.headers = to_headers(message);
  return r;
}

std::string error_text(rd_kafka_resp_err_t err) {
  return rd_kafka_err2str(err);
}

}  // namespace evbus::kafka

namespace evbus::kafka {
EventPtr wait_admin_result(rd_kafka_queue_t* queue, rd_kafka_event_type_t type,
                           std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    EventPtr ev{rd_kafka_queue_poll(queue, 200)};
    if (ev && rd_kafka_event_type(ev.get()) == type) return ev;
  }
  throw Error(ErrorKind::runtime,
              fmt::format("no admin answer from the Kafka cluster within {} ms", timeout.count()));
}
}  // namespace evbus::kafka
