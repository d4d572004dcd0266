#include "tools/bench/thread_stats.hpp"

namespace goring::bench {

void thread_stats::merge(const thread_stats& other) {
  upgrade.merge(other.upgrade);
  start_to_ringing.merge(other.start_to_ringing);
  start_to_ring.merge(other.start_to_ring);
  accept_to_accepted.merge(other.accept_to_accepted);
  end_to_ended.merge(other.end_to_ended);
  cycle.merge(other.cycle);
  round_trip.merge(other.round_trip);
  cycles_completed += other.cycles_completed;
  cycles_failed += other.cycles_failed;
  retries += other.retries;
  timeouts += other.timeouts;
  skipped += other.skipped;
  messages += other.messages;
  stray_frames += other.stray_frames;
  for (const auto& [kind, n] : other.errors)
    errors[kind] += n;
}

} // namespace goring::bench
