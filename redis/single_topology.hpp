/// One Redis server at one address (REDIS_ADDR): a pipelined command
/// connection and a subscriber connection to it.
#pragma once

#include "redis/topology.hpp"

namespace goring::redis {

class single_topology final : public topology {
public:
  single_topology(boost::asio::io_context& io, endpoint commands, endpoint subscriber,
                  topology_events events);
  ~single_topology() override;

  void start() override;
  void stop() override;
  void command(std::vector<std::string> argv, reply_handler on_reply) override;
  void subscribe(std::vector<std::string> channels, reply_handler on_done) override;
  void unsubscribe(std::vector<std::string> channels) override;
  bool subscriber_connected() const override;
  void restart_subscriber(std::string why) override;
  std::string describe() const override;
  /// One address, nowhere else to look: ignored.
  void suspect(std::string why) override;

private:
  std::string address_;
  std::unique_ptr<async_connection> commands_;
  std::unique_ptr<async_connection> subscriber_;
};

} // namespace goring::redis
