#include "core/output.hpp"

#include <fmt/format.h>

#include <array>

#include "core/text.hpp"
#include "core/timefmt.hpp"

namespace evbus {

namespace {
std::string base64(std::string_view in) {
  static constexpr std::string_view kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const uint32_t n = (uint32_t(uint8_t(in[i])) << 16) | (uint32_t(uint8_t(in[i + 1])) << 8) |
                       uint32_t(uint8_t(in[i + 2]));
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
    out += kAlphabet[n & 63];
  }
  if (i < in.size()) {
    uint32_t n = uint32_t(uint8_t(in[i])) << 16;
    if (i + 1 < in.size()) n |= uint32_t(uint8_t(in[i + 1])) << 8;
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += i + 1 < in.size() ? kAlphabet[(n >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}
}  // namespace

Json bytes_to_json(std::string_view bytes) {
  if (is_valid_utf8(bytes)) return std::string(bytes);
  return Json{{"base64", base64(bytes)}};
}

Json consumed_to_json(const ConsumedEvent& event) {
  const InRecord& r = event.record;
  Json out = Json::object();
  out["topic"] = r.topic;
  out["partition"] = r.partition;
  out["offset"] = r.offset;
  out["timestamp"] = r.timestamp_ms >= 0 ? Json(format_epoch_ms(r.timestamp_ms)) : Json(nullptr);
  out["key"] = r.key ? bytes_to_json(*r.key) : Json(nullptr);
  Json headers = Json::array();
  for (const auto& h : r.headers)
    headers.push_back(Json::array({h.name, h.value ? bytes_to_json(*h.value) : Json(nullptr)}));
  out["headers"] = std::move(headers);
  if (event.body) {
    out["event"] = *event.body;
  } else {
    out["event"] = nullptr;
    out["value"] = r.value ? bytes_to_json(*r.value) : Json(nullptr);
  }
  if (!event.problems.empty()) {
    Json problems = Json::array();
    for (const auto& p : event.problems)
      problems.push_back(Json{{"pointer", p.pointer}, {"message", p.message}});
    out["problems"] = std::move(problems);
  }
  return out;
}

void write_consumed_jsonl(std::ostream& out, const ConsumedEvent& event) {
  out << consumed_to_json(event).dump(-1, ' ', false, Json::error_handler_t::replace) << '\n';
}

void write_consumed_pretty(std::ostream& out, const ConsumedEvent& event) {
  const InRecord& r = event.record;
  out << fmt::format("── {}[{}]@{}  {}  {}\n", r.topic, r.partition, r.offset,
                     r.timestamp_ms >= 0 ? format_epoch_ms(r.timestamp_ms) : "-",
                     event.event_type.value_or("(no event_type)"));
  out << "key: " << (r.key ? bytes_to_json(*r.key).dump() : "null") << '\n';
  for (const auto& h : r.headers)
    out << "  " << h.name << ": "
        << (h.value ? (is_valid_utf8(*h.value) ? *h.value : bytes_to_json(*h.value).dump())
                    : "null")
        << '\n';
  if (event.body)
    out << event.body->dump(2, ' ', false, Json::error_handler_t::replace) << '\n';
  else
    out << "value: " << (r.value ? bytes_to_json(*r.value).dump() : "null") << '\n';
  for (const auto& p : event.problems)
    out << "problem: " << (p.pointer.empty() ? "" : p.pointer + ": ") << p.message << '\n';
}

std::string describe_errors(const std::vector<ValidationError>& errors) {
  std::string out;
  for (const auto& e : errors) {
    if (!out.empty()) out += "; ";
    out += e.pointer.empty() ? e.message : fmt::format("{}: {}", e.pointer, e.message);
  }
  return out;
}

namespace {
std::string_view kind_name(PublishOutcome::Kind kind) {
  switch (kind) {
    case PublishOutcome::Kind::invalid:
      return "invalid";
    case PublishOutcome::Kind::delivered:
      return "delivered";
    case PublishOutcome::Kind::failed:
      return "failed";
    case PublishOutcome::Kind::planned:
      return "planned";
  }
  return "?";
}
}  // namespace

Json outcome_to_json(const PublishOutcome& o) {
  Json out = Json::object();
  out["status"] = kind_name(o.kind);
  out["source"] = o.source;
  out["event_type"] = o.event_type.empty() ? Json(nullptr) : Json(o.event_type);
  out["event_id"] = o.event_id.empty() ? Json(nullptr) : Json(o.event_id);
  out["aggregate_id"] = o.aggregate_id.empty() ? Json(nullptr) : Json(o.aggregate_id);
  if (o.kind == PublishOutcome::Kind::delivered || o.kind == PublishOutcome::Kind::planned) {
    out["topic"] = o.topic;
    out["partition"] = o.partition >= 0 ? Json(o.partition) : Json(nullptr);
  }
  if (o.kind == PublishOutcome::Kind::delivered) out["offset"] = o.offset;
  if (!o.errors.empty()) {
    Json errors = Json::array();
    for (const auto& e : o.errors)
      errors.push_back(Json{{"pointer", e.pointer}, {"message", e.message}});
    out["errors"] = std::move(errors);
  }
  return out;
}

void write_outcome_text(std::ostream& out, const PublishOutcome& o) {
  switch (o.kind) {
    case PublishOutcome::Kind::delivered:
      out << fmt::format("delivered {} {} {} -> {}[{}]@{}\n", o.source, o.event_type,
                         o.aggregate_id, o.topic, o.partition, o.offset);
      break;
    case PublishOutcome::Kind::failed:
      out << fmt::format("failed {} {} {}: {}\n", o.source, o.event_type, o.aggregate_id,
                         describe_errors(o.errors));
      break;
    case PublishOutcome::Kind::invalid:
      out << fmt::format("invalid {}{}: {}\n", o.source,
                         o.event_type.empty() ? "" : " " + o.event_type, describe_errors(o.errors));
      break;
    case PublishOutcome::Kind::planned:
      write_planned_text(out, o, -1);
      break;
  }
}

void write_planned_text(std::ostream& out, const PublishOutcome& o, int partition_count,
                        bool topic_exists) {
  out << fmt::format("── {} {}\n", o.source, o.event_type);
  out << "topic:     " << o.topic << (topic_exists ? "" : " (does not exist yet)") << '\n';
  if (o.partition >= 0)
    out << "partition: " << o.partition
        << (partition_count > 0
                ? fmt::format(" (murmur2 of the key over {} partitions{})", partition_count,
                              topic_exists ? "" : ", the broker's num.partitions for a new topic")
                : std::string())
        << '\n';
  else
    out << "partition: unknown (the topic does not exist yet)\n";
  if (o.record) {
    out << "key:       " << o.record->key.value_or("") << '\n';
    out << "headers:\n";
    for (const auto& h : o.record->headers)
      out << "  " << h.name << ": " << h.value.value_or("") << '\n';
    out << "value:     " << o.record->value.value_or("") << '\n';
  }
}

}  // namespace evbus
