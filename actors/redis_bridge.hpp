/// The Redis bridge actor: owns this instance's Redis topology (a command
/// path and a subscriber path, redis/topology.hpp) and does, each in its
/// own file under actors/bridge/: the command transport with the script
/// cache and timeouts (redis/command_runner.hpp), the registry of local
/// users with the pub/sub fan-out to their connection actors, the call
/// directory, presence and heartbeat, the pub/sub probe, and the admin API
/// router. Its messages: actors/atoms.hpp, "To the Redis bridge".
#pragma once

#include <caf/fwd.hpp>

#include "actors/context.hpp"

namespace boost::asio {
class io_context;
} // namespace boost::asio

namespace goring {

caf::actor spawn_redis_bridge(caf::actor_system& sys, context_ptr ctx, boost::asio::io_context& io);

} // namespace goring
