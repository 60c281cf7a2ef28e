#pragma once
// Formatters: core never prints, these write to a stream the caller passes in.
#include <ostream>
#include <string>
#include <string_view>

#include "core/consumer.hpp"
#include "core/publish.hpp"
#include "core/schema.hpp"
#include "core/text.hpp"

namespace evbus {

// A byte string as JSON: the text when it is valid UTF-8, otherwise {"base64": "..."}.
Json bytes_to_json(std::string_view bytes);

// consume --output jsonl: one object per line with topic, partition, offset, timestamp, key,
// headers ([[name, value], ...] in order, duplicates kept), event (the body as JSON), and
// `problems` when validation found any. A value that is not JSON is given as `value` instead.
Json consumed_to_json(const ConsumedEvent& event);
void write_consumed_jsonl(std::ostream& out, const ConsumedEvent& event);
void write_consumed_pretty(std::ostream& out, const ConsumedEvent& event);

// publish result lines.
Json outcome_to_json(const PublishOutcome& outcome);
void write_outcome_text(std::ostream& out, const PublishOutcome& outcome);
// publish --dry-run: topic, predicted partition, key, headers and value.
void write_planned_text(std::ostream& out, const PublishOutcome& outcome, int partition_count,
                        bool topic_exists = true);

std::string describe_errors(const std::vector<ValidationError>& errors);

}  // namespace evbus
