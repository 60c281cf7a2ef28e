#include "core/handler.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <map>

#include "core/retry.hpp"

extern char** environ;

namespace evbus {

namespace {

using Clock = std::chrono::steady_clock;

// A file descriptor closed on scope exit.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

// In the guard process: evbus died, so the handler's whole process group goes with it.
extern "C" void kill_own_group(int /*signal*/) {
  ::kill(0, SIGKILL);
}

// The forked child. It stays as a small guard that leads the handler's process group, runs
// /bin/sh -c CMD as its own child, and mirrors how that ended. Its job: when evbus dies (even by
// kill -9) the kernel signals it, and it kills the whole group, so no handler runs on while
// another group member takes over the same event. Only async-signal-safe calls: evbus has
// librdkafka threads, and the child of a multi-threaded fork may use nothing else.
[[noreturn]] void run_guard(int input_fd, int stderr_fd, pid_t parent, char* const argv[],
                            char* const envp[]) {
  ::setpgid(0, 0);  // its own group, so a timeout can kill the whole tree
  struct sigaction on_parent_death {};
  on_parent_death.sa_handler = kill_own_group;
  ::sigaction(SIGUSR1, &on_parent_death, nullptr);
  ::prctl(PR_SET_PDEATHSIG, SIGUSR1);
  if (::getppid() != parent) ::_exit(127);  // evbus died before the line above took effect
  // Default signal handling and no mask: the parent ignores SIGPIPE, a handler should not.
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (const int sig : {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT}) ::sigaction(sig, &dfl, nullptr);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  if (::dup2(input_fd, STDIN_FILENO) < 0 || ::dup2(stderr_fd, STDERR_FILENO) < 0) ::_exit(127);
  const pid_t shell = ::fork();
  if (shell < 0) ::_exit(127);
  if (shell == 0) {
    ::execve("/bin/sh", argv, envp);
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(shell, &status, 0) < 0) {
    if (errno != EINTR) ::_exit(127);
  }
  if (WIFSIGNALED(status)) {  // end the same way, so evbus reports the same signal
    const int sig = WTERMSIG(status);
    ::sigaction(sig, &dfl, nullptr);
    ::kill(::getpid(), sig);
  }
  ::_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 127);
}

// The event body as a memory file: the child reads it at its own pace, or not at all, and a
// child that exits early cannot make the parent die of SIGPIPE.
int input_file(const std::string& input) {
  const int fd = static_cast<int>(::syscall(SYS_memfd_create, "evbus-event", MFD_CLOEXEC));
  if (fd < 0) return -1;
  size_t written = 0;
  while (written < input.size()) {
    const ssize_t n = ::write(fd, input.data() + written, input.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(fd);
      return -1;
    }
    written += static_cast<size_t>(n);
  }
  ::lseek(fd, 0, SEEK_SET);
  return fd;
}

std::vector<std::string> merged_environment(const Environment& extra) {
  std::map<std::string, std::string> overrides;
  for (const auto& [name, value] : extra) overrides[name] = value;
  std::vector<std::string> out;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    const std::string_view entry(*e);
    const auto eq = entry.find('=');
    if (eq != std::string_view::npos && overrides.count(std::string(entry.substr(0, eq)))) continue;
    out.emplace_back(entry);
  }
  for (const auto& [name, value] : overrides) out.push_back(name + "=" + value);
  return out;
}

void append_capped(std::string& buffer, const char* data, size_t size, size_t cap) {
  buffer.append(data, size);
  // Trim in large steps so a chatty child costs amortised O(1) per byte.
  if (buffer.size() > 2 * cap + 4096) buffer.erase(0, buffer.size() - cap);
}

// Reads what is available now; false once the write end is closed.
bool read_available(int fd, std::string& buffer, size_t cap) {
  char chunk[8192];
  for (;;) {
    const ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n > 0) {
      append_capped(buffer, chunk, static_cast<size_t>(n), cap);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
  }
}

int pidfd_for(pid_t pid) {
#ifdef SYS_pidfd_open
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
#else
  (void)pid;
  return -1;
#endif
}

CommandResult not_started(const std::string& why) {
  CommandResult r;
  r.status = CommandResult::Status::not_started;
  r.start_error = why;
  return r;
}

void record_status(CommandResult& result, int status) {
  if (WIFEXITED(status)) {
    result.status = CommandResult::Status::exited;
    result.code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.status = CommandResult::Status::signaled;
    result.code = WTERMSIG(status);
  }
}

std::string trim_trailing_space(std::string text) {
  while (!text.empty() &&
         (text.back() == '\n' || text.back() == '\r' || text.back() == ' ' || text.back() == '\t'))
    text.pop_back();
  return text;
}

}  // namespace

std::string CommandResult::error_type() const {
  return status == Status::timed_out ? "HandlerTimeout" : "HandlerError";
}

std::string CommandResult::error_message() const {
  constexpr std::size_t kCodePoints = 1000;  // what fits the dlq_error_message header
  const std::string text = trim_trailing_space(stderr_tail);
  std::string what;
  switch (status) {
    case Status::exited:
      what = fmt::format("command exited with status {}", code);
      break;
    case Status::signaled:
      what = fmt::format("command killed by signal {} ({})", code, ::strsignal(code));
      break;
    case Status::timed_out:
      what = fmt::format("command timed out after {} s",
                         static_cast<double>(elapsed.count()) / 1000.0);
      break;
    case Status::not_started:
      what = "cannot run command: " + start_error;
      break;
  }
  if (status == Status::timed_out && !text.empty())
    what += "\n" + text;
  else if (!text.empty())
    what = text;
  return last_code_points(what, kCodePoints);
}

