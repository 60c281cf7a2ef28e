#include "core/producer.hpp"

#include <fmt/format.h>

#include "core/kafka_handles.hpp"

namespace evbus {

std::string librdkafka_version() { return rd_kafka_version_str(); }

struct Producer::Impl {
  kafka::ClientContext context;
  kafka::ClientPtr client;
  std::vector<DeliveryReport> reports;
  int64_t in_flight = 0;

  static void on_delivery(rd_kafka_t* rk, const rd_kafka_message_t* msg, void* /*opaque*/) {
    auto* self = static_cast<Impl*>(kafka::context_of(rk)->owner);
    DeliveryReport r;
    r.id = reinterpret_cast<uintptr_t>(msg->_private);
    r.topic = rd_kafka_topic_name(msg->rkt);
    r.partition = msg->partition;
    r.offset = msg->offset;
    if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) r.error = rd_kafka_err2str(msg->err);
    self->reports.push_back(std::move(r));
    --self->in_flight;
  }

  std::vector<DeliveryReport> take_reports() {
    std::vector<DeliveryReport> out;
    out.swap(reports);
    return out;
  }
};

Producer::Producer(const ClientProperties& properties, Diagnostics diagnostics)
    : impl_(std::make_unique<Impl>()) {
  impl_->context.log = std::move(diagnostics);
  impl_->context.owner = impl_.get();
  auto conf = kafka::make_conf(properties);
  kafka::attach_context(conf.get(), &impl_->context);
  rd_kafka_conf_set_dr_msg_cb(conf.get(), &Impl::on_delivery);
  impl_->client = kafka::make_client(RD_KAFKA_PRODUCER, std::move(conf));
}

Producer::~Producer() {
  // Give queued records a bounded chance; the caller normally flushed already.
  if (impl_ && impl_->client) rd_kafka_flush(impl_->client.get(), 2000);
}

void Producer::ensure_reachable(std::chrono::milliseconds timeout) {
  (void)kafka::fetch_metadata(impl_->client.get(), timeout);
}

int Producer::partition_count(const std::string& topic, std::chrono::milliseconds timeout) {
  return kafka::topic_partition_count(impl_->client.get(), topic, timeout);
}

std::optional<std::string> Producer::send(const OutRecord& record, uint64_t id) {
  for (;;) {
    auto headers = kafka::to_kafka_headers(record.headers);
    const auto partition = record.partition.value_or(RD_KAFKA_PARTITION_UA);
    const void* key = record.key ? record.key->data() : nullptr;
    const size_t key_len = record.key ? record.key->size() : 0;
    void* value = record.value ? const_cast<char*>(record.value->data()) : nullptr;
    const size_t value_len = record.value ? record.value->size() : 0;
    auto err = rd_kafka_producev(
        impl_->client.get(), RD_KAFKA_V_TOPIC(record.topic.c_str()), RD_KAFKA_V_PARTITION(partition),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(key, key_len),
        RD_KAFKA_V_VALUE(value, value_len), RD_KAFKA_V_HEADERS(headers.get()),
        RD_KAFKA_V_OPAQUE(reinterpret_cast<void*>(static_cast<uintptr_t>(id))), RD_KAFKA_V_END);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      (void)headers.release();  // librdkafka owns them now
      ++impl_->in_flight;
      return std::nullopt;
    }
    if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) return std::string(rd_kafka_err2str(err));
    rd_kafka_poll(impl_->client.get(), 50);
    if (!impl_->context.fatal_error.empty()) return impl_->context.fatal_error;
  }
}

std::vector<DeliveryReport> Producer::poll(std::chrono::milliseconds timeout) {
  rd_kafka_poll(impl_->client.get(), static_cast<int>(timeout.count()));
  return impl_->take_reports();
}

std::vector<DeliveryReport> Producer::flush(std::chrono::milliseconds timeout) {
  rd_kafka_flush(impl_->client.get(), static_cast<int>(timeout.count()));
  rd_kafka_poll(impl_->client.get(), 0);
  if (impl_->in_flight > 0) {
    // Out of time: purged records come back as failed reports, so nothing is silently lost.
    rd_kafka_purge(impl_->client.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_poll(impl_->client.get(), 100);
  }
  return impl_->take_reports();
}

int64_t Producer::in_flight() const { return impl_->in_flight; }

void Producer::on_statistics(std::function<void(std::string_view json)> sink) {
  impl_->context.statistics = std::move(sink);
}

}  // namespace evbus
