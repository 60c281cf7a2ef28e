#pragma once
// INTERNAL to core/: the only header that includes librdkafka. Every rd_kafka_*_t is owned by a
// std::unique_ptr with a named deleter declared here; nothing else calls a *_destroy.
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "core/error.hpp"
#include "core/record.hpp"

namespace evbus::kafka {

struct ConfDeleter {
  void operator()(rd_kafka_conf_t* p) const { rd_kafka_conf_destroy(p); }
};
struct ClientDeleter {
  void operator()(rd_kafka_t* p) const { rd_kafka_destroy(p); }
};
struct PartitionListDeleter {
  void operator()(rd_kafka_topic_partition_list_t* p) const {
    rd_kafka_topic_partition_list_destroy(p);
  }
};
struct MessageDeleter {
  void operator()(rd_kafka_message_t* p) const { rd_kafka_message_destroy(p); }
};
struct HeadersDeleter {
  void operator()(rd_kafka_headers_t* p) const { rd_kafka_headers_destroy(p); }
};
struct MetadataDeleter {
  void operator()(const rd_kafka_metadata_t* p) const { rd_kafka_metadata_destroy(p); }
};
struct QueueDeleter {
  void operator()(rd_kafka_queue_t* p) const { rd_kafka_queue_destroy(p); }
};
struct EventDeleter {
  void operator()(rd_kafka_event_t* p) const { rd_kafka_event_destroy(p); }
};
struct NewTopicDeleter {
  void operator()(rd_kafka_NewTopic_t* p) const { rd_kafka_NewTopic_destroy(p); }
};
struct AdminOptionsDeleter {
  void operator()(rd_kafka_AdminOptions_t* p) const { rd_kafka_AdminOptions_destroy(p); }
};
struct MockClusterDeleter {
  void operator()(rd_kafka_mock_cluster_t* p) const { rd_kafka_mock_cluster_destroy(p); }
};

using ConfPtr = std::unique_ptr<rd_kafka_conf_t, ConfDeleter>;
using ClientPtr = std::unique_ptr<rd_kafka_t, ClientDeleter>;
using PartitionListPtr = std::unique_ptr<rd_kafka_topic_partition_list_t, PartitionListDeleter>;
using MessagePtr = std::unique_ptr<rd_kafka_message_t, MessageDeleter>;
using HeadersPtr = std::unique_ptr<rd_kafka_headers_t, HeadersDeleter>;
using MetadataPtr = std::unique_ptr<const rd_kafka_metadata_t, MetadataDeleter>;
using QueuePtr = std::unique_ptr<rd_kafka_queue_t, QueueDeleter>;
using EventPtr = std::unique_ptr<rd_kafka_event_t, EventDeleter>;
using NewTopicPtr = std::unique_ptr<rd_kafka_NewTopic_t, NewTopicDeleter>;
using AdminOptionsPtr = std::unique_ptr<rd_kafka_AdminOptions_t, AdminOptionsDeleter>;
using MockClusterPtr = std::unique_ptr<rd_kafka_mock_cluster_t, MockClusterDeleter>;

// A conf with every property applied; a rejected property throws Error{invalid_input} with
// librdkafka's own text.
ConfPtr make_conf(const ClientProperties& properties);

// Diagnostics from librdkafka's log and error callbacks go to `log` instead of librdkafka writing
// to stderr itself. `owner` is the wrapper (Producer, consumer) its own callbacks cast back to.
// The context is owned by the wrapper and must outlive the client.
using LogSink = std::function<void(int level, const std::string& message)>;
struct ClientContext {
  LogSink log;
  void* owner = nullptr;
  // Set by the error callback; read by run loops (callbacks never throw or exit).
  bool all_brokers_down = false;
  std::string fatal_error;
  // librdkafka's statistics JSON (emitted every statistics.interval.ms, on the thread that
  // polls); unset = ignored.
  std::function<void(std::string_view json)> statistics;
};
void attach_context(rd_kafka_conf_t* conf, ClientContext* context);
ClientContext* context_of(const rd_kafka_t* client);

// rd_kafka_new with ownership of conf passed on success; keeps librdkafka's error text.
ClientPtr make_client(rd_kafka_type_t type, ConfPtr conf);

// Metadata for one topic without triggering auto-creation (asks for all topics).
// Returns -1 when the topic does not exist. Throws Error{runtime} when the cluster does not
// answer within `timeout`.
int topic_partition_count(rd_kafka_t* client, const std::string& topic,
                          std::chrono::milliseconds timeout);

MetadataPtr fetch_metadata(rd_kafka_t* client, std::chrono::milliseconds timeout);

// Admin request options bounded by `timeout` (also the broker-side operation timeout where the
// operation has one).
AdminOptionsPtr admin_options(rd_kafka_t* client, rd_kafka_admin_op_t op,
                              std::chrono::milliseconds timeout);

struct Watermarks {
  int64_t low = 0;   // log start offset
  int64_t high = 0;  // high watermark
};
// A partition's watermarks. A topic created a moment ago answers "not leader" until its leaders
// are elected, so such transient errors are retried within `timeout`; others throw Error{runtime}.
Watermarks query_watermarks(rd_kafka_t* client, const std::string& topic, int32_t partition,
                            std::chrono::milliseconds timeout);

Headers to_headers(const rd_kafka_message_t* message);
HeadersPtr to_kafka_headers(const Headers& headers);
InRecord to_record(const rd_kafka_message_t* message);

std::string error_text(rd_kafka_resp_err_t err);

}  // namespace evbus::kafka

namespace evbus::kafka {
struct ConfigResourceDeleter {
  void operator()(rd_kafka_ConfigResource_t* p) const { rd_kafka_ConfigResource_destroy(p); }
};
using ConfigResourcePtr = std::unique_ptr<rd_kafka_ConfigResource_t, ConfigResourceDeleter>;

// Waits for the admin result event of `type` on `queue`, bounded by `timeout`.
EventPtr wait_admin_result(rd_kafka_queue_t* queue, rd_kafka_event_type_t type,
                           std::chrono::milliseconds timeout);
}  // namespace evbus::kafka
