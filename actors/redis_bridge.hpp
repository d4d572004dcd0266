/// The Redis bridge actor: owns this instance's two Redis connections (one
/// pipelined command connection, one subscriber for all local users), runs
/// the Lua scripts, keeps the registry of local users, and fans pub/sub
/// messages out to their connection actors.
///
/// Messages it takes (see actors/atoms.hpp):
/// - (eval, script_call) -> redis::reply: runs a script with EVALSHA,
///   reloading it on NOSCRIPT.
/// - (command, vector<string>) -> redis::reply: one plain command.
/// - (register, user_id, token, conn) -> string: subscribes the user's
///   channel, then takes the ws:user key; answers the previous owner token
///   ("" if none) and tells a replaced connection, local or remote, to close.
///   The connection is monitored: when it terminates its key is released
///   (owner-checked) and its channel unsubscribed.
/// - (deliver, user_id, tagged_payload, call_hint): to the user's local
///   connection actor if there is one, else PUBLISH on ws:signal:{user_id}.
/// - (shutdown): tells every local connection to close with 1001.
#pragma once

#include <caf/fwd.hpp>

#include "actors/context.hpp"

namespace boost::asio {
class io_context;
} // namespace boost::asio

namespace goring {

caf::actor spawn_redis_bridge(caf::actor_system& sys, context_ptr ctx, boost::asio::io_context& io);

} // namespace goring
