/// Latency histogram with log-linear buckets: mergeable across threads,
/// constant memory, percentiles within 0.4% of the recorded values.
#pragma once

#include <chrono>
#include <cstdint>
#include <vector>

namespace goring::bench {

/// Records durations in nanoseconds. Every power of two is split into 128
/// buckets, so a bucket is at most 1/128 of its value wide and the midpoint
/// reported for a percentile is off by at most half of that.
class histogram {
public:
  histogram();

  void record(std::chrono::nanoseconds value);
  /// Adds every sample of `other`.
  void merge(const histogram& other);

  uint64_t count() const {
    return count_;
  }
  /// Nanoseconds; 0 when empty.
  uint64_t min() const {
    return count_ == 0 ? 0 : min_;
  }
  uint64_t max() const {
    return max_;
  }
  double mean() const;
  /// The value below which `fraction` (0..1) of the samples lie, in
  /// nanoseconds; 0 when empty.
  double percentile(double fraction) const;

private:
  std::vector<uint64_t> buckets_;
  uint64_t count_ = 0;
  uint64_t min_ = UINT64_MAX;
  uint64_t max_ = 0;
  long double sum_ = 0;
};

} // namespace goring::bench
