/// The Redis bridge's state, shared by the files that each do one of its
/// jobs (actors/bridge/*.cpp); only they include it.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "actors/atoms.hpp"
#include "actors/context.hpp"
#include "redis/command_runner.hpp"
#include "redis/topology.hpp"

namespace goring::bridge {

inline constexpr const char* component = "redis_bridge";

/// The one connection that currently receives a user's messages here.
struct local_user {
  caf::actor conn;
  std::string token;
};

/// A connection actor that asked to register and what it registered with.
struct registered_conn {
  std::string user;
  std::string token;
};

struct waiting_registration {
  caf::actor conn;
  std::string token;
  caf::response_promise promise;
};

/// Local users and their connections, and the pub/sub channels subscribed
/// for them (actors/bridge/user_registry.cpp).
struct user_registry {
  /// Users whose registered connection here receives their messages.
  std::unordered_map<std::string, local_user> users;
  /// Users with a registration in flight: the newest registering connection
  /// takes their messages until the registration completes (it holds them
  /// in its mailbox meanwhile), so nothing sent right after is lost.
  std::unordered_map<std::string, caf::actor> registering;
  /// Every live connection actor that registered, by address.
  std::unordered_map<caf::actor_addr, registered_conn> conns;
  /// How many entries of `conns` each user has: a channel stays subscribed
  /// while any connection of its user lives or registers here.
  std::unordered_map<std::string, int> conns_per_user;
  /// Users whose channel is subscribed or being subscribed.
  std::unordered_set<std::string> channels;
  /// Registrations waiting for their channel's SUBSCRIBE to be confirmed.
  std::unordered_map<std::string, std::vector<waiting_registration>> subscribing;
};

/// This instance's call actors by session id, and back
/// (actors/bridge/call_directory.cpp).
struct call_directory {
  std::unordered_map<std::string, caf::actor> calls;
  std::unordered_map<caf::actor_addr, std::string> call_ids;
};

/// The pub/sub probe (actors/bridge/pubsub_probe.cpp).
struct probe_state {
  /// The probe in flight, 0 when none.
  uint64_t sent = 0;
  uint64_t seq = 0;
  /// Its channels, one per shard (redis::topology::shard_tags), as last
  /// subscribed.
  std::vector<std::string> channels;
  /// Those the probe in flight has not come back on yet.
  std::unordered_set<std::string> waiting;
};

struct state {
  context_ptr ctx;
  std::unique_ptr<redis::topology> topology;
  std::unique_ptr<redis::command_runner> commands;
  user_registry registry;
  call_directory directory;
  probe_state probe;
  bool commands_were_up = false;
  bool draining = false;

  static inline const char* name = "redis_bridge";

  ~state() {
    if (topology)
      topology->stop();
  }
};

using actor = caf::stateful_actor<state>;

// -- transport (actors/redis_bridge.cpp) -------------------------------------

/// Publishes without waiting: only failures are worth a log line.
void publish(actor* self, const std::string& channel, std::string payload);

// -- user registry and fan-out (actors/bridge/user_registry.cpp) -------------

/// (register, user, token, conn): subscribes the user's channel, then claims
/// the ws:user key; the promise gets the claim's reply.
caf::response_promise register_connection(actor* self, const std::string& user,
                                          const std::string& token, const caf::actor& conn);
/// The user's channel SUBSCRIBE was confirmed (or failed).
void channel_subscribed(actor* self, const std::string& user, bool ok);
/// A registered connection ended: its key is released, its channel dropped
/// when it was the user's last here. False when `who` was not registered.
bool connection_down(actor* self, const caf::actor_addr& who);
/// A payload for a user: to the local connection, else PUBLISH.
void deliver(actor* self, const std::string& user, std::string payload, const caf::actor& hint);
/// A pub/sub message on a user's channel.
void channel_message(actor* self, const std::string& user, std::string payload);
/// SUBSCRIBE again to every channel (after the subscriber came back).
void resubscribe_all(actor* self);
/// Every live registered connection.
std::vector<caf::actor> registered_connections(const state& st);

// -- presence (actors/bridge/presence.cpp) ------------------------------------

/// Refreshes this instance's ws:server heartbeat.
void heartbeat(actor* self);
/// Extends every local user's ws:user key, writes back the keys Redis lost,
/// and closes the connections whose key another one took meanwhile.
void refresh_presence(actor* self);

// -- call directory (actors/bridge/call_directory.cpp) ------------------------

/// The local call actor of a session, joined by `conn`, spawned if none.
caf::actor open_call(actor* self, call_setup setup, const std::string& user,
                     const caf::actor& conn);
/// A call actor ended. False when `who` was no call actor.
bool call_down(actor* self, const caf::actor_addr& who);

// -- pub/sub probe (actors/bridge/pubsub_probe.cpp) ---------------------------

/// Publishes the next probe on every shard's probe channel; restarts the
/// subscriber if the last one did not come back on all of them.
void send_probe(actor* self);
/// A message on a probe channel.
void probe_returned(actor* self, const std::string& channel, const std::string& payload);
/// The probe channels for the shards the topology has now, sorted.
std::vector<std::string> probe_channels(const state& st);
/// Makes `channels` the probe's, unsubscribing those it had and no longer
/// uses (the caller subscribes the new ones).
void use_probe_channels(actor* self, const std::vector<std::string>& channels);

// -- admin API (actors/bridge/admin_router.cpp) -------------------------------

/// Routes /admin/... to rows gathered from the actors.
caf::response_promise admin_request(actor* self, const std::string& method,
                                    const std::string& target);

} // namespace goring::bridge
