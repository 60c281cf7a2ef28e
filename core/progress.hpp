#pragma once
// One updating progress line for long work (publishing a file, replay, scans): count, rate,
// elapsed time, and an ETA when the amount of work is known. Drawn only where a person watches
// (stderr is a terminal and the command is not --quiet); scripts never see it.
#include <chrono>
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>

namespace evbus {

// True when stderr is a terminal: the only place a progress line is drawn.
bool stderr_is_terminal();

// The line itself, e.g. "publish: 1200 events  410/s  0:03  ETA 0:07 (30%)". `fraction` is the
// share of the work done (0..1), when known. Pure, for tests.
std::string progress_line(std::string_view label, std::string_view noun, uint64_t count,
                          std::chrono::duration<double> elapsed,
                          std::optional<double> fraction = std::nullopt);

// "0:07", "12:30", "1:02:03".
std::string format_duration(std::chrono::duration<double> duration);

class Progress {
 public:
  // Draws on `out` only when `enabled` (normally: stderr_is_terminal() && !quiet).
  Progress(std::ostream& out, std::string label, std::string noun, bool enabled);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  // When the total is a count of the same things, the ETA comes from it.
  void set_total(uint64_t total) { total_ = total; }
  // Redraws at most every 200 ms, so calling it per record costs nothing.
  void update(uint64_t count, std::optional<double> fraction = std::nullopt);
  // The work starts now (elapsed time and rate count from here).
  void restart();
  // Erases the line (before other output to the same terminal, or at the end); the next
  // update draws it again.
  void clear();
  bool enabled() const { return enabled_; }

 private:
  std::ostream& out_;
  std::string label_;
  std::string noun_;
  bool enabled_;
  bool drawn_ = false;
  std::optional<uint64_t> total_;
  std::chrono::steady_clock::time_point start_;
  std::optional<std::chrono::steady_clock::time_point> last_draw_;
};

}  // namespace evbus
