/// Every Redis key and channel name goring uses, in one place.
#pragma once

#include <string>
#include <string_view>

#include "redis/cluster_keys.hpp"

namespace goring::redis::keys {

/// STRING: owner token of the user's one WebSocket (server id and connection id).
inline constexpr std::string_view user_prefix = "ws:user:";
/// HASH: caller_id, callee_id, state, created_at, ... of one call.
inline constexpr std::string_view session_prefix = "call:session:";
/// STRING: the session id of the user's current call.
inline constexpr std::string_view user_call_prefix = "call:user:";
/// Pub/sub channel that reaches the instance holding the user's WebSocket.
inline constexpr std::string_view signal_prefix = "ws:signal:";
/// HASH: heartbeat of a live instance (instance, version, started_at, admin).
inline constexpr std::string_view server_prefix = "ws:server:";
/// Pub/sub channel an instance publishes to itself to probe its subscriber.
inline constexpr std::string_view probe_prefix = "ws:probe:";
/// STREAM: the call events waiting for their webhook (docs/webhooks.md).
/// The call scripts XADD to it in the same step as the transition; the key
/// reaches them as a KEYS argument, never spelt in Lua, so that in Cluster
/// mode redis/cluster_calls can hand each step the stream of its session's
/// partition (tagged_webhook_stream below).
inline constexpr std::string_view webhook_stream = "goring:webhooks";
/// The consumer group of webhook_stream that every instance reads in.
inline constexpr std::string_view webhook_group = "goring-webhooks";

inline std::string join(std::string_view prefix, std::string_view id) {
  std::string key;
  key.reserve(prefix.size() + id.size());
  key.append(prefix).append(id);
  return key;
}

inline std::string user(std::string_view user_id) {
  return join(user_prefix, user_id);
}
inline std::string session(std::string_view session_id) {
  return join(session_prefix, session_id);
}
inline std::string user_call(std::string_view user_id) {
  return join(user_call_prefix, user_id);
}
inline std::string signal(std::string_view user_id) {
  return join(signal_prefix, user_id);
}
inline std::string server(std::string_view server_id) {
  return join(server_prefix, server_id);
}
inline std::string probe(std::string_view instance_id) {
  return join(probe_prefix, instance_id);
}
/// The probe channel of one shard (redis::topology::shard_tags): the tag
/// first, so no brace in a SERVER_ID can move it ("ws:probe:{7}:goring-1").
inline std::string probe(std::string_view instance_id, std::string_view shard_tag) {
  if (shard_tag.empty())
    return probe(instance_id);
  std::string out{probe_prefix};
  out.append("{").append(shard_tag).append("}:").append(instance_id);
  return out;
}

// Cluster mode (docs/redis-cluster.md): a user's presence and call keys
// carry the user's hash tag, so they share one slot whatever the id holds
// ("ws:user:{alice}", "ws:user:{a%7Db%7Bc}"). A session carries the tag of
// its partition, and so does the webhook stream its events go to, so a
// transition writes its event in the same step ("call:session:{7-1}:s1",
// "goring:webhooks:{7-1}"). Heartbeats and channels keep the names above:
// each is the only key of its scripts.

/// Sessions (and their webhook streams) are spread over this many
/// partitions in Cluster mode: evenly over the slots, so over up to this
/// many masters; every instance reads this many streams. Part of the key
/// layout: every instance of a fleet must agree.
inline constexpr unsigned cluster_partitions = 32;

inline std::string tagged_user(std::string_view user_id) {
  return cluster::user_key(user_prefix, user_id);
}
inline std::string tagged_user_call(std::string_view user_id) {
  return cluster::user_key(user_call_prefix, user_id);
}

/// The webhook stream of partition `p` (< cluster_partitions).
std::string partition_webhook_stream(unsigned p);
/// "call:session:{TAG}:<session_id>", TAG its partition's tag.
std::string tagged_session(std::string_view session_id);
/// The webhook stream in the slot of tagged_session(session_id).
std::string tagged_webhook_stream(std::string_view session_id);

} // namespace goring::redis::keys
