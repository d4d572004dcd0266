/// Child processes for tests: start a program, stop it by its PID.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include <sys/types.h>

namespace goring::test {

/// A free TCP port on 127.0.0.1 (bound once and released; tests take it
/// right away, so a clash is unlikely).
uint16_t free_port();

/// A started program. The destructor kills it (SIGKILL) if it still runs.
class child_process {
public:
  child_process() = default;
  /// Starts `argv[0]` (looked up in PATH) with extra environment variables.
  /// Output goes to `log_path` when given, else to this process' stderr.
  child_process(std::vector<std::string> argv,
                std::map<std::string, std::string> env = {},
                std::string log_path = {});
  ~child_process();

  child_process(child_process&& other) noexcept;
  child_process& operator=(child_process&& other) noexcept;

  pid_t pid() const {
    return pid_;
  }
  bool running();
  /// Sends `sig` and waits up to `timeout` for the exit; returns the exit
  /// status as from waitpid, or -1 if it did not exit in time.
  int stop(int sig, std::chrono::milliseconds timeout);

private:
  pid_t pid_ = -1;
  int status_ = -1;
};

/// Polls `probe` every 20 ms until it returns true or `timeout` passes.
template <class Probe>
bool wait_until(Probe probe, std::chrono::milliseconds timeout);

} // namespace goring::test

#include <thread>

template <class Probe>
bool goring::test::wait_until(Probe probe, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (probe())
      return true;
    if (std::chrono::steady_clock::now() >= deadline)
      return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}
