/// The call actor: one per call session on each instance that holds a
/// participant. It serializes the session's state changes (each one Lua
/// script), owns the ring timer and the TTL refresh, and caches who takes
/// part and in which state, so a relayed webrtc.* message costs no Redis
/// read: nothing when both users are here, one PUBLISH when the peer is not.
///
/// State machine: starting -> ringing -> accepted -> (over); ringing ->
/// (over) on reject, cancel, timeout or disconnect. Each state is a
/// behaviour; the actor quits when the call is over.
///
/// Messages it takes (see actors/atoms.hpp):
/// - (start) -> unit | error: from the caller's connection, once (starting).
/// - (join, user_id, conn, info_json): a local participant's connection.
/// - (accept, user_id, callee_info_json), (reject, user_id), (end, user_id)
///   -> unit | error.
/// - (relay, user_id, frame): a webrtc.* frame for the peer.
/// - (remote, event_type, reason, info_json): a state change made on the
///   peer's instance, read from pub/sub by a local connection.
/// - (grace_end, user_id): its own alarm, RECONNECT_GRACE after a local
///   participant's connection went without hanging up.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <caf/fwd.hpp>

#include "actors/context.hpp"
#include "codec/protocol.hpp"

namespace goring {

/// The phase a call actor is in: a new call waits for (start); one
/// joined or adopted from Redis starts ringing or accepted.
enum class call_phase : uint8_t { starting, ringing, accepted };

/// "starting", "ringing" or "accepted".
std::string_view phase_name(call_phase phase);

/// What a call actor is started from.
struct call_setup {
  std::string session_id;
  std::string caller_id;
  std::string callee_id;
  protocol::user_info caller_info; // may lack name/username
  protocol::user_info callee_info; // may lack name/username
  /// starting (a new call), ringing or accepted (joining or adopting a
  /// call another actor or instance created).
  call_phase state = call_phase::starting;
};

/// Spawns a call actor; `local_user` with `conn` is its first local
/// participant. A "starting" actor waits for (start).
caf::actor spawn_call_actor(caf::actor_system& sys, context_ptr ctx, call_setup setup,
                            const std::string& local_user, const caf::actor& conn);

} // namespace goring
