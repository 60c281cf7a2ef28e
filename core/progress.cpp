#include "core/progress.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>

namespace evbus {

bool stderr_is_terminal() {
  return isatty(STDERR_FILENO) == 1;
}

std::string format_duration(std::chrono::duration<double> duration) {
  const auto total = static_cast<int64_t>(std::max(0.0, std::floor(duration.count())));
  const int64_t h = total / 3600, m = total / 60 % 60, s = total % 60;
  return h > 0 ? fmt::format("{}:{:02}:{:02}", h, m, s) : fmt::format("{}:{:02}", m, s);
}

std::string progress_line(std::string_view label, std::string_view noun, uint64_t count,
                          std::chrono::duration<double> elapsed, std::optional<double> fraction) {
  const double seconds = elapsed.count();
  const double rate = seconds > 0 ? static_cast<double>(count) / seconds : 0.0;
  std::string line =
      fmt::format("{}: {} {}  {:.0f}/s  {}", label, count, noun, rate, format_duration(elapsed));
  if (fraction && *fraction > 0.0) {
    const double done = std::min(1.0, *fraction);
    const double remaining = seconds * (1.0 - done) / done;
    line += fmt::format("  ETA {} ({:.0f}%)",
                        format_duration(std::chrono::duration<double>(remaining)), done * 100.0);
  }
  return line;
}

Progress::Progress(std::ostream& out, std::string label, std::string noun, bool enabled)
    : out_(out),
      label_(std::move(label)),
      noun_(std::move(noun)),
      enabled_(enabled),
      start_(std::chrono::steady_clock::now()) {}

Progress::~Progress() {
  clear();
}

void Progress::update(uint64_t count, std::optional<double> fraction) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  if (last_draw_ && now - *last_draw_ < std::chrono::milliseconds(200)) return;
  last_draw_ = now;
  if (!fraction && total_ && *total_ > 0)
    fraction = static_cast<double>(count) / static_cast<double>(*total_);
  // \r plus "erase line" rewrites in place; no newline, so the line never scrolls.
  out_ << "\r\x1b[2K" << progress_line(label_, noun_, count, now - start_, fraction) << std::flush;
  drawn_ = true;
}

void Progress::restart() {
  clear();
  start_ = std::chrono::steady_clock::now();
}

void Progress::clear() {
  if (!drawn_) return;
  out_ << "\r\x1b[2K" << std::flush;
  drawn_ = false;
  last_draw_.reset();  // the next update redraws at once
}

}  // namespace evbus
