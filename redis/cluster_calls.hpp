/// The call transitions on a Redis Cluster, where a script may touch the
/// keys of one hash slot only: each transition whose keys span slots runs
/// as single-slot steps in a fixed order, with compensation when a later
/// step fails, and answers exactly what its one script answers elsewhere,
/// so the actors never learn the difference. The steps, their order and
/// the races each prevents: docs/redis-cluster.md and the headers of
/// redis/scripts/{session_open,session_commit,session_abandon,user_reserve,
/// user_call_follow}.lua.
#pragma once

#include <functional>

#include "redis/reply.hpp"
#include "redis/scripts.hpp"

namespace goring::redis {

class command_runner;

namespace cluster_calls {

/// A call_start that has not committed after this long counts as dead
/// (its instance died between two steps): whatever it reserved may be
/// taken. Far longer than a start's steps take, far shorter than a
/// session's TTL.
inline constexpr millis pending_timeout{10'000};

/// The scripts that run in steps (or with their keys renamed to the
/// Cluster layout) here; the others (heartbeat, server_leave and the steps
/// themselves) run as they are.
bool runs_in_steps(script id);

/// Runs `call`, built by scripts.hpp in the reference layout, as steps
/// through `runner` (its run_script and send); `k` runs once, in the
/// runner's context, with a reply of the shape `call`'s script answers. An
/// error reply of any step that decides is the answer; the follow-ups
/// (extend or clear a user's call key) never fail a transition that was
/// decided.
void run(command_runner& runner, script_call call, std::function<void(reply)> k);

} // namespace cluster_calls

} // namespace goring::redis
