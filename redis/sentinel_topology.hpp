/// The master a set of Redis Sentinels names (REDIS_SENTINELS and
/// REDIS_SENTINEL_MASTER): asks the sentinels in turn where it is, checks
/// with ROLE that it is a master before sending it anything, follows
/// +switch-master at once, and asks again when a path is lost, a command
/// saw READONLY or timed out, and every few seconds as a safety net.
#pragma once

#include "redis/topology.hpp"

namespace goring::redis {

class sentinel_topology final : public topology {
public:
  struct options {
    /// The sentinels, asked in this order (the one that answered last
    /// first), each with its own login and connection name.
    std::vector<endpoint> sentinels;
    /// The name the sentinels monitor the master under.
    std::string master_name;
    /// Login and names of the two paths; host and port come from the
    /// sentinels.
    endpoint commands;
    endpoint subscriber;
  };

  sentinel_topology(boost::asio::io_context& io, options opts, topology_events events);
  ~sentinel_topology() override;

  void start() override;
  void stop() override;
  /// Fails at once with an error reply while no master is confirmed.
  void command(std::vector<std::string> argv, reply_handler on_reply) override;
  void subscribe(std::vector<std::string> channels, reply_handler on_done) override;
  void unsubscribe(std::vector<std::string> channels) override;
  bool subscriber_connected() const override;
  void restart_subscriber(std::string why) override;
  std::string describe() const override;
  /// Asks the sentinels now and checks the command path's ROLE again.
  void suspect(std::string why) override;

private:
  struct impl;
  std::shared_ptr<impl> impl_;
};

} // namespace goring::redis
