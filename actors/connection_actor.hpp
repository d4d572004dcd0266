/// The connection actor: one per WebSocket. It checks every client frame,
/// routes call operations to call actors, relays to the peer through the
/// call actor, and writes events back through its session.
///
/// Messages it takes (see actors/atoms.hpp):
/// - (text, frame), (binary), (closed): from its WebSocket session.
/// - (signal, tagged_payload, call_hint): a pub/sub payload for this user
///   or an event from a local call actor.
/// - (write, frame): a frame to write as it is.
/// - (replaced), (shutdown): close with 4000 or 1001 and quit.
/// - (ice_refresh): its own timer; sends ice.servers with fresh TURN
///   credentials (the first one goes out when the actor starts).
#pragma once

#include <memory>

#include <caf/fwd.hpp>

#include "actors/context.hpp"
#include "auth/jwt_auth.hpp"
#include "net/link.hpp"

namespace goring {

/// Spawns the actor for an accepted WebSocket and returns what the session
/// reports frames to.
std::shared_ptr<connection_port> spawn_connection_actor(caf::actor_system& sys, context_ptr ctx,
                                                        std::weak_ptr<client_link> link,
                                                        const auth::claims& who,
                                                        const std::string& remote_addr);

} // namespace goring
