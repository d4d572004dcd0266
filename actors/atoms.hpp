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

/// How long the bridge waits for Redis to answer a command before it fails
/// it with an error reply (the connection may be up but stuck).
inline constexpr auto redis_command_timeout = std::chrono::seconds(5);

/// The timeout of requests between goring's actors: none. Every request
/// gets an answer without one: the bridge fails Redis commands itself after
/// redis_command_timeout, and an actor that ends answers the requests still
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

// From a WebSocket session to its connection actor.
using text_atom = caf::atom_constant<caf::atom("text")>;
using binary_atom = caf::atom_constant<caf::atom("binary")>;
using closed_atom = caf::atom_constant<caf::atom("closed")>;

// To a connection actor.
/// (signal, tagged payload, call hint): a pub/sub payload for this user, or
/// an event from a local call actor (the hint).
using signal_atom = caf::atom_constant<caf::atom("signal")>;
/// (write, frame): write a frame to the client as it is.
using write_atom = caf::atom_constant<caf::atom("write")>;
using replaced_atom = caf::atom_constant<caf::atom("replaced")>;
using shutdown_atom = caf::atom_constant<caf::atom("shutdown")>;
/// (token_expired, generation): the token's lifetime is up, unless a
/// refresh since (a newer generation) moved it.
using token_expired_atom = caf::atom_constant<caf::atom("tokexpired")>;
/// (ice_refresh): time to send fresh TURN credentials (ice.servers).
using ice_refresh_atom = caf::atom_constant<caf::atom("icerefresh")>;

// To the Redis bridge.
using eval_atom = caf::atom_constant<caf::atom("eval")>;
using command_atom = caf::atom_constant<caf::atom("command")>;
using register_atom = caf::atom_constant<caf::atom("register")>;
using unregister_atom = caf::atom_constant<caf::atom("unregister")>;
using deliver_atom = caf::atom_constant<caf::atom("deliver")>;
using publish_atom = caf::atom_constant<caf::atom("publish")>;
// The bridge's own, from the Redis I/O thread.
using reply_atom = caf::atom_constant<caf::atom("reply")>;
using pubsub_atom = caf::atom_constant<caf::atom("pubsub")>;
using subscribed_atom = caf::atom_constant<caf::atom("subscribed")>;
using link_up_atom = caf::atom_constant<caf::atom("linkup")>;
using refresh_atom = caf::atom_constant<caf::atom("refresh")>;
using heartbeat_atom = caf::atom_constant<caf::atom("heartbeat")>;
using probe_atom = caf::atom_constant<caf::atom("probe")>;
/// (sweep): fail the Redis commands that waited too long (see
/// redis_command_timeout).
using sweep_atom = caf::atom_constant<caf::atom("sweep")>;
/// (open_call, call_setup, user_id, conn) -> actor: the instance's call
/// actor for a session, joined by `conn`, spawned if there is none.
using open_call_atom = caf::atom_constant<caf::atom("opencall")>;
/// (admin, method, target) -> (status, json): the admin API.
using admin_atom = caf::atom_constant<caf::atom("admin")>;
/// (status) -> json: an actor's row for the admin API.
using status_atom = caf::atom_constant<caf::atom("status")>;
/// (route, session_id, peer_conn, peer_user): from the call actor of an
/// accepted call to a participant that relayed through it, and again when
/// the peer's connection changes: relays of that session may skip the call
/// actor, straight to `peer_conn` or, when
/// it is invalid, to `peer_user`'s channel through the bridge (see
/// connection_actor.cpp, "Direct relays").
using route_atom = caf::atom_constant<caf::atom("route")>;
/// (flush) -> bool: to a call actor; answered once every relay the sender
/// sent it before is forwarded.
using flush_atom = caf::atom_constant<caf::atom("flush")>;
/// (kick): an operator closes this connection (4002).
using kick_atom = caf::atom_constant<caf::atom("kick")>;
/// (leave) -> bool: removes this instance's heartbeat on shutdown.
using leave_atom = caf::atom_constant<caf::atom("leave")>;
using script_loaded_atom = caf::atom_constant<caf::atom("loaded")>;

// To a call actor.
using start_atom = caf::atom_constant<caf::atom("start")>;
using accept_atom = caf::atom_constant<caf::atom("accept")>;
using reject_atom = caf::atom_constant<caf::atom("reject")>;
using end_atom = caf::atom_constant<caf::atom("end")>;
using relay_atom = caf::atom_constant<caf::atom("relay")>;
using join_atom = caf::atom_constant<caf::atom("join")>;
using remote_atom = caf::atom_constant<caf::atom("remote")>;
using ring_timeout_atom = caf::atom_constant<caf::atom("ringtmo")>;
/// (grace_end, user_id): RECONNECT_GRACE is up for a participant who went
/// without hanging up; check whether they came back.
using grace_end_atom = caf::atom_constant<caf::atom("graceend")>;
/// (check): run call_check now (periodic, and after Redis came back).
using check_atom = caf::atom_constant<caf::atom("check")>;

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
