// evbus dlq list | count | replay: see what failed and why, and replay what is fixed.
// Exit codes: 0 success (also for an empty DLQ); 3 a missing offset or a refused single replay;
// 4 a replay the broker did not acknowledge; 130 interrupted (a --group replay then resumes).
#include <fmt/format.h>

#include <iostream>
#include <limits>

#include "commands.hpp"
#include "core/dlq.hpp"
#include "core/error.hpp"
#include "core/progress.hpp"
#include "core/stats.hpp"
#include "core/timefmt.hpp"

namespace evbus::app {

namespace {

struct DlqFlags {
  std::string topic;
  std::string output;
  double timeout = 10.0;
  // list / replay filters
  uint64_t limit = 0;
  std::vector<std::string> types, reasons, error_types, aggregate_ids;
  std::string since, until;
  int32_t partition = -1;
  // count
  std::string by;
  // replay
  int64_t offset = -1;
  bool force = false, all = false, yes = false, dry_run = false;
  std::string rate, group, to;
  uint64_t scan_limit = 10000;
  double delivery_timeout = 30.0;
  bool quiet = false;
  std::string stats_json;
};

// `progress`, when given, is drawn as records are read (and replayed); it must outlive the call.
DlqSource source_of(const DlqFlags& f, const BusConfig& config, const GlobalOptions& global,
                    Progress* progress = nullptr) {
  DlqSource source{f.topic.empty() ? config.dlq_topic_name() : f.topic,
                   seconds_to_ms(f.timeout),
                   stderr_diagnostics(global),
                   {}};
  if (progress != nullptr && progress->enabled())
    source.progress = [progress](uint64_t done, uint64_t total) {
      progress->set_total(total);
      progress->update(done);
    };
  return source;
}

Progress progress_for(const DlqFlags& f, std::string label) {
  return Progress(std::cerr, std::move(label), "records", stderr_is_terminal() && !f.quiet);
}

// A replay's run statistics: replayed records are what it published.
RunStats replay_stats(uint64_t replayed, uint64_t failed, const Timestamp& started) {
  RunStats stats;
  stats.events_published = replayed;
  stats.connected_at = started;
  if (replayed > 0) stats.last_publish_at = now_utc();
  if (failed > 0) stats.last_error_at = now_utc();
  return stats;
}

int64_t time_flag(const std::string& flag, const std::string& text, int64_t now) {
  auto ms = parse_time_bound(text, now);
  if (!ms)
    throw Error(ErrorKind::usage,
                fmt::format("{} {}: expected an ISO time (2025-01-15T10:30:00Z) or a duration "
                            "ago (30s, 15m, 2h, 7d)",
                            flag, text));
  return *ms;
}

DlqFilter filter_of(const DlqFlags& f) {
  DlqFilter filter;
  if (f.limit > 0) filter.limit = f.limit;
  filter.types = f.types;
  filter.reasons = f.reasons;
  filter.error_types = f.error_types;
  filter.aggregate_ids = f.aggregate_ids;
  const int64_t now = now_epoch_ms();
  if (!f.since.empty()) filter.since_ms = time_flag("--since", f.since, now);
  if (!f.until.empty()) filter.until_ms = time_flag("--until", f.until, now);
  if (f.partition >= 0) filter.partition = f.partition;
  return filter;
}

int run_list(const DlqFlags& f, const GlobalOptions& global) {
  const BusConfig config = load_bus_config(global);
  Progress progress = progress_for(f, "dlq list");
  const auto listing =
      list_dlq(config, source_of(f, config, global, &progress), filter_of(f), stop_requested());
  progress.clear();
  if (f.output == "json")
    write_dlq_json(std::cout, listing);
  else if (f.output == "jsonl")
    write_dlq_jsonl(std::cout, listing);
  else
    write_dlq_table(std::cout, listing);
  if (listing.interrupted) throw Error(ErrorKind::interrupted, "interrupted; the list is partial");
  return 0;
}

int run_count(const DlqFlags& f, const GlobalOptions& global) {
  const BusConfig config = load_bus_config(global);
  const auto source = source_of(f, config, global);
  const bool json = f.output == "json";
  if (f.by.empty()) {
    const auto count = count_dlq(config, source);
    json ? write_count_json(std::cout, count) : write_count_table(std::cout, count);
    return 0;
  }
  Progress progress = progress_for(f, "dlq count --by " + f.by);
  const auto grouped = count_dlq_by(config, source_of(f, config, global, &progress),
                                    *parse_count_by(f.by), {}, stop_requested());
  progress.clear();
  const int64_t now = now_epoch_ms();
  json ? write_grouped_count_json(std::cout, grouped, now)
       : write_grouped_count_table(std::cout, grouped, now);
  return 0;
}

ReplayOptions replay_options(const DlqFlags& f, const BusConfig& config) {
  return {f.to.empty() ? config.topic_name() : f.to, f.force, seconds_to_ms(f.delivery_timeout)};
}

int run_replay_one(const DlqFlags& f, const GlobalOptions& global) {
  const BusConfig config = load_bus_config(global);
  const Timestamp started = now_utc();
  ReplayOutcome o;
  try {
    o = replay_one(config, source_of(f, config, global), f.partition, f.offset,
                   replay_options(f, config), f.dry_run);
  } catch (const Error&) {
    write_stats_json(f.stats_json, replay_stats(0, 0, started));
    throw;
  }
  write_stats_json(f.stats_json, replay_stats(o.kind == ReplayOutcome::Kind::replayed,
                                              o.kind == ReplayOutcome::Kind::failed, started));
  if (f.output == "json")
    std::cout << replay_outcome_to_json(o).dump(2) << '\n';
  else
    write_replay_outcome_text(std::cout, o);
  if (o.kind == ReplayOutcome::Kind::planned) return 0;
  BulkReplayReport counts;
  counts.replayed = o.kind == ReplayOutcome::Kind::replayed;
  counts.refused = o.kind == ReplayOutcome::Kind::refused;
  counts.failed = o.kind == ReplayOutcome::Kind::failed;
  write_replay_summary_text(f.output == "json" ? std::cerr : std::cout, counts);
  if (o.kind == ReplayOutcome::Kind::refused)
    throw Error(ErrorKind::invalid_input, "replay refused: " + o.reason);
  if (o.kind == ReplayOutcome::Kind::failed)
    throw Error(ErrorKind::undelivered, "replay not acknowledged by the broker: " + o.reason);
  return 0;
}

int run_replay_bulk(const DlqFlags& f, const GlobalOptions& global) {
  BulkReplayRequest request;
  request.filter = filter_of(f);
  if (!f.all && !request.filter.narrows() && !request.filter.limit)
    throw Error(ErrorKind::usage,
                "say which records to replay: --partition P --offset O, filters (--type, --reason, "
                "--error-type, --aggregate-id, --since, --until, --partition, --limit), or --all");
  const BusConfig config = load_bus_config(global);
  request.options = replay_options(f, config);
  request.execute = f.yes;
  request.reorder_scan_limit = f.scan_limit;
  if (!f.group.empty()) request.group = f.group;
  if (!f.rate.empty()) {
    std::string text = f.rate;
    if (text.size() > 2 && text.substr(text.size() - 2) == "/s") text.resize(text.size() - 2);
    std::size_t used = 0;
    try {
      request.rate = std::stod(text, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    // Anything but a plain number (a "/m" unit, spaces) is refused, never read as per second.
    if (used == 0 || used != text.size())
      throw Error(ErrorKind::usage,
                  fmt::format("--rate {}: expected records per second, e.g. 50 or 50/s", f.rate));
    if (*request.rate <= 0) throw Error(ErrorKind::usage, "--rate must be above 0");
  }
  const bool json = f.output == "json";
  Progress progress = progress_for(f, "dlq replay");
  auto print = [&](const ReplayOutcome& o) {
    progress.clear();
    if (json)
      std::cout << replay_outcome_to_json(o).dump() << '\n';
    else
      write_replay_outcome_text(std::cout, o);
    std::cout.flush();
  };
  const Timestamp started = now_utc();
  BulkReplayReport report;
  try {
    report = replay_bulk(config, source_of(f, config, global, &progress), request, print,
                         stop_requested());
  } catch (const Error&) {
    write_stats_json(f.stats_json, replay_stats(0, 0, started));
    throw;
  }
  progress.clear();
  if (report.executed)
    write_stats_json(f.stats_json, replay_stats(report.replayed, report.failed, started));
  if (json)  // after the outcome lines a one-line summary, so the whole output stays JSONL
    std::cout << replay_report_to_json(report).dump(report.executed ? -1 : 2) << '\n';
  else if (!report.executed && !report.interrupted)
    write_replay_preview_text(std::cout, report.preview);
  if (report.executed || report.interrupted)
    write_replay_summary_text(json ? std::cerr : std::cout, report);
  if (report.failed > 0)
    throw Error(ErrorKind::undelivered,
                fmt::format("{} replay(s) were not acknowledged by the broker", report.failed));
  if (report.interrupted)
    throw Error(ErrorKind::interrupted,
                request.group ? fmt::format("interrupted; progress is committed in group {}, run "
                                            "the same command to resume",
                                            *request.group)
                              : std::string("interrupted"));
  return 0;
}

int run_replay(const DlqFlags& f, const GlobalOptions& global) {
  if (f.offset < 0 && f.dry_run)
    throw Error(ErrorKind::usage,
                "--dry-run shows one record (--partition P --offset O); a bulk replay previews "
                "unless --yes is given");
  if (f.offset >= 0 && f.all)
    throw Error(ErrorKind::usage, "give either --partition P --offset O or --all, not both");
  if (f.offset >= 0) {
    if (f.partition < 0) throw Error(ErrorKind::usage, "--offset needs --partition");
    return run_replay_one(f, global);
  }
  return run_replay_bulk(f, global);
}

void add_common(CLI::App& cmd, DlqFlags& f) {
  cmd.add_option("--topic", f.topic,
                 "DLQ topic to read (default: {prefix}.stream{dlq_topic_suffix})");
  cmd.add_option("--timeout", f.timeout, "Seconds to wait for the cluster to answer")
      ->capture_default_str();
  cmd.add_flag("-q,--quiet", f.quiet, "No progress line on a terminal");
}

void add_filters(CLI::App& cmd, DlqFlags& f) {
  cmd.add_option("-n,--limit", f.limit, "At most N records (0: no limit)")
      ->check(CLI::Range(0, 1000000000));
  cmd.add_option("-t,--type", f.types, "Only this event_type (repeatable)");
  cmd.add_option("--reason", f.reasons,
                 "Only this reason: max_retries_exceeded, deserialization_error, republish_failed "
                 "(repeatable)");
  cmd.add_option("--error-type", f.error_types,
                 "Only this error type; ValueError also matches a.b.ValueError (repeatable)");
  cmd.add_option("--aggregate-id", f.aggregate_ids, "Only this aggregate (repeatable)");
  cmd.add_option("--since", f.since,
                 "DLQ records written at or after: ISO time or 30s/15m/2h/7d ago");
  cmd.add_option("--until", f.until, "DLQ records written before: ISO time or a duration ago");
  cmd.add_option("-p,--partition", f.partition, "Only this DLQ partition")
      ->check(CLI::Range(0, 1000000));
}

template <typename Run>
void bind(CLI::App* cmd, std::shared_ptr<DlqFlags> flags, const GlobalOptions& global,
          Runner& runner, Run run) {
  cmd->callback([flags, &global, &runner, run] {
    runner = [flags, &global, run] { return run(*flags, global); };
  });
}

}  // namespace

void register_dlq(CLI::App& app, const GlobalOptions& global, Runner& runner) {
  auto* dlq = app.add_subcommand("dlq", "List, count and replay the dead-letter queue");
  add_examples(*dlq,
               "  evbus dlq count -c bus.yaml --by reason\n"
               "  evbus dlq list -c bus.yaml --since 2h --output json\n");
  dlq->require_subcommand(1);

  auto lf = std::make_shared<DlqFlags>();
  lf->output = "table";
  auto* list = dlq->add_subcommand("list", "Show DLQ records (low to high watermark; never waits)");
  add_common(*list, *lf);
  add_filters(*list, *lf);
  list->add_option("-o,--output", lf->output, "table, json (one array) or jsonl")
      ->check(CLI::IsMember({"table", "json", "jsonl"}))
      ->capture_default_str();
  add_examples(
      *list,
      "  evbus dlq list -c bus.yaml --since 2h --reason max_retries_exceeded\n"
      "  evbus dlq list -c bus.yaml --type OrderPlaced --output json | jq '.[].error_message'\n");
  bind(list, lf, global, runner, run_list);

  auto cf = std::make_shared<DlqFlags>();
  cf->output = "table";
  auto* count = dlq->add_subcommand("count", "Count DLQ records: Σ(high − low watermark)");
  add_common(*count, *cf);
  count
      ->add_option("--by", cf->by,
                   "Group by reason, type, error-type, partition or original-partition (reads "
                   "every record) with the oldest record's age")
      ->check(CLI::IsMember({"reason", "type", "error-type", "partition", "original-partition"}));
  count->add_option("-o,--output", cf->output, "table or json")
      ->check(CLI::IsMember({"table", "json"}))
      ->capture_default_str();
  add_examples(
      *count,
      "  evbus dlq count -c bus.yaml\n  evbus dlq count -c bus.yaml --by reason --output json\n");
  bind(count, cf, global, runner, run_count);

  auto rf = std::make_shared<DlqFlags>();
  rf->output = "text";
  auto* replay = dlq->add_subcommand(
      "replay", "Copy DLQ records back to {prefix}.stream (contract §4.6); the DLQ is not changed");
  add_common(*replay, *rf);
  add_filters(*replay, *rf);
  replay->add_option("--offset", rf->offset, "Replay the one record at --partition P --offset O")
      ->check(CLI::Range(int64_t{0}, std::numeric_limits<int64_t>::max()));
  replay->add_flag("--force", rf->force,
                   "Replay even past dlq_max_replay_attempts or with an unparseable "
                   "dlq_replay_count");
  replay->add_flag("--dry-run", rf->dry_run, "Single replay: show the record that would be sent");
  add_stats_json_flag(*replay, rf->stats_json);
  replay->add_flag("--all", rf->all, "Bulk: every record (instead of filters)");
  replay->add_flag("-y,--yes", rf->yes, "Bulk: replay for real (without it: a preview only)");
  replay->add_option("--rate", rf->rate, "Bulk: at most N records per second (N or N/s)");
  replay->add_option("-g,--group", rf->group,
                     "Bulk: resumable; progress is committed in this group on the DLQ topic after "
                     "each acknowledged copy");
  replay->add_option("--to", rf->to, "Target topic (default: {prefix}.stream)");
  replay
      ->add_option("--scan-limit", rf->scan_limit,
                   "Preview: main-topic records read per partition for the reordering check")
      ->capture_default_str();
  replay
      ->add_option("--delivery-timeout", rf->delivery_timeout,
                   "Seconds to wait for the broker to acknowledge each copy")
      ->capture_default_str();
  replay->add_option("-o,--output", rf->output, "text or json")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  add_examples(*replay,
               "  evbus dlq replay -c bus.yaml --partition 0 --offset 42\n"
               "  evbus dlq replay -c bus.yaml --type OrderPlaced --since 1h --group replay-1 "
               "--rate 50 --yes\n"
               "Exit codes: 0 done (refused records in a bulk replay are reported, not errors); 3 "
               "missing offset or refused single replay; 4 a copy was not acknowledged; 130 "
               "interrupted.\n");
  bind(replay, rf, global, runner, run_replay);
}

}  // namespace evbus::app
