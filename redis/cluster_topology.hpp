/// A Redis Cluster (REDIS_CLUSTER seed nodes): the slot map from CLUSTER
/// SLOTS, every command sent to the master of its key's slot, MOVED and ASK
/// followed, the map refreshed on MOVED, on a lost master and every few
/// seconds, and sharded pub/sub (SSUBSCRIBE/SPUBLISH) on one subscriber
/// connection per master. Nothing is read from replicas.
///
/// Connections per instance: one command connection and one shard
/// subscriber per master, plus one control connection (CLUSTER SLOTS) to
/// one node at a time: 2 x masters + 1, whatever the number of users.
#pragma once

#include "redis/topology.hpp"

namespace goring::redis {

class cluster_topology final : public topology {
public:
  /// Connections to each master: one for commands, one shard subscriber.
  static constexpr int connections_per_master = 2;
  /// A command follows at most this many MOVED or ASK replies.
  static constexpr int max_redirects = 5;

  struct options {
    /// Where to ask for the slot map first (any one reachable is enough);
    /// only host and port are used.
    std::vector<endpoint> seeds;
    /// Login and connection names (CLIENT SETNAME) of the three kinds of
    /// connection; host and port come from the slot map.
    endpoint commands;
    endpoint subscriber;
    endpoint control;
  };

  cluster_topology(boost::asio::io_context& io, options opts, topology_events events);
  ~cluster_topology() override;

  void start() override;
  void stop() override;
  /// Routed by the command's first key (redis/cluster_keys.hpp,
  /// route_of); PUBLISH goes out as SPUBLISH to its channel's shard, SCRIPT
  /// LOAD to every master (the first error, else the first reply). Fails
  /// at once with an error reply while the slot's master is unknown or not
  /// connected.
  void command(std::vector<std::string> argv, reply_handler on_reply) override;
  /// SSUBSCRIBE, one command per slot, on each channel's shard. The
  /// channels are kept and subscribed again by the topology itself when
  /// their slot moves (a `sunsubscribe` push, a new slot map) or their
  /// shard's connection comes back; `on_done` gets an error when a shard
  /// is not connected now.
  void subscribe(std::vector<std::string> channels, reply_handler on_done) override;
  void unsubscribe(std::vector<std::string> channels) override;
  /// Every master's shard subscriber is up.
  bool subscriber_connected() const override;
  void restart_subscriber(std::string why) override;
  /// "cluster of 3 masters: 127.0.0.1:7000, ..." or what it waits for.
  std::string describe() const override;
  /// Asks for the slot map now.
  void suspect(std::string why) override;

  std::vector<std::string> shard_tags() const override;
  bool one_slot_per_script() const override {
    return true;
  }

  /// Connections this topology has open or opening now (for tests and the
  /// admin API).
  std::size_t connection_count() const;

private:
  struct impl;
  std::shared_ptr<impl> impl_;
};

} // namespace goring::redis
