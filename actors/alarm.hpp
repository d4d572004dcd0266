/// Timers that do not keep their actors alive.
///
/// CAF 0.17's delayed_send holds a strong reference to the receiver until
/// the message is due: a connection that armed its token-expiry timer (up to
/// 24 h ahead) and then closed stayed in memory, actor and mailbox, until
/// that moment. The alarm actor holds receivers by weak address instead,
/// delivers a due message only to an actor that still runs, and forgets an
/// actor's alarms when it quits: what is pending is bounded by what is live.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>

#include <caf/fwd.hpp>

namespace goring::alarm {

/// Spawns the instance's alarm actor; it keeps `pending` at the number of
/// alarms it holds (read by the metrics scrape).
caf::actor spawn(caf::actor_system& sys, std::shared_ptr<std::atomic<std::size_t>> pending);

/// Sends `msg` to `self` after `delay`, unless `self` quits first. An alarm
/// `self` set before under the same `slot` is replaced.
void set(const caf::actor& alarm, caf::local_actor* self, caf::atom_value slot,
         std::chrono::milliseconds delay, caf::message msg);

/// Drops every alarm of `self` when it terminates; call once, at its start.
void clear_on_exit(const caf::actor& alarm, caf::local_actor* self);

} // namespace goring::alarm
