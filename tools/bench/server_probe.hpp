/// What the bench reads about the servers it measures: CPU time and RSS
/// from /proc, command counts and clients from Redis (INFO, blocking).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

struct redisContext;

namespace goring::bench {

/// One server process at one moment.
struct process_sample {
  pid_t pid = 0;
  /// utime + stime of all its threads, in seconds (clock-tick resolution).
  double cpu_seconds = 0;
  uint64_t rss_kib = 0;
};

/// Redis at one moment.
struct redis_sample {
  /// `calls` of every `cmdstat_*` line of INFO commandstats.
  std::map<std::string, uint64_t> calls;
  uint64_t connected_clients = 0;
};

struct server_snapshot {
  std::chrono::steady_clock::time_point at;
  std::vector<process_sample> processes;
  std::optional<redis_sample> redis;
};

/// What changed between two snapshots.
struct server_delta {
  double seconds = 0;
  /// Per process, in the order of the pids given.
  std::vector<process_sample> processes;
  double cpu_seconds = 0;
  bool has_redis = false;
  /// Commands Redis ran, without the bench's own INFO.
  uint64_t redis_commands = 0;
  std::map<std::string, uint64_t> redis_by_command;
  /// connected_clients at the later snapshot, without the bench's own.
  uint64_t redis_clients = 0;
};

server_delta operator-(const server_snapshot& after, const server_snapshot& before);

/// Reads the servers given by --server-pid and --redis. Throws
/// std::runtime_error when a pid or Redis cannot be read at the start.
class server_probe {
public:
  server_probe(std::vector<pid_t> pids, const std::string& redis_addr,
               const std::string& redis_password);
  ~server_probe();

  server_probe(const server_probe&) = delete;
  server_probe& operator=(const server_probe&) = delete;

  bool has_processes() const {
    return !pids_.empty();
  }
  bool has_redis() const {
    return redis_ != nullptr;
  }

  /// Reads every process and Redis now. A process that has gone reads as
  /// zeros; a Redis that fails now is left out of the snapshot.
  server_snapshot take();

private:
  std::optional<redis_sample> read_redis();

  std::vector<pid_t> pids_;
  redisContext* redis_ = nullptr;
};

/// Reads /proc/PID/stat and /proc/PID/status; nullopt when they cannot be.
std::optional<process_sample> read_process(pid_t pid);

} // namespace goring::bench
