/// One connection for sharded pub/sub (SSUBSCRIBE, Redis 7) to one cluster
/// master. hiredis 0.14's asynchronous API knows only SUBSCRIBE and
/// PSUBSCRIBE (and asserts on the pushes SSUBSCRIBE brings), so this one
/// speaks RESP on an Asio socket and parses with hiredis' reader alone.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>

#include "redis/async_connection.hpp"

namespace goring::redis {

/// Not thread-safe: every member is called on the owner's strand, and every
/// callback and reply handler runs there (posted, never inline). One-shot:
/// once lost or stopped it stays so; the owner makes a new one.
class shard_subscriber {
public:
  using strand_type = boost::asio::strand<boost::asio::io_context::executor_type>;

  struct callbacks {
    /// Logged in: SSUBSCRIBE may go out now.
    std::function<void()> on_connected;
    /// The connection is gone (or never came up); reported once, never
    /// after stop().
    std::function<void(const std::string& why)> on_lost;
    /// A message on a subscribed shard channel ("smessage").
    message_handler on_message;
    /// The server dropped a channel we did not ask to leave (its slot moved
    /// to another master, or this master became a replica).
    std::function<void(const std::string& channel)> on_dropped;
  };

  shard_subscriber(strand_type strand, endpoint where, callbacks cbs);
  ~shard_subscriber();

  shard_subscriber(const shard_subscriber&) = delete;
  shard_subscriber& operator=(const shard_subscriber&) = delete;

  void start();
  /// Closes the connection; pending handlers get error replies, no
  /// callback runs after this.
  void stop();

  /// SSUBSCRIBE of channels that all hash to one slot (Redis refuses
  /// others with CROSSSLOT). `on_done` gets the last confirmation, or the
  /// error (MOVED when this master does not serve that slot).
  void subscribe(std::vector<std::string> channels, reply_handler on_done);
  /// SUNSUBSCRIBE; no reply, and the confirmations are not reported as drops.
  void unsubscribe(std::vector<std::string> channels);

  /// Logged in and not lost.
  bool connected() const;

private:
  struct impl;
  std::shared_ptr<impl> impl_;
};

} // namespace goring::redis
