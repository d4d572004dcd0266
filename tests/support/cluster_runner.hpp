/// A command runner (redis/command_runner) on a cluster topology over a
/// test's Redis Cluster, driven by an I/O thread of its own as the bridge
/// actor drives its runner in goring: the call transitions run as the
/// single-slot steps of redis/cluster_calls, by EVALSHA of scripts loaded
/// first, as in goring.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "redis/reply.hpp"
#include "redis/scripts.hpp"
#include "tests/support/redis_cluster.hpp"

namespace goring::test {

class cluster_runner {
public:
  /// Connects to `cluster` (every master, within 20 s) and loads every
  /// script there (SCRIPT LOAD on each master), as the bridge does when
  /// its command path is up.
  explicit cluster_runner(redis_cluster& cluster);
  /// Stops the topology and its I/O thread.
  ~cluster_runner();

  cluster_runner(const cluster_runner&) = delete;
  cluster_runner& operator=(const cluster_runner&) = delete;

  /// Runs a transition as the bridge does (command_runner::run), and
  /// waits for its answer.
  redis::reply run(redis::script_call call);
  /// Starts the transitions back to back in the runner's context, so their
  /// steps interleave, and waits for every answer (in the order given).
  std::vector<redis::reply> run_together(std::vector<redis::script_call> calls);
  /// One plain command, routed by the topology.
  redis::reply command(std::vector<std::string> argv);

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace goring::test
