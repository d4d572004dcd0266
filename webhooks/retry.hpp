/// When a failed webhook is tried again: exponential backoff with jitter,
/// the first retry within a second, none later than 30 s after the one
/// before, until the event is older than WEBHOOK_MAX_AGE. Pure.
#pragma once

#include <chrono>

namespace goring::webhooks {

/// The wait before retry number `retry` (1 for the first retry):
/// min(30 s, 1 s * 2^(retry-1)), of which a random part is taken away
/// ("equal jitter": between half of it and all of it). `unit` is a random
/// number in [0, 1), passed in so tests can choose it.
std::chrono::milliseconds retry_delay(unsigned retry, double unit);

/// The longest wait retry_delay gives.
inline constexpr std::chrono::milliseconds max_retry_delay{30'000};

/// Whether an event made at `created_ms` (Unix ms) that would next be tried
/// at `next_ms` is past `max_age` by then: dropped instead.
inline bool expired(long long created_ms, long long next_ms, std::chrono::milliseconds max_age) {
  return next_ms - created_ms > max_age.count();
}

} // namespace goring::webhooks
