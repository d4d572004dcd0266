/// The Redis this instance talks to, whatever its shape (one server, or the
/// master a set of sentinels names): a command path and a subscriber path
/// that reconnect by themselves and follow a failover. The bridge uses only
/// this and never learns which shape it is.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "redis/async_connection.hpp"

namespace goring {
struct settings;
} // namespace goring

namespace goring::redis {

/// The two paths every topology gives.
enum class link_role : uint8_t { commands, subscriber };

inline const char* to_string(link_role role) {
  return role == link_role::commands ? "command" : "subscriber";
}

/// What a topology reports. Every callback runs on a Redis I/O strand, never
/// inline in a caller's thread: hand the event over to the owner's thread.
struct topology_events {
  /// A path is up and logged in: the first time, after a reconnect, and
  /// after the topology moved it to another server. The owner then loads
  /// its scripts (commands) or subscribes its channels again (subscriber).
  /// `moved` is true when the path is up on another server than the one it
  /// was last up on (a failover): that server may lack writes the old one
  /// had, so the owner writes back what it knows.
  std::function<void(link_role, bool moved)> on_up;
  /// The command path moved to another server (a failover), called before
  /// anything can be sent there, on_up(commands, true) after: whoever sees
  /// a reply from the new server can tell that keys may have been lost in
  /// the move.
  std::function<void()> on_failover;
  /// A path is lost; the topology reconnects by itself.
  std::function<void(link_role, const std::string& why)> on_down;
  /// A message arrived on a subscribed channel.
  message_handler on_message;
};

class topology {
public:
  virtual ~topology() = default;

  /// Starts connecting; reconnects run by themselves after that.
  virtual void start() = 0;

  /// Closes every connection for good; pending commands get error replies.
  virtual void stop() = 0;

  /// Sends one command (binary safe); `on_reply` gets its reply, or an error
  /// reply at once while no server is reachable: callers never hang.
  virtual void command(std::vector<std::string> argv, reply_handler on_reply) = 0;

  /// Subscribes to channels; `on_done` gets the reply to the last
  /// confirmation. After an on_up(subscriber) nothing is subscribed: the
  /// owner subscribes again.
  virtual void subscribe(std::vector<std::string> channels, reply_handler on_done) = 0;

  /// Unsubscribes from channels; no reply.
  virtual void unsubscribe(std::vector<std::string> channels) = 0;

  /// The subscriber path is up.
  virtual bool subscriber_connected() const = 0;

  /// Drops the subscriber path and connects it again, for a link that is up
  /// but no longer delivers (the pub/sub probe saw it).
  virtual void restart_subscriber(std::string why) = 0;

  /// Where commands go now, for logs and the admin API ("host:port").
  virtual std::string describe() const = 0;

  /// The owner saw a sign that commands may go to a server that is no
  /// longer the master (a READONLY reply, commands that timed out): a
  /// topology that can look for another master does so now; one that
  /// cannot ignores it.
  virtual void suspect(std::string why) = 0;

  /// One hash tag per shard the subscriber path listens on now (a
  /// Cluster's masters in its slot map; each tag hashes to a slot of its
  /// master), or one empty tag where one connection hears every channel.
  /// The pub/sub probe sends one message per tag, so a shard that stops
  /// delivering is seen while the others deliver. Thread safe.
  virtual std::vector<std::string> shard_tags() const {
    return {std::string{}};
  }

  /// True for a Redis Cluster: a script may touch the keys of one hash slot
  /// only, so the command runner runs the transitions whose keys span
  /// slots as single-slot steps (redis/cluster_calls.hpp) on the Cluster
  /// key layout (keys::tagged_user).
  virtual bool one_slot_per_script() const {
    return false;
  }
};

/// The topology the settings ask for. Connections are named
/// "goring:<SERVER_ID>:commands" and ":subscriber" (CLIENT SETNAME).
std::unique_ptr<topology> make_topology(boost::asio::io_context& io, const settings& config,
                                        topology_events events);

} // namespace goring::redis
