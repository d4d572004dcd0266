/// A token bucket: `rate` tokens a second up to `burst`. Pure code, no
/// locks, no allocation: one per connection on the frame path, one per IP
/// in the admission table.
#pragma once

#include <algorithm>
#include <cstdint>

namespace goring {

struct token_bucket {
  double tokens = 0;
  int64_t refilled_ns = 0;

  /// A bucket that starts full at `now_ns`.
  static token_bucket full(double burst, int64_t now_ns) {
    return token_bucket{burst, now_ns};
  }

  /// Adds what `rate` earned since the last refill, capped at `burst`.
  void refill(double rate, double burst, int64_t now_ns) {
    if (now_ns > refilled_ns) {
      tokens = std::min(burst, tokens + rate * static_cast<double>(now_ns - refilled_ns) / 1e9);
      refilled_ns = now_ns;
    }
  }

  /// Takes one token when there is one.
  bool take(double rate, double burst, int64_t now_ns) {
    refill(rate, burst, now_ns);
    if (tokens < 1)
      return false;
    tokens -= 1;
    return true;
  }

  /// Whether the bucket would be full at `now_ns`.
  bool is_full(double rate, double burst, int64_t now_ns) const {
    auto earned = rate * static_cast<double>(std::max<int64_t>(0, now_ns - refilled_ns)) / 1e9;
    return tokens + earned >= burst;
  }
};

} // namespace goring
