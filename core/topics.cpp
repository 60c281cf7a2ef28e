#include "core/topics.hpp"

#include <fmt/format.h>

#include <array>

#include "core/kafka_handles.hpp"

namespace evbus {

namespace {

struct AdminClient {
  kafka::ClientContext context;
  kafka::ClientPtr client;
  kafka::QueuePtr queue;

  AdminClient(const BusConfig& config, Diagnostics diagnostics) {
    context.log = std::move(diagnostics);
    auto conf = kafka::make_conf(common_properties(config));
    kafka::attach_context(conf.get(), &context);
    // Admin requests are answered by any broker; a producer handle is the lightest client.
    client = kafka::make_client(RD_KAFKA_PRODUCER, std::move(conf));
    queue.reset(rd_kafka_queue_new(client.get()));
  }

  kafka::AdminOptionsPtr options(rd_kafka_admin_op_t op, std::chrono::milliseconds timeout) const {
    return kafka::admin_options(client.get(), op, timeout);
  }
};

}  // namespace

std::vector<TopicCreateResult> create_bus_topics(const BusConfig& config,
                                                 std::optional<int> partitions,
                                                 std::optional<int> replication,
                                                 std::chrono::milliseconds timeout,
                                                 Diagnostics diagnostics) {
  AdminClient admin(config, diagnostics);
  (void)kafka::fetch_metadata(admin.client.get(), timeout);
  const std::array<std::string, 2> names{config.topic_name(), config.dlq_topic_name()};
  std::vector<kafka::NewTopicPtr> owned;
  std::vector<rd_kafka_NewTopic_t*> raw;
  for (const auto& name : names) {
    std::array<char, 512> err{};
    kafka::NewTopicPtr topic{rd_kafka_NewTopic_new(
        name.c_str(), partitions.value_or(-1), replication.value_or(-1), err.data(), err.size())};
    if (!topic)
      throw Error(ErrorKind::invalid_input, fmt::format("topic {}: {}", name, err.data()));
    raw.push_back(topic.get());
    owned.push_back(std::move(topic));
  }
  auto opts = admin.options(RD_KAFKA_ADMIN_OP_CREATETOPICS, timeout);
  rd_kafka_CreateTopics(admin.client.get(), raw.data(), raw.size(), opts.get(), admin.queue.get());
  auto ev =
      kafka::wait_admin_result(admin.queue.get(), RD_KAFKA_EVENT_CREATETOPICS_RESULT, timeout);
  if (rd_kafka_event_error(ev.get()) != RD_KAFKA_RESP_ERR_NO_ERROR)
    throw Error(ErrorKind::runtime,
                fmt::format("create topics: {}", rd_kafka_event_error_string(ev.get())));
  size_t count = 0;
  const auto* results =
      rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev.get()), &count);
  std::vector<TopicCreateResult> out;
  for (size_t i = 0; i < count; ++i) {
    const auto err = rd_kafka_topic_result_error(results[i]);
    TopicCreateResult r{rd_kafka_topic_result_name(results[i]), false, 0};
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      r.created = true;
    } else if (err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
      const char* text = rd_kafka_topic_result_error_string(results[i]);
      throw Error(ErrorKind::runtime,
                  fmt::format("create topic {}: {}", r.name, text ? text : rd_kafka_err2str(err)),
                  static_cast<int>(err));
    }
    out.push_back(r);
  }
  // Report the real partition counts (an existing topic keeps its own).
  auto infos = describe_bus_topics(config, timeout, diagnostics);
  for (auto& r : out)
    for (const auto& info : infos)
      if (info.name == r.name) r.partitions = info.partitions;
  return out;
}

std::vector<TopicInfo> describe_bus_topics(const BusConfig& config,
                                           std::chrono::milliseconds timeout,
                                           Diagnostics diagnostics) {
  AdminClient admin(config, std::move(diagnostics));
  auto md = kafka::fetch_metadata(admin.client.get(), timeout);
  std::vector<TopicInfo> out;
  for (const auto& name : {config.topic_name(), config.dlq_topic_name()}) {
    TopicInfo info{name, false, 0, 0};
    for (int i = 0; i < md->topic_cnt; ++i) {
      const auto& t = md->topics[i];
      if (name != t.topic || t.err != RD_KAFKA_RESP_ERR_NO_ERROR) continue;
      info.exists = true;
      info.partitions = t.partition_cnt;
      if (t.partition_cnt > 0) info.replication = t.partitions[0].replica_cnt;
    }
    out.push_back(info);
  }
  return out;
}

std::optional<int> broker_default_partitions(const BusConfig& config,
                                             std::chrono::milliseconds timeout,
                                             Diagnostics diagnostics) {
  AdminClient admin(config, std::move(diagnostics));
  auto md = kafka::fetch_metadata(admin.client.get(), timeout);
  if (md->broker_cnt == 0) return std::nullopt;
  const std::string broker_id = std::to_string(md->brokers[0].id);
  kafka::ConfigResourcePtr resource{
      rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_BROKER, broker_id.c_str())};
  rd_kafka_ConfigResource_t* raw = resource.get();
  auto opts = admin.options(RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS, timeout);
  rd_kafka_DescribeConfigs(admin.client.get(), &raw, 1, opts.get(), admin.queue.get());
  auto ev =
      kafka::wait_admin_result(admin.queue.get(), RD_KAFKA_EVENT_DESCRIBECONFIGS_RESULT, timeout);
  if (rd_kafka_event_error(ev.get()) != RD_KAFKA_RESP_ERR_NO_ERROR) return std::nullopt;
  size_t count = 0;
  const auto* resources = rd_kafka_DescribeConfigs_result_resources(
      rd_kafka_event_DescribeConfigs_result(ev.get()), &count);
  for (size_t i = 0; i < count; ++i) {
    size_t n = 0;
    const auto* entries = rd_kafka_ConfigResource_configs(resources[i], &n);
    for (size_t j = 0; j < n; ++j) {
      if (std::string_view(rd_kafka_ConfigEntry_name(entries[j])) != "num.partitions") continue;
      const char* value = rd_kafka_ConfigEntry_value(entries[j]);
      if (value != nullptr) return std::stoi(value);
    }
  }
  return std::nullopt;
}

}  // namespace evbus
