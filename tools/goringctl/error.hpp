/// goringctl's one error type: what went wrong, said in one line, and the
/// exit status it ends the program with.
#pragma once

#include <stdexcept>
#include <string>

namespace goringctl {

/// Exit statuses: 0 success, 1 a failure (unreachable, refused, not found),
/// 2 a command line goringctl cannot run.
inline constexpr int exit_failure = 1;
inline constexpr int exit_usage = 2;

/// Thrown by every part of goringctl; main prints `what()` on stderr.
class error : public std::runtime_error {
public:
  explicit error(const std::string& message, int status = exit_failure)
    : std::runtime_error(message), status_(status) {
    // nop
  }

  int status() const {
    return status_;
  }

private:
  int status_;
};

/// A command line goringctl cannot run (exit status 2).
inline error usage_error(const std::string& message) {
  return error{message, exit_usage};
}

} // namespace goringctl
