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
/// Its messages: actors/atoms.hpp, "To a call actor".
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
  /// When an offline ring ends (Unix ms, the session's ring_expires_at),
  /// for a caller who takes it up again after a reconnect: the ring timer
  /// fires then, not RING_TIMEOUT later. 0: not an offline ring.
  long long ring_expires_at = 0;
};

/// Spawns a call actor; `local_user` with `conn` is its first local
/// participant. A "starting" actor waits for (start).
caf::actor spawn_call_actor(caf::actor_system& sys, context_ptr ctx, call_setup setup,
                            const std::string& local_user, const caf::actor& conn);

} // namespace goring
