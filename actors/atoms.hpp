/// CAF atoms, message types and the error category shared by goring's
/// actors. Heavy (includes CAF): only actor implementation files include it.
#pragma once

#include <caf/all.hpp>

#include "actors/call_actor.hpp"
#include "codec/protocol.hpp"
#include "redis/reply.hpp"
#include "redis/scripts.hpp"

namespace goring {

/// Why a connection actor ended, as its call actors read it from the
/// down message: a participant who hung up ends the call at once; one who
/// is away may come back within RECONNECT_GRACE.
enum class departure : uint8_t {
  /// A close frame from the client, or the server cut it off (too big,
  /// too slow).
  hung_up = 1,
  /// No close frame, a takeover by the same user, or a draining instance.
  away,
};

/// The timeout of requests between goring's actors: none. Every request
/// gets an answer without one: the bridge fails Redis commands itself after
/// redis::command_timeout, and an actor that ends answers the requests still
/// in its mailbox with an error. A CAF request timeout is not free: it
/// wakes CAF's clock thread when set and again when it fires, even after
/// the answer came (CAF 0.17 never cancels it), which cost more CPU than
/// the requests themselves (profiled: 13 % of a call cycle, and a burst of
/// 5,000 timeouts ten seconds after 5,000 users connected).
inline constexpr caf::duration no_request_timeout{caf::infinite};

} // namespace goring

CAF_ERROR_CODE_ENUM(goring::protocol::signal_error, "goring")
CAF_ERROR_CODE_ENUM(goring::departure, "departure")
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(goring::call_setup)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(goring::redis::reply)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(goring::redis::script_call)

