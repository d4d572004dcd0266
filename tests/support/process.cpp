#include "tests/support/process.hpp"

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

namespace goring::test {

uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0)
    throw std::runtime_error("socket() failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    throw std::runtime_error("bind() failed");
  }
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

child_process::child_process(std::vector<std::string> argv,
                             std::map<std::string, std::string> env,
                             std::string log_path) {
  pid_ = ::fork();
  if (pid_ < 0)
    throw std::runtime_error("fork() failed");
  if (pid_ == 0) {
    for (auto& [key, value] : env)
      ::setenv(key.c_str(), value.c_str(), 1);
    if (!log_path.empty()) {
      int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (fd >= 0) {
        ::dup2(fd, STDOUT_FILENO);
        ::dup2(fd, STDERR_FILENO);
        ::close(fd);
      }
    }
    // The test's own sockets (Redis clients, WebSockets) must not live on
    // in the child, or closing them in the test would not reach the server.
    ::close_range(3, ~0U, 0);
    std::vector<char*> args;
    for (auto& a : argv)
      args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    std::fprintf(stderr, "exec %s failed: %s\n", args[0], std::strerror(errno));
    ::_exit(127);
  }
}

child_process::~child_process() {
  if (pid_ > 0 && running()) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, &status_, 0);
  }
}

child_process::child_process(child_process&& other) noexcept
  : pid_(other.pid_), status_(other.status_) {
  other.pid_ = -1;
}

child_process& child_process::operator=(child_process&& other) noexcept {
  if (this != &other) {
    this->~child_process();
    pid_ = other.pid_;
    status_ = other.status_;
    other.pid_ = -1;
  }
  return *this;
}

bool child_process::running() {
  if (pid_ <= 0)
    return false;
  int status = 0;
  auto r = ::waitpid(pid_, &status, WNOHANG);
  if (r == 0)
    return true;
  if (r == pid_)
    status_ = status;
  pid_ = -1;
  return false;
}

int child_process::stop(int sig, std::chrono::milliseconds timeout) {
  if (pid_ <= 0)
    return status_;
  pid_t pid = pid_;
  ::kill(pid, sig);
  bool exited = wait_until(
    [&] {
      int status = 0;
      auto r = ::waitpid(pid, &status, WNOHANG);
      if (r == pid) {
        status_ = status;
        return true;
      }
      return r < 0;
    },
    timeout);
  if (!exited)
    return -1;
  pid_ = -1;
  return status_;
}

} // namespace goring::test
