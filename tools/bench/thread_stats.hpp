/// What one client thread measured; merged into the report once every
/// thread has stopped.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "tools/bench/histogram.hpp"

namespace goring::bench {

struct thread_stats {
  /// TCP connect to the server's 101 response.
  histogram upgrade;
  /// call.start sent to the caller's call.ringing.
  histogram start_to_ringing;
  /// call.start sent to the callee's call.ring.
  histogram start_to_ring;
  /// call.accept sent to the caller's call.accepted.
  histogram accept_to_accepted;
  /// call.end sent to the callee's call.ended.
  histogram end_to_ended;
  /// call.start sent to the callee's call.ended.
  histogram cycle;
  /// A webrtc.ice frame sent to its echo coming back.
  histogram round_trip;

  uint64_t cycles_completed = 0;
  uint64_t cycles_failed = 0;
  /// call.start sent again after user_offline, user_busy or invalid_state.
  uint64_t retries = 0;
  uint64_t timeouts = 0;
  /// Open loop: ticks that found every pair of the thread busy.
  uint64_t skipped = 0;
  /// webrtc.ice frames (or bare frames) received within the measured window.
  uint64_t messages = 0;
  /// Frames that belong to no step the bench waits for.
  uint64_t stray_frames = 0;

  /// What went wrong, by kind ("connect: Connection refused",
  /// "error: user_busy", "closed: 1013"), with how often.
  std::map<std::string, uint64_t> errors;

  void merge(const thread_stats& other);
};

} // namespace goring::bench
