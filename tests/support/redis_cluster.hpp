/// A real six-node Redis Cluster on loopback for tests: three masters and
/// three replicas, each a private redis-server with its own directory and
/// ports, joined with `redis-cli --cluster create`; ways to look at the slot
/// map, move slots, and kill or stop a master.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/redis_server.hpp"

namespace goring::test {

/// One slot range of CLUSTER SLOTS and the port of its master.
struct slot_range {
  uint16_t first = 0;
  uint16_t last = 0;
  uint16_t master_port = 0;
};

class redis_cluster {
public:
  /// Every node's `cluster-node-timeout`: a killed master is failed over
  /// about two of these after its death.
  static constexpr int node_timeout_ms = 1000;

  /// Starts six cluster-enabled nodes (`cluster-replica-validity-factor 0`,
  /// so any replica may take over), runs `redis-cli --cluster create ...
  /// --cluster-replicas 1 --cluster-yes`, and waits (up to 30 s) until every
  /// node says `cluster_state:ok` and every replica is in sync. Throws, with
  /// redis-cli's output, when something does not happen in time; throws
  /// at once when redis-cli is not on PATH. `node_args` go to every
  /// redis-server (e.g. {"--user", "goring", "on", ">secret", "~*", "&*", "+@all"}: an ACL
  /// user to log in as, while the harness keeps the open default user).
  explicit redis_cluster(std::vector<std::string> node_args = {});
  /// Stops every process it started (by PID) and removes their directories.
  ~redis_cluster();

  redis_cluster(const redis_cluster&) = delete;
  redis_cluster& operator=(const redis_cluster&) = delete;

  /// The six nodes, in the order they were given to redis-cli.
  std::vector<redis_server*> nodes();
  /// The node on `port`; nullptr for a port that is not ours.
  redis_server* node_on(uint16_t port);

  /// "127.0.0.1:P" of every node, the seed list of REDIS_CLUSTER.
  std::vector<std::string> seeds() const;
  /// The same joined by commas: the value of REDIS_CLUSTER.
  std::string seed_list() const;

  /// Runs a command on the first node that answers (not an error of a
  /// dead connection).
  redis::reply run_on_any(const std::vector<std::string>& argv);

  /// CLUSTER SLOTS as some live node sees it now.
  std::vector<slot_range> slots();
  /// The node that serves `slot` as a master now (per a live node);
  /// nullptr when none does.
  redis_server* master_of(uint16_t slot);
  /// The live masters that own slots now, lowest port first.
  std::vector<redis_server*> masters();
  /// CLUSTER KEYSLOT `key` on a live node.
  uint16_t keyslot(const std::string& key);
  /// The CLUSTER MYID of a node.
  std::string node_id(redis_server& node);

  /// Waits (up to `timeout`) until every live node says cluster_state:ok,
  /// they agree on the masters of all 16384 slots, and every live replica
  /// is in sync with its master.
  bool wait_healthy(std::chrono::milliseconds timeout = std::chrono::seconds(30));

  /// Kills a master with SIGKILL and waits (up to `timeout`) until its
  /// replica has taken over its slots and the cluster is healthy again.
  /// Returns the new master, nullptr when it did not happen in time.
  redis_server* kill_master(redis_server& master,
                            std::chrono::milliseconds timeout = std::chrono::seconds(30));

  /// Starts the first half of a slot migration: `to` IMPORTING, `from`
  /// MIGRATING. Keys still on `from` answer there; a key already moved (or
  /// a new one) answers ASK to `to`.
  void begin_migration(uint16_t slot, redis_server& from, redis_server& to);
  /// MIGRATEs `key` of `slot` from `from` to `to` (during a migration).
  void migrate_key(const std::string& key, redis_server& from, redis_server& to);
  /// Moves every remaining key of the slot and gives the slot to `to` on
  /// every master (CLUSTER SETSLOT NODE): from then on `from` answers
  /// MOVED. Waits until every live node agrees.
  void finish_migration(uint16_t slot, redis_server& from, redis_server& to);
  /// The whole migration of one slot in one step.
  void move_slot(uint16_t slot, redis_server& from, redis_server& to);

private:
  void create_cluster(const std::vector<std::string>& node_args);
  bool agreed_owner(uint16_t slot, uint16_t port);

  std::string dir_;
  std::vector<std::unique_ptr<redis_server>> nodes_;
};

/// The `field:value` of a node's `section` of INFO (or of CLUSTER INFO when
/// `section` is "cluster-info"), "" when missing.
std::string info_value(redis_server& server, const std::string& section, const std::string& field);

} // namespace goring::test
