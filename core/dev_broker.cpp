#include "core/dev_broker.hpp"

#include <fmt/format.h>

#include "core/kafka_handles.hpp"

namespace evbus {

struct DevBroker::Impl {
  kafka::ClientContext context;  // silences the bookkeeping client's own logs
  kafka::ClientPtr client;
  kafka::MockClusterPtr cluster;
};

DevBroker::DevBroker(int broker_count) : impl_(std::make_unique<Impl>()) {
  auto conf = kafka::make_conf({});
  kafka::attach_context(conf.get(), &impl_->context);
  impl_->client = kafka::make_client(RD_KAFKA_PRODUCER, std::move(conf));
  impl_->cluster.reset(rd_kafka_mock_cluster_new(impl_->client.get(), broker_count));
  if (!impl_->cluster) throw Error(ErrorKind::runtime, "cannot start librdkafka's mock cluster");
}

DevBroker::~DevBroker() {
  if (impl_) impl_->cluster.reset();  // before the client it was created with
}

std::string DevBroker::bootstrap_servers() const {
  return rd_kafka_mock_cluster_bootstraps(impl_->cluster.get());
}

void DevBroker::create_topic(const std::string& name, int partitions) {
  auto err = rd_kafka_mock_topic_create(impl_->cluster.get(), name.c_str(), partitions, 1);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    throw Error(ErrorKind::runtime,
                fmt::format("mock topic {}: {}", name, rd_kafka_err2str(err)));
}

void DevBroker::fail_next_requests(int16_t api_key, const std::vector<int>& errors) {
  std::vector<rd_kafka_resp_err_t> codes;
  for (int e : errors) codes.push_back(static_cast<rd_kafka_resp_err_t>(e));
  rd_kafka_mock_push_request_errors_array(impl_->cluster.get(), api_key, codes.size(),
                                          codes.data());
}

void DevBroker::set_broker_down(int32_t broker_id, bool down) {
  if (down)
    rd_kafka_mock_broker_set_down(impl_->cluster.get(), broker_id);
  else
    rd_kafka_mock_broker_set_up(impl_->cluster.get(), broker_id);
}

}  // namespace evbus
