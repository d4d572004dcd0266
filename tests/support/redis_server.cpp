#include "tests/support/redis_server.hpp"

#include <csignal>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include <hiredis/hiredis.h>
#include <stdlib.h>

namespace goring::test {

redis_server::redis_server() : redis_server(redis_persistence::none) {
  // nop
}

redis_server::redis_server(redis_persistence persistence)
  : redis_server(redis_options{persistence}) {
  // nop
}

redis_server::redis_server(redis_options options) : options_(std::move(options)) {
  // Every server has a directory of its own: a replica writes the copy it
  // syncs to dump.rdb there, and a server started later in the same
  // directory would load it.
  char dir[] = "/tmp/goring_redis_XXXXXX";
  if (::mkdtemp(dir) == nullptr)
    throw std::runtime_error("mkdtemp() failed");
  dir_ = dir;
  // A free port can be taken by another test between free_port() and the
  // bind: then redis-server exits, and another port is tried.
  for (int attempt = 0;; ++attempt) {
    port_ = free_port();
    try {
      if (options_.sentinel_of != 0)
        write_sentinel_config();
      launch();
      return;
    } catch (const std::runtime_error&) {
      if (attempt == 2) {
        if (!dir_.empty()) {
          std::error_code ignored;
          std::filesystem::remove_all(dir_, ignored);
        }
        throw;
      }
    }
  }
}

void redis_server::launch() {
  // A connection of an earlier attempt would still point at its port.
  if (ctx_ != nullptr) {
    redisFree(ctx_);
    ctx_ = nullptr;
  }
  std::vector<std::string> argv{
    "redis-server", "--port", std::to_string(port_), "--bind", "127.0.0.1",
    "--save",       "",       "--loglevel",          "warning"};
  if (options_.sentinel_of != 0)
    argv = {"redis-server", dir_ + "/sentinel.conf", "--sentinel"};
  else if (options_.persistence == redis_persistence::aof) {
    // Every write is in the AOF before Redis answers it, so a restart
    // finds exactly what clients were told had happened.
    for (const char* arg : {"--appendonly", "yes", "--appendfsync", "always", "--dir"})
      argv.emplace_back(arg);
    argv.push_back(dir_);
  } else {
    argv.emplace_back("--appendonly");
    argv.emplace_back("no");
  }
  if (options_.sentinel_of == 0) {
    if (options_.persistence != redis_persistence::aof) {
      argv.emplace_back("--dir");
      argv.push_back(dir_);
    }
    if (options_.replica_of != 0) {
      argv.emplace_back("--replicaof");
      argv.emplace_back("127.0.0.1");
      argv.push_back(std::to_string(options_.replica_of));
    }
    argv.insert(argv.end(), options_.args.begin(), options_.args.end());
  }
  proc_ = child_process(std::move(argv), {}, "/dev/null");
  bool up = wait_until(
    [&] {
      if (!proc_.running())
        throw std::runtime_error("redis-server exited at start");
      connect();
      if (ctx_ == nullptr)
        return false;
      auto r = run({"PING"});
      return r.type == redis::reply::kind::status && r.str == "PONG";
    },
    std::chrono::seconds(5));
  // The server that answered must be ours, not another test's on a port
  // ours could not bind.
  auto info = up ? run({"INFO", "server"}) : redis::reply{};
  bool ours =
    up && info.str.find("process_id:" + std::to_string(proc_.pid()) + "\r") != std::string::npos;
  if (!ours) {
    if (ctx_ != nullptr) {
      redisFree(ctx_);
      ctx_ = nullptr;
    }
    proc_.stop(SIGKILL, std::chrono::seconds(2));
    throw std::runtime_error(up ? "another redis-server answered on port " + std::to_string(port_)
                                : "redis-server did not answer PING in 5 s");
  }
}

void redis_server::write_sentinel_config() {
  std::ofstream conf{dir_ + "/sentinel.conf", std::ios::trunc};
  auto& name = options_.monitor_name;
  conf << "port " << port_ << "\nbind 127.0.0.1\ndir " << dir_ << "\nloglevel warning\n"
       << "sentinel monitor " << name << " 127.0.0.1 " << options_.sentinel_of << " 2\n";
  for (auto& [option, value] : options_.sentinel_settings)
    conf << "sentinel " << option << " " << name << " " << value << "\n";
  if (!conf)
    throw std::runtime_error("cannot write " + dir_ + "/sentinel.conf");
}

redis_server::~redis_server() {
  if (ctx_ != nullptr)
    redisFree(ctx_);
  if (!dir_.empty()) {
    proc_.stop(SIGKILL, std::chrono::seconds(2));
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
}

std::string redis_server::addr() const {
  return "127.0.0.1:" + std::to_string(port_);
}

void redis_server::connect() {
  if (ctx_ != nullptr)
    return;
  timeval tv{2, 0};
  ctx_ = redisConnectWithTimeout("127.0.0.1", port_, tv);
  if (ctx_ != nullptr && ctx_->err != 0) {
    redisFree(ctx_);
    ctx_ = nullptr;
  }
}

redis::reply redis_server::run(const std::vector<std::string>& argv) {
  connect();
  if (ctx_ == nullptr)
    return redis::reply::make_error("not connected");
  std::vector<const char*> args;
  std::vector<size_t> lens;
  for (auto& a : argv) {
    args.push_back(a.data());
    lens.push_back(a.size());
  }
  auto* raw = redisCommandArgv(ctx_, static_cast<int>(args.size()), args.data(), lens.data());
  if (raw == nullptr) {
    redisFree(ctx_);
    ctx_ = nullptr;
    return redis::reply::make_error("connection lost");
  }
  auto out = redis::to_reply(static_cast<const redisReply*>(raw));
  freeReplyObject(raw);
  return out;
}

void redis_server::stop() {
  if (ctx_ != nullptr) {
    redisFree(ctx_);
    ctx_ = nullptr;
  }
  proc_.stop(SIGTERM, std::chrono::seconds(5));
}

void redis_server::kill() {
  if (ctx_ != nullptr) {
    redisFree(ctx_);
    ctx_ = nullptr;
  }
  proc_.stop(SIGKILL, std::chrono::seconds(5));
}

void redis_server::pause() {
  if (proc_.pid() > 0)
    ::kill(proc_.pid(), SIGSTOP);
}

void redis_server::resume() {
  if (proc_.pid() > 0)
    ::kill(proc_.pid(), SIGCONT);
}

void redis_server::restart() {
  if (ctx_ != nullptr) {
    redisFree(ctx_);
    ctx_ = nullptr;
  }
  launch();
}

} // namespace goring::test