CommandResult run_command(const CommandRun& run) {
  const auto start = Clock::now();
  Fd input{input_file(run.input)};
  if (input.get() < 0)
    return not_started(fmt::format("cannot buffer stdin: {}", std::strerror(errno)));
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC | O_NONBLOCK) != 0)
    return not_started(fmt::format("cannot create a pipe: {}", std::strerror(errno)));
  Fd err_read{pipe_fds[0]};
  Fd err_write{pipe_fds[1]};

  const auto env_strings = merged_environment(run.environment);
  std::vector<char*> envp;
  for (const auto& s : env_strings) envp.push_back(const_cast<char*>(s.c_str()));
  envp.push_back(nullptr);
  std::string shell = "/bin/sh", dash_c = "-c", command = run.command;
  char* argv[] = {shell.data(), dash_c.data(), command.data(), nullptr};

  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) run_guard(input.get(), err_write.get(), parent, argv, envp.data());
  const int fork_errno = errno;
  err_write.reset();
  input.reset();
  if (pid < 0) return not_started(fmt::format("cannot fork: {}", std::strerror(fork_errno)));
  ::setpgid(pid, pid);  // also from the parent, so kill(-pid) works before the child ran

  CommandResult result;
  Fd pidfd{pidfd_for(pid)};
  bool stderr_open = true;
  const auto deadline = start + run.timeout;
  for (;;) {
    int status = 0;
    const pid_t done = ::waitpid(pid, &status, WNOHANG);
    if (done == pid) {
      record_status(result, status);
      // Whatever it wrote before exiting is in the pipe; descendants may keep it open, so read
      // only what is there now.
      if (stderr_open) read_available(err_read.get(), result.stderr_tail, run.stderr_cap);
      break;
    }
    const auto now = Clock::now();
    if (now >= deadline) {
      ::kill(-pid, SIGKILL);
      ::kill(pid, SIGKILL);
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      if (stderr_open) read_available(err_read.get(), result.stderr_tail, run.stderr_cap);
      result.status = CommandResult::Status::timed_out;
      result.code = SIGKILL;
      break;
    }
    const auto remaining =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count() + 1;
    pollfd fds[2];
    nfds_t count = 0;
    if (stderr_open) fds[count++] = {err_read.get(), POLLIN, 0};
    if (pidfd.get() >= 0) fds[count++] = {pidfd.get(), POLLIN, 0};
    // Without a pidfd, exit is noticed by polling waitpid every few milliseconds.
    const int wait_ms = static_cast<int>(std::min<int64_t>(remaining, pidfd.get() >= 0 ? 1000 : 5));
    ::poll(fds, count, wait_ms);
    if (stderr_open && count > 0 && (fds[0].revents & (POLLIN | POLLHUP | POLLERR)))
      stderr_open = read_available(err_read.get(), result.stderr_tail, run.stderr_cap);
  }
  if (result.stderr_tail.size() > run.stderr_cap)
    result.stderr_tail.erase(0, result.stderr_tail.size() - run.stderr_cap);
  result.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
  return result;
}

namespace {

// Environment values cannot hold NUL bytes.
std::string env_safe(std::string text) {
  std::erase(text, '\0');
  return text;
}

std::string scalar_text(const Json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_null()) return "";
  return value.dump();
}

std::string body_or_header(const ConsumedEvent& event, const char* name) {
  if (event.body && event.body->is_object()) {
    if (auto it = event.body->find(name); it != event.body->end()) return scalar_text(*it);
  }
  if (const Header* h = find_header(event.record.headers, name); h && h->value) return *h->value;
  return "";
}

}  // namespace

Environment handler_environment(const ConsumedEvent& event) {
  const InRecord& r = event.record;
  return {
      {"EVBUS_EVENT_TYPE", env_safe(event.event_type.value_or(""))},
      {"EVBUS_EVENT_ID", env_safe(body_or_header(event, "event_id"))},
      {"EVBUS_AGGREGATE_ID", env_safe(body_or_header(event, "aggregate_id"))},
      {"EVBUS_AGGREGATE_VERSION", env_safe(body_or_header(event, "aggregate_version"))},
      {"EVBUS_TOPIC", env_safe(r.topic)},
      {"EVBUS_PARTITION", std::to_string(r.partition)},
      {"EVBUS_OFFSET", std::to_string(r.offset)},
      {"EVBUS_RETRY_COUNT", std::to_string(event.retry_count)},
  };
}

EventHandler make_command_handler(
    CommandHandlerOptions options,
    std::function<void(const ConsumedEvent&, const CommandResult&)> on_result) {
  return
      [options = std::move(options), on_result = std::move(on_result)](const ConsumedEvent& event) {
        CommandRun run;
        run.command = options.command;
        run.input = event.record.value.value_or("");
        run.environment = handler_environment(event);
        run.timeout = options.timeout;
        const CommandResult result = run_command(run);
        if (on_result) on_result(event, result);
        if (result.succeeded()) return Disposition::handled();
        return Disposition::failed(result.error_type(), result.error_message());
      };
}

}  // namespace evbus
