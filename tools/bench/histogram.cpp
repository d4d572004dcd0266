#include "tools/bench/histogram.hpp"

#include <algorithm>
#include <cmath>

namespace goring::bench {

namespace {

/// Sub-buckets per power of two: 2^7.
constexpr unsigned sub_bits = 7;
constexpr uint64_t sub_count = uint64_t{1} << sub_bits;
/// Values below sub_count have a bucket each; above, 128 per power of two
/// up to 2^63.
constexpr std::size_t bucket_count = sub_count + (64 - sub_bits) * sub_count;

std::size_t bucket_of(uint64_t v) {
  if (v < sub_count)
    return static_cast<std::size_t>(v);
  unsigned exponent = 63 - static_cast<unsigned>(__builtin_clzll(v));
  unsigned shift = exponent - sub_bits;
  uint64_t sub = (v >> shift) & (sub_count - 1);
  return static_cast<std::size_t>(sub_count + shift * sub_count + sub);
}

/// The middle of bucket `i`, in nanoseconds.
double midpoint_of(std::size_t i) {
  if (i < sub_count)
    return static_cast<double>(i);
  auto shift = (i - sub_count) / sub_count;
  auto sub = (i - sub_count) % sub_count;
  double low = std::ldexp(static_cast<double>(sub_count + sub), static_cast<int>(shift));
  double width = std::ldexp(1.0, static_cast<int>(shift));
  return low + width / 2;
}

} // namespace

histogram::histogram() : buckets_(bucket_count, 0) {
  // nop
}

void histogram::record(std::chrono::nanoseconds value) {
  auto v = static_cast<uint64_t>(std::max<int64_t>(value.count(), 0));
  ++buckets_[bucket_of(v)];
  ++count_;
  min_ = std::min(min_, v);
  max_ = std::max(max_, v);
  sum_ += v;
}

void histogram::merge(const histogram& other) {
  for (std::size_t i = 0; i < buckets_.size(); ++i)
    buckets_[i] += other.buckets_[i];
  count_ += other.count_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
  sum_ += other.sum_;
}

double histogram::mean() const {
  return count_ == 0 ? 0.0 : static_cast<double>(sum_ / count_);
}

double histogram::percentile(double fraction) const {
  if (count_ == 0)
    return 0;
  // The rank of the sample asked for, 1-based: p99 of 100 samples is the
  // 99th, of 1 sample the only one.
  auto rank = static_cast<uint64_t>(std::ceil(std::clamp(fraction, 0.0, 1.0) * count_));
  rank = std::clamp<uint64_t>(rank, 1, count_);
  uint64_t seen = 0;
  for (std::size_t i = 0; i < buckets_.size(); ++i) {
    seen += buckets_[i];
    if (seen >= rank)
      return std::clamp(midpoint_of(i), static_cast<double>(min()), static_cast<double>(max_));
  }
  return static_cast<double>(max_);
}

} // namespace goring::bench
