/// The connection actor: one per WebSocket. It checks every client frame,
/// routes call operations to call actors, relays to the peer through the
/// call actor, and writes events back through its session.
/// Its messages: actors/atoms.hpp, "To a connection actor".
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
