/// The Redis commands one owner has in flight over a topology: what to do
/// with each reply, how long it took (goring_redis_command_seconds), the
/// SHAs of the loaded scripts, and the timeout that fails a command Redis
/// never answers. Not thread-safe: the owner (the Redis bridge actor) calls
/// it from its own context and hands every reply back through `complete`.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "redis/reply.hpp"
#include "redis/scripts.hpp"
#include "redis/topology.hpp"

namespace goring::metrics {
class counter;
class histogram;
} // namespace goring::metrics

namespace goring::redis {

/// How long a command may wait for its reply before it fails with an error
/// reply (the connection may be up but stuck).
inline constexpr auto command_timeout = std::chrono::seconds(5);

class command_runner {
public:
  using continuation = std::function<void(reply)>;
  /// Carries (id, reply) from the Redis I/O strand back to the owner's
  /// context, where the owner calls complete(id, reply).
  using post_back = std::function<void(uint64_t id, reply r)>;

  command_runner(topology& redis, post_back post);

  /// Sends a command; `k` runs in complete() with the reply. `label` names
  /// it in the metrics (a script's name; by default the command in lower
  /// case).
  void send(std::vector<std::string> argv, continuation k, std::string label = {});

  /// Runs a transition built by scripts.hpp: as that one script, or, on a
  /// topology with one_slot_per_script(), as the single-slot steps of
  /// redis/cluster_calls.hpp, whose answer has the script's shape.
  void run(script_call call, continuation k);

  /// Runs one script as it is, by its SHA; on NOSCRIPT (Redis restarted,
  /// flushed its script cache, or a failover moved us to a server that
  /// never saw it) sends the text once, which caches it again under the
  /// same SHA.
  void run_script(script_call call, continuation k);

  /// SCRIPT LOAD of every script, so later calls send only the SHA.
  void load_scripts();

  /// Hands a reply to the command that waits for it; a late reply (its
  /// command already timed out) is dropped. A READONLY reply makes the
  /// topology suspect its master.
  void complete(uint64_t id, reply r);

  /// Fails the commands older than command_timeout with an error reply,
  /// and makes the topology suspect its master if there were any. Returns
  /// how many.
  std::size_t fail_late();

  /// Commands sent so far (the admin API's "handled").
  uint64_t sent() const {
    return next_id_ - 1;
  }

private:
  struct waiting_command {
    continuation k;
    metrics::histogram* timer;
    metrics::counter* errors;
    long long started_ns;
  };

  topology& redis_;
  post_back post_;
  std::array<std::string, script_count> shas_;
  uint64_t next_id_ = 1;
  std::unordered_map<uint64_t, waiting_command> waiting_;
  /// Per-command metrics, looked up once per command name.
  std::unordered_map<std::string, std::pair<metrics::histogram*, metrics::counter*>> timers_;
};

} // namespace goring::redis
