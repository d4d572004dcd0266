/// One hiredis asynchronous connection driven by an Asio io_context.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "redis/reply.hpp"

namespace boost::asio {
class io_context;
} // namespace boost::asio

namespace goring::redis {

/// Where Redis is and how to log in.
struct endpoint {
  std::string host = "127.0.0.1";
  uint16_t port = 6379;
  /// AUTH after connecting: `AUTH password`, or `AUTH username password`
  /// when `username` is set (Redis 6 ACLs); no AUTH without a password.
  std::string username;
  std::string password;
  /// CLIENT SETNAME after logging in, so CLIENT LIST shows whose connection
  /// it is; empty: no name. Characters Redis refuses (spaces, controls)
  /// become '_'.
  std::string client_name;
};

/// Called once for every command with its reply (or an error reply).
using reply_handler = std::function<void(reply)>;

/// Called for every pub/sub message on a subscribed channel.
using message_handler = std::function<void(const std::string& channel, const std::string& payload)>;

/// One Redis connection: connects, logs in, reconnects with backoff after
/// losing the server, and pipelines commands in the order they are issued.
///
/// Every public member may be called from any thread; work is posted to the
/// connection's own strand. Every callback runs on that strand, never inline
/// in the calling thread. While disconnected, commands fail at once with an
/// error reply instead of waiting: callers must never hang on Redis.
class async_connection {
public:
  struct callbacks {
    /// The connection is up and logged in (first time and after reconnects).
    std::function<void()> on_connected;
    /// The connection is lost or could not be made; a reconnect follows.
    std::function<void(const std::string& why)> on_disconnected;
    /// A message arrived on a channel this connection subscribed to.
    message_handler on_message;
  };

  async_connection(boost::asio::io_context& io, endpoint where, callbacks cbs);
  ~async_connection();

  async_connection(const async_connection&) = delete;
  async_connection& operator=(const async_connection&) = delete;

  /// Starts connecting. Reconnects run by themselves after that.
  void start();

  /// Closes the connection for good; pending commands get error replies.
  void stop();

  /// Drops the connection and reconnects at once (on_disconnected, then
  /// on_connected), for a link that is up but no longer delivers.
  void restart(std::string why);

  /// Sends one command given as its arguments (binary safe).
  void command(std::vector<std::string> argv, reply_handler on_reply);

  /// Subscribes to channels. `on_done` gets the reply to the last SUBSCRIBE
  /// confirmation (an error reply if the connection is down). Messages reach
  /// `callbacks::on_message`. After a reconnect nothing is resubscribed:
  /// the owner does that in `on_connected`.
  void subscribe(std::vector<std::string> channels, reply_handler on_done);

  /// Unsubscribes from channels; no reply.
  void unsubscribe(std::vector<std::string> channels);

  /// True while connected and logged in.
  bool connected() const;

private:
  struct impl;
  std::shared_ptr<impl> impl_;
};

} // namespace goring::redis
