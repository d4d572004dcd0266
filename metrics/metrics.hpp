/// goring's own Prometheus client: counters, gauges and histograms, exposed in text format 0.0.4.
#pragma once

// Included by many files: standard headers only, no Boost, no CAF.
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace goring::metrics {

/// What a family is, as the `# TYPE` line says it.
enum class metric_type { counter, gauge, histogram };

/// The Content-Type of `registry::expose()`'s text.
inline constexpr std::string_view content_type = "text/plain; version=0.0.4; charset=utf-8";

namespace detail {

/// Hot-path updates are spread over this many slots so that threads rarely share a cache line.
inline constexpr std::size_t shard_count = 16;

/// The size of a slot; 64 bytes on the x86-64 and arm64 machines goring runs on.
inline constexpr std::size_t cache_line_size = 64;

/// Hands out shard indexes round-robin; called once per thread.
std::size_t next_shard() noexcept;

/// The calling thread's shard, fixed on its first update.
inline std::size_t shard_index() noexcept {
  static thread_local const std::size_t index = next_shard();
  return index;
}

/// Adds to an atomic double; `fetch_add` on doubles is C++20.
inline void add(std::atomic<double>& target, double delta) noexcept {
  double current = target.load(std::memory_order_relaxed);
  while (!target.compare_exchange_weak(current, current + delta, std::memory_order_relaxed)) {
    // nop: `current` now holds the value another thread wrote
  }
}

static_assert(std::atomic<double>::is_always_lock_free
                && std::atomic<std::uint64_t>::is_always_lock_free,
              "metric updates must not take a lock");

} // namespace detail

/// A value that only goes up. Updates are lock-free; keep the reference `family::with` returns.
class counter {
public:
  counter() = default;
  counter(const counter&) = delete;
  counter& operator=(const counter&) = delete;

  /// Adds `amount`. A negative or NaN amount is ignored: a counter never goes down.
  void inc(double amount = 1) noexcept;

  /// The sum over all shards, read without stopping writers.
  double value() const noexcept;

private:
  // Whole amounts, nearly all of goring's, take one fetch_add; others a CAS loop.
  struct alignas(detail::cache_line_size) shard {
    std::atomic<std::uint64_t> whole{0};
    std::atomic<double> rest{0.0};
  };
  std::array<shard, detail::shard_count> shards_;
};

/// A value that goes up and down. Updates are lock-free.
class gauge {
public:
  gauge() = default;
  gauge(const gauge&) = delete;
  gauge& operator=(const gauge&) = delete;

  void inc(double amount = 1) noexcept;
  void dec(double amount = 1) noexcept;

  /// Replaces the value. An inc() racing with set() lands either before it (and is
  /// overwritten) or after it (and is kept); it is never counted twice.
  void set(double value) noexcept;

  /// The base plus every shard's delta, read without stopping writers.
  double value() const noexcept;

private:
  struct alignas(detail::cache_line_size) shard {
    std::atomic<double> delta{0.0};
  };
  std::array<shard, detail::shard_count> shards_;
  alignas(detail::cache_line_size) std::atomic<double> base_{0.0};
};

/// Observations counted in fixed buckets, plus their sum and count. Updates are lock-free.
class histogram {
public:
  /// `bounds` are the buckets' upper bounds, finite and strictly increasing (checked by the
  /// registry); the `+Inf` bucket is implicit.
  explicit histogram(std::vector<double> bounds);
  histogram(const histogram&) = delete;
  histogram& operator=(const histogram&) = delete;

  /// Counts `value` in the first bucket whose bound is >= value (NaN goes to `+Inf`).
  void observe(double value) noexcept;

  /// A scrape's view: cumulative counts per bound then `+Inf`, so `cumulative.back() == count`.
  struct snapshot {
    std::vector<std::uint64_t> cumulative;
    double sum = 0;
    std::uint64_t count = 0;
  };
  snapshot collect() const;

  const std::vector<double>& bounds() const noexcept {
    return bounds_;
  }

private:
  // Each shard owns whole cache lines: word 0 is the sum (a double's bits), then one
  // non-cumulative count per bucket, `+Inf` last.
  struct alignas(detail::cache_line_size) line {
    std::array<std::atomic<std::uint64_t>, detail::cache_line_size / 8> words;
  };
  std::atomic<std::uint64_t>& word(std::size_t shard, std::size_t index) const noexcept;

  std::vector<double> bounds_;
  std::size_t lines_per_shard_;
  std::unique_ptr<line[]> lines_;
};

namespace detail {

/// What every family has; the registry keeps families by name and writes them in turn.
class family_base {
public:
  family_base(std::string name, std::string help, metric_type type,
              std::vector<std::string> label_names);
  virtual ~family_base();
  family_base(const family_base&) = delete;
  family_base& operator=(const family_base&) = delete;

  const std::string& name() const noexcept {
    return name_;
  }
  const std::string& help() const noexcept {
    return help_;
  }
  metric_type type() const noexcept {
    return type_;
  }
  const std::vector<std::string>& label_names() const noexcept {
    return label_names_;
  }

  /// Appends `# HELP`, `# TYPE` and the samples; nothing at all when there is no sample.
  void write(std::string& out) const;

protected:
  /// Appends one line per sample.
  virtual void write_samples(std::string& out) const = 0;

private:
  std::string name_;
  std::string help_;
  metric_type type_;
  std::vector<std::string> label_names_;
};

} // namespace detail

class registry;

/// The children of one metric name, one per tuple of label values.
template <class Metric>
class family final : public detail::family_base {
public:
  /// The child for these label values (one per label name, in order), created on first use.
  /// The reference stays valid as long as the registry: look it up once, keep it, update it
  /// on the hot path. Throws std::invalid_argument on a wrong number of values.
  Metric& with(const std::vector<std::string>& label_values = {});

  /// The bucket bounds of a histogram family; empty for the other types.
  const std::vector<double>& bounds() const noexcept {
    return bounds_;
  }

private:
  friend class registry;
  family(std::string name, std::string help, std::vector<std::string> label_names,
         std::vector<double> bounds);

  void write_samples(std::string& out) const override;

  std::vector<double> bounds_;
  mutable std::mutex mutex_; // guards children_ only: taken on lookup and scrape, never on update
  std::map<std::vector<std::string>, std::unique_ptr<Metric>> children_;
};

extern template class family<counter>;
extern template class family<gauge>;
extern template class family<histogram>;

using counter_family = family<counter>;
using gauge_family = family<gauge>;
using histogram_family = family<histogram>;

/// One sample of a labelled callback: label values in the order of the family's label names.
struct labelled_value {
  std::vector<std::string> label_values;
  double value = 0;
};

/// Bounds for durations in seconds, 100 µs to 10 s, in 1-2.5-5 steps.
std::vector<double> default_seconds_buckets();

/// `count` bounds: start, start * factor, start * factor², ... Throws std::invalid_argument
/// unless start > 0, factor > 1 and count >= 1.
std::vector<double> exponential_buckets(double start, double factor, std::size_t count);

/// A sample value as Prometheus spells it: integers without exponent, `+Inf`, `-Inf`, `NaN`,
/// other numbers in their shortest exact form.
std::string format_value(double value);

/// Every metric family of a process (or of a test), and their exposition.
///
/// Registration validates names and throws std::invalid_argument: metric names must match
/// `[a-zA-Z_:][a-zA-Z0-9_:]*`, label names `[a-zA-Z_][a-zA-Z0-9_]*` and not start with `__`;
/// help must not be empty; a counter's name ends in `_total` and no other type's does; only a
/// histogram's name ends in `_bucket`, `_sum` or `_count`, and a histogram has no `le` label;
/// no two families may produce the same sample name. Registering a family again with the same
/// type, label names (and bounds) returns the existing one; anything else under that name throws.
class registry {
public:
  registry();
  ~registry();
  registry(const registry&) = delete;
  registry& operator=(const registry&) = delete;

  counter_family& counter(std::string name, std::string help,
                          std::vector<std::string> label_names = {});

  gauge_family& gauge(std::string name, std::string help,
                      std::vector<std::string> label_names = {});

  /// `bounds` may end in +Inf, which is implied anyway; NaN or unordered bounds throw.
  histogram_family& histogram(std::string name, std::string help,
                              std::vector<std::string> label_names = {},
                              std::vector<double> bounds = default_seconds_buckets());

  /// A gauge read at scrape time, e.g. a size kept elsewhere. `read` runs on the scraping
  /// thread without the registry's lock; an exception from it propagates out of expose().
  /// A callback family cannot be registered twice.
  void gauge_callback(std::string name, std::string help, std::function<double()> read);

  /// A labelled gauge read at scrape time: `read` returns one value per label tuple, each
  /// tuple at most once. A tuple with the wrong number of values makes expose() throw
  /// std::logic_error.
  void gauge_callback(std::string name, std::string help, std::vector<std::string> label_names,
                      std::function<std::vector<labelled_value>()> read);

  /// A counter read at scrape time, e.g. CPU time; `read` must never go down.
  void counter_callback(std::string name, std::string help, std::function<double()> read);

  /// The text exposition format 0.0.4, families sorted by name; a family without any sample
  /// (a labelled family nobody used yet) is left out.
  std::string expose() const;

private:
  template <class Metric>
  family<Metric>& add(std::string name, std::string help, metric_type type,
                      std::vector<std::string> label_names, std::vector<double> bounds);
  void add_callback(std::unique_ptr<detail::family_base> callback);
  void check_unique_samples(const detail::family_base& candidate) const; // with mutex_ held

  mutable std::mutex mutex_; // guards families_; families are never removed
  std::map<std::string, std::unique_ptr<detail::family_base>> families_;
};

/// Registers the Linux process metrics as Prometheus client libraries name them:
/// process_cpu_seconds_total, process_resident_memory_bytes, process_virtual_memory_bytes,
/// process_open_fds, process_max_fds, process_start_time_seconds. Read from /proc at scrape
/// time; a value that cannot be read is NaN. Does nothing on other systems.
void register_process_metrics(registry& target);

/// The server's registry, created with the process metrics on first use.
registry& global();

// -- inline hot path ----------------------------------------------------------------------------

inline void counter::inc(double amount) noexcept {
  if (!(amount >= 0))
    return;
  auto& slot = shards_[detail::shard_index()];
  if (amount < 0x1p63) {
    auto whole = static_cast<std::uint64_t>(amount);
    if (static_cast<double>(whole) == amount) {
      slot.whole.fetch_add(whole, std::memory_order_relaxed);
      return;
    }
  }
  detail::add(slot.rest, amount);
}

inline void gauge::inc(double amount) noexcept {
  detail::add(shards_[detail::shard_index()].delta, amount);
}

inline void gauge::dec(double amount) noexcept {
  detail::add(shards_[detail::shard_index()].delta, -amount);
}

} // namespace goring::metrics