namespace goring {

// Every message between goring's actors, by the actor that takes it: the
// one place that states each contract (the actors' headers point here).
// "-> T" is what a request is answered with; "| error" a signal_failure.

// -- To a connection actor (actors/connection_actor.cpp) ---------------------
// From its WebSocket session (through connection_port, net/link.hpp):
/// (text, frame, read_at_ns): a client text frame, read at steady_ns().
using text_atom = caf::atom_constant<caf::atom("text")>;
/// (binary): a binary frame, which the protocol does not allow.
using binary_atom = caf::atom_constant<caf::atom("binary")>;
/// (closed, close_kind as uint8_t): the socket is gone.
using closed_atom = caf::atom_constant<caf::atom("closed")>;
// From the bridge and the call actors:
/// (signal, tagged payload, call hint): a pub/sub payload for this user
/// (hint invalid), or an event from a local call actor (the hint).
using signal_atom = caf::atom_constant<caf::atom("signal")>;
/// (write, frame): write a frame to the client as it is.
using write_atom = caf::atom_constant<caf::atom("write")>;
/// (replaced): the user connected again, here or elsewhere: close 4000.
using replaced_atom = caf::atom_constant<caf::atom("replaced")>;
/// (shutdown): the instance drains: close 1012 ("service restart"); the
/// calls go on, to be resumed on another instance. Also to call actors and
/// to the bridge (which passes it on to every connection and call).
using shutdown_atom = caf::atom_constant<caf::atom("shutdown")>;
/// (token_expired, generation): the token's lifetime is up, unless a
/// refresh since (a newer generation) moved it: close 4001.
using token_expired_atom = caf::atom_constant<caf::atom("tokexpired")>;
/// (ice_refresh): its own timer; sends ice.servers with fresh TURN
/// credentials (the first one goes out when the actor starts).
using ice_refresh_atom = caf::atom_constant<caf::atom("icerefresh")>;
/// (kick): an operator closes this connection (4002).
using kick_atom = caf::atom_constant<caf::atom("kick")>;
/// (route, session_id, peer_conn, peer_user): from the call actor of an
/// accepted call to a participant that relayed through it, and again when
/// the peer's connection changes: relays of that session may skip the call
/// actor, straight to `peer_conn` or, when it is invalid, to `peer_user`'s
/// channel through the bridge (see connection_actor.cpp, "Direct relays").
using route_atom = caf::atom_constant<caf::atom("route")>;
/// To a connection: (relay, frame, read_at_ns) from its call actor, or
/// (relay, session_id, frame, read_at_ns) straight from the peer's
/// connection (dropped unless this connection is in that call).
/// To a call actor: (relay, user_id, frame, read_at_ns): a webrtc.* frame
/// from `user_id` for the peer.
using relay_atom = caf::atom_constant<caf::atom("relay")>;
/// (status) -> string: an actor's JSON row for the admin API (connection
/// and call actors).
using status_atom = caf::atom_constant<caf::atom("status")>;

// -- To the Redis bridge (actors/redis_bridge.cpp, actors/bridge/) -----------
/// (eval, script_call) -> redis::reply: runs a script with EVALSHA,
/// sending its text on NOSCRIPT. Always answered: Redis errors, no
/// connection and redis::command_timeout all come back as an error reply.
using eval_atom = caf::atom_constant<caf::atom("eval")>;
/// (command, argv) -> redis::reply: one plain command, answered likewise.
using command_atom = caf::atom_constant<caf::atom("command")>;
/// (register, user_id, owner_token, conn) -> vector<string> | error:
/// subscribes the user's channel, then claims the ws:user key; answers the
/// claim_user script's reply as strings (the previous owner token, "" if
/// none, then the call to resume, if any) and tells a replaced connection,
/// local or remote, to close. The connection is monitored: when it ends its
/// key is released (owner-checked) and its channel unsubscribed.
using register_atom = caf::atom_constant<caf::atom("register")>;
/// (deliver, user_id, tagged payload, call hint): to the user's local
/// connection if there is one, else PUBLISH on ws:signal:{user_id}.
using deliver_atom = caf::atom_constant<caf::atom("deliver")>;
/// (publish, user_id, tagged payload, read_at_ns): a relay to a peer on
/// another instance: one PUBLISH, nothing else.
using publish_atom = caf::atom_constant<caf::atom("publish")>;
/// (open_call, call_setup, user_id, conn) -> actor: the instance's call
/// actor for a session, joined by `conn`, spawned if there is none.
using open_call_atom = caf::atom_constant<caf::atom("opencall")>;
/// (admin, method, target) -> (uint16_t status, string json): the admin API.
using admin_atom = caf::atom_constant<caf::atom("admin")>;
/// (leave) -> bool: removes this instance's heartbeat on shutdown.
using leave_atom = caf::atom_constant<caf::atom("leave")>;
// The bridge's own, from the Redis I/O strands and its timers:
/// (reply, command id, redis::reply): a command's reply (command_runner).
using reply_atom = caf::atom_constant<caf::atom("reply")>;
/// (pubsub, channel, payload): a message on a subscribed channel.
using pubsub_atom = caf::atom_constant<caf::atom("pubsub")>;
/// (subscribed, user_id, ok): the user's channel SUBSCRIBE was confirmed.
using subscribed_atom = caf::atom_constant<caf::atom("subscribed")>;
/// (link_up, is_subscriber, moved): a Redis path is up (again, or, when
/// `moved`, on a new master after a failover).
using link_up_atom = caf::atom_constant<caf::atom("linkup")>;
/// (refresh), (heartbeat): the presence timers.
using refresh_atom = caf::atom_constant<caf::atom("refresh")>;
using heartbeat_atom = caf::atom_constant<caf::atom("heartbeat")>;
/// (probe): the probe timer; (probe, true): the subscription is confirmed,
/// probe at once.
using probe_atom = caf::atom_constant<caf::atom("probe")>;
/// (sweep): fail the Redis commands that waited longer than
/// redis::command_timeout.
using sweep_atom = caf::atom_constant<caf::atom("sweep")>;

// -- To a call actor (actors/call_actor.cpp) ---------------------------------
// It also takes (relay, ...), (status) and (shutdown) above.
/// (start) -> unit | error: from the caller's connection, once (starting).
using start_atom = caf::atom_constant<caf::atom("start")>;
/// (accept, user_id, callee_info_json) -> unit | error.
using accept_atom = caf::atom_constant<caf::atom("accept")>;
/// (reject, user_id) -> unit | error.
using reject_atom = caf::atom_constant<caf::atom("reject")>;
/// (end, user_id) -> unit | error: hang up or cancel.
using end_atom = caf::atom_constant<caf::atom("end")>;
/// (join, user_id, conn, info_json): a local participant's connection.
using join_atom = caf::atom_constant<caf::atom("join")>;
/// (remote, event type as uint8_t, reason, info_json): a state change made
/// on the peer's instance, read from pub/sub by a local connection.
using remote_atom = caf::atom_constant<caf::atom("remote")>;
/// (ring_timeout): its own timer: the callee did not answer in time.
using ring_timeout_atom = caf::atom_constant<caf::atom("ringtmo")>;
/// (grace_end, user_id): RECONNECT_GRACE is up for a participant who went
/// without hanging up; check whether they came back.
using grace_end_atom = caf::atom_constant<caf::atom("graceend")>;
/// (check): run call_check now (periodic, and after Redis came back).
using check_atom = caf::atom_constant<caf::atom("check")>;
/// (restore): commands go to a new master (a failover): write back the
/// call's keys where that master lacks them (call_restore), then check.
using restore_atom = caf::atom_constant<caf::atom("restore")>;
/// (flush) -> bool: answered once every relay the sender sent it before is
/// forwarded.
using flush_atom = caf::atom_constant<caf::atom("flush")>;

/// The error a client sees: code plus a sentence.
inline caf::error signal_failure(protocol::signal_error code, std::string message) {
  return caf::make_error(code, std::move(message));
}

/// True when a down message says the participant may come back.
inline bool is_away(const caf::error& reason) {
  return reason.category() == caf::atom("departure")
         && reason.code() == static_cast<uint8_t>(departure::away);
}

/// Reads back a `signal_failure`; any other error becomes internal_error.
inline std::pair<protocol::signal_error, std::string> read_failure(const caf::error& err) {
  if (err.category() == caf::atom("goring")) {
    std::string text;
    if (err.context().match_elements<std::string>())
      text = err.context().get_as<std::string>(0);
    return {static_cast<protocol::signal_error>(err.code()), text};
  }
  return {protocol::signal_error::internal_error, "internal error: " + caf::to_string(err)};
}

} // namespace goring
