#include "metrics/metrics.hpp"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <type_traits>
#include <utility>

#ifdef __linux__
#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>
#endif

namespace goring::metrics {

namespace {

constexpr double inf = std::numeric_limits<double>::infinity();
constexpr double nan = std::numeric_limits<double>::quiet_NaN();

[[noreturn]] void refuse(const std::string& what) {
  throw std::invalid_argument("goring::metrics: " + what);
}

bool ends_with(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size()
         && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool is_name_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

bool valid_metric_name(std::string_view name) {
  if (name.empty() || !(is_name_start(name[0]) || name[0] == ':'))
    return false;
  for (char c : name)
    if (!(is_name_start(c) || is_digit(c) || c == ':'))
      return false;
  return true;
}

bool valid_label_name(std::string_view name) {
  if (name.empty() || !is_name_start(name[0]) || name.substr(0, 2) == "__")
    return false;
  for (char c : name)
    if (!(is_name_start(c) || is_digit(c)))
      return false;
  return true;
}

const char* type_name(metric_type type) {
  switch (type) {
    case metric_type::counter:
      return "counter";
    case metric_type::gauge:
      return "gauge";
    case metric_type::histogram:
      return "histogram";
  }
  return "untyped";
}

/// Everything registration refuses whatever the family's kind.
void check_family(const std::string& name, const std::string& help, metric_type type,
                  const std::vector<std::string>& label_names) {
  if (!valid_metric_name(name))
    refuse("invalid metric name '" + name + "'");
  if (help.empty())
    refuse(name + ": help text is empty");
  if (type == metric_type::counter && !ends_with(name, "_total"))
    refuse("counter '" + name + "' must end in _total");
  if (type != metric_type::counter && ends_with(name, "_total"))
    refuse(std::string(type_name(type)) + " '" + name + "' must not end in _total");
  // These suffixes are what a histogram's samples are called; on anything else they mislead
  // and can collide with a histogram's samples.
  if (type != metric_type::histogram) {
    for (auto suffix : {"_bucket", "_sum", "_count"})
      if (ends_with(name, suffix))
        refuse(std::string(type_name(type)) + " '" + name + "' must not end in " + suffix);
  }
  for (std::size_t i = 0; i < label_names.size(); ++i) {
    const auto& label = label_names[i];
    if (!valid_label_name(label))
      refuse(name + ": invalid label name '" + label + "'");
    if (type == metric_type::histogram && label == "le")
      refuse(name + ": a histogram cannot have an 'le' label");
    for (std::size_t j = 0; j < i; ++j)
      if (label_names[j] == label)
        refuse(name + ": label '" + label + "' given twice");
  }
}

/// Drops an explicit +Inf and refuses what cannot be a bucket bound.
std::vector<double> checked_bounds(const std::string& name, std::vector<double> bounds) {
  if (!bounds.empty() && bounds.back() == inf)
    bounds.pop_back();
  for (std::size_t i = 0; i < bounds.size(); ++i) {
    if (!std::isfinite(bounds[i]))
      refuse(name + ": bucket bounds must be finite, apart from a last +Inf");
    if (i > 0 && !(bounds[i - 1] < bounds[i]))
      refuse(name + ": bucket bounds must be strictly increasing");
  }
  return bounds;
}

/// The sample names a family writes, for collision checks.
std::vector<std::string> sample_names(const detail::family_base& family) {
  if (family.type() == metric_type::histogram)
    return {family.name() + "_bucket", family.name() + "_sum", family.name() + "_count"};
  return {family.name()};
}

void append_escaped(std::string& out, std::string_view text, bool in_quotes) {
  for (char c : text) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '"':
        out += in_quotes ? "\\\"" : "\"";
        break;
      default:
        out += c;
    }
  }
}

/// `{a="x",b="y"}`, with `le` last when given; nothing when there is no label at all.
void append_labels(std::string& out, const std::vector<std::string>& names,
                   const std::vector<std::string>& values, const std::string* le = nullptr) {
  if (names.empty() && le == nullptr)
    return;
  out += '{';
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i > 0)
      out += ',';
    out += names[i];
    out += "=\"";
    append_escaped(out, values[i], true);
    out += '"';
  }
  if (le != nullptr) {
    if (!names.empty())
      out += ',';
    out += "le=\"";
    out += *le;
    out += '"';
  }
  out += '}';
}

void append_sample(std::string& out, std::string_view name, const std::vector<std::string>& names,
                   const std::vector<std::string>& values, double value,
                   const std::string* le = nullptr) {
  out += name;
  append_labels(out, names, values, le);
  out += ' ';
  out += format_value(value);
  out += '\n';
}

double from_bits(std::uint64_t bits) {
  double value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

std::uint64_t to_bits(double value) {
  std::uint64_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  return bits;
}

/// A gauge or counter computed at scrape time.
class callback_family final : public detail::family_base {
public:
  callback_family(std::string name, std::string help, metric_type type,
                  std::vector<std::string> label_names,
                  std::function<std::vector<labelled_value>()> read)
    : family_base(std::move(name), std::move(help), type, std::move(label_names)),
      read_(std::move(read)) {
    // nop
  }

private:
  void write_samples(std::string& out) const override {
    for (const auto& sample : read_()) {
      if (sample.label_values.size() != label_names().size())
        throw std::logic_error("goring::metrics: callback of " + name() + " returned "
                               + std::to_string(sample.label_values.size()) + " label values for "
                               + std::to_string(label_names().size()) + " labels");
      append_sample(out, name(), label_names(), sample.label_values, sample.value);
    }
  }

  std::function<std::vector<labelled_value>()> read_;
};

/// An unlabelled callback as the labelled kind: one sample without labels.
std::function<std::vector<labelled_value>()> one_sample(std::function<double()> read) {
  return [read = std::move(read)] { return std::vector<labelled_value>{{{}, read()}}; };
}

} // namespace

// -- shards -------------------------------------------------------------------------------------

std::size_t detail::next_shard() noexcept {
  static std::atomic<std::size_t> next{0};
  return next.fetch_add(1, std::memory_order_relaxed) % shard_count;
}

// -- counter and gauge --------------------------------------------------------------------------

double counter::value() const noexcept {
  std::uint64_t whole = 0;
  double rest = 0;
  for (const auto& slot : shards_) {
    whole += slot.whole.load(std::memory_order_relaxed);
    rest += slot.rest.load(std::memory_order_relaxed);
  }
  return static_cast<double>(whole) + rest;
}

void gauge::set(double value) noexcept {
  // Clearing the deltas after the store makes each racing inc() land either before the
  // set (cleared) or after it (kept).
  base_.store(value, std::memory_order_relaxed);
  for (auto& slot : shards_)
    slot.delta.store(0.0, std::memory_order_relaxed);
}

double gauge::value() const noexcept {
  double sum = base_.load(std::memory_order_relaxed);
  for (const auto& slot : shards_)
    sum += slot.delta.load(std::memory_order_relaxed);
  return sum;
}

// -- histogram ----------------------------------------------------------------------------------

histogram::histogram(std::vector<double> bounds)
  : bounds_(std::move(bounds)),
    lines_per_shard_((bounds_.size() + 2 + std::tuple_size_v<decltype(line::words)> - 1)
                     / std::tuple_size_v<decltype(line::words)>),
    lines_(new line[detail::shard_count * lines_per_shard_]) {
  for (std::size_t i = 0; i < detail::shard_count * lines_per_shard_; ++i)
    for (auto& w : lines_[i].words)
      w.store(0, std::memory_order_relaxed);
}

std::atomic<std::uint64_t>& histogram::word(std::size_t shard, std::size_t index) const noexcept {
  constexpr std::size_t per_line = std::tuple_size_v<decltype(line::words)>;
  return lines_[shard * lines_per_shard_ + index / per_line].words[index % per_line];
}

void histogram::observe(double value) noexcept {
  // A linear scan: a few dozen bounds at most, and branch prediction learns the usual bucket.
  std::size_t bucket = 0;
  while (bucket < bounds_.size() && !(value <= bounds_[bucket]))
    ++bucket;
  auto shard = detail::shard_index();
  word(shard, 1 + bucket).fetch_add(1, std::memory_order_relaxed);
  auto& sum = word(shard, 0);
  auto bits = sum.load(std::memory_order_relaxed);
  while (
    !sum.compare_exchange_weak(bits, to_bits(from_bits(bits) + value), std::memory_order_relaxed)) {
    // nop: `bits` now holds the sum another thread wrote
  }
}

histogram::snapshot histogram::collect() const {
  snapshot result;
  result.cumulative.assign(bounds_.size() + 1, 0);
  for (std::size_t shard = 0; shard < detail::shard_count; ++shard) {
    result.sum += from_bits(word(shard, 0).load(std::memory_order_relaxed));
    for (std::size_t bucket = 0; bucket <= bounds_.size(); ++bucket)
      result.cumulative[bucket] += word(shard, 1 + bucket).load(std::memory_order_relaxed);
  }
  for (std::size_t bucket = 1; bucket < result.cumulative.size(); ++bucket)
    result.cumulative[bucket] += result.cumulative[bucket - 1];
  // The count is the +Inf bucket by construction, so a scrape never sees them disagree.
  result.count = result.cumulative.back();
  return result;
}

// -- families -----------------------------------------------------------------------------------

detail::family_base::family_base(std::string name, std::string help, metric_type type,
                                 std::vector<std::string> label_names)
  : name_(std::move(name)), help_(std::move(help)), type_(type),
    label_names_(std::move(label_names)) {
  // nop
}

detail::family_base::~family_base() = default;

void detail::family_base::write(std::string& out) const {
  std::string samples;
  write_samples(samples);
  if (samples.empty())
    return;
  out += "# HELP ";
  out += name_;
  out += ' ';
  append_escaped(out, help_, false);
  out += "\n# TYPE ";
  out += name_;
  out += ' ';
  out += type_name(type_);
  out += '\n';
  out += samples;
}

template <class Metric>
family<Metric>::family(std::string name, std::string help, std::vector<std::string> label_names,
                       std::vector<double> bounds)
  : family_base(std::move(name), std::move(help),
                std::is_same_v<Metric, metrics::counter> ? metric_type::counter
                : std::is_same_v<Metric, metrics::gauge> ? metric_type::gauge
                                                         : metric_type::histogram,
                std::move(label_names)),
    bounds_(std::move(bounds)) {
  // An unlabelled metric exists from the start, so it is exposed as 0 before its first update.
  if (family_base::label_names().empty())
    with({});
}

template <class Metric>
Metric& family<Metric>::with(const std::vector<std::string>& label_values) {
  if (label_values.size() != label_names().size())
    refuse(name() + ": " + std::to_string(label_values.size()) + " label values for "
           + std::to_string(label_names().size()) + " labels");
  std::lock_guard<std::mutex> guard{mutex_};
  auto i = children_.find(label_values);
  if (i == children_.end()) {
    std::unique_ptr<Metric> child;
    if constexpr (std::is_same_v<Metric, metrics::histogram>)
      child = std::make_unique<Metric>(bounds_);
    else
      child = std::make_unique<Metric>();
    i = children_.emplace(label_values, std::move(child)).first;
  }
  return *i->second;
}

template <class Metric>
void family<Metric>::write_samples(std::string& out) const {
  std::lock_guard<std::mutex> guard{mutex_};
  if constexpr (std::is_same_v<Metric, metrics::histogram>) {
    std::vector<std::string> le;
    for (double bound : bounds_)
      le.push_back(format_value(bound));
    le.emplace_back("+Inf");
    auto bucket_name = name() + "_bucket";
    for (const auto& [values, child] : children_) {
      auto snap = child->collect();
      for (std::size_t i = 0; i < le.size(); ++i)
        append_sample(out, bucket_name, label_names(), values,
                      static_cast<double>(snap.cumulative[i]), &le[i]);
      append_sample(out, name() + "_sum", label_names(), values, snap.sum);
      append_sample(out, name() + "_count", label_names(), values, static_cast<double>(snap.count));
    }
  } else {
    for (const auto& [values, child] : children_)
      append_sample(out, name(), label_names(), values, child->value());
  }
}

template class family<counter>;
template class family<gauge>;
template class family<histogram>;

// -- formatting and buckets ---------------------------------------------------------------------

std::string format_value(double value) {
  if (std::isnan(value))
    return "NaN";
  if (std::isinf(value))
    return value > 0 ? "+Inf" : "-Inf";
  char buffer[64];
  std::to_chars_result result;
  if (std::trunc(value) == value && std::fabs(value) < 0x1p63)
    result = std::to_chars(std::begin(buffer), std::end(buffer), static_cast<std::int64_t>(value));
  else
    result = std::to_chars(std::begin(buffer), std::end(buffer), value, std::chars_format::general);
  return std::string(buffer, result.ptr);
}

std::vector<double> default_seconds_buckets() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
          0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};
}

std::vector<double> exponential_buckets(double start, double factor, std::size_t count) {
  if (!(start > 0) || !std::isfinite(start))
    refuse("exponential buckets need a finite start > 0");
  if (!(factor > 1) || !std::isfinite(factor))
    refuse("exponential buckets need a finite factor > 1");
  if (count < 1)
    refuse("exponential buckets need at least one bucket");
  std::vector<double> bounds;
  bounds.reserve(count);
  for (double bound = start; bounds.size() < count; bound *= factor)
    bounds.push_back(bound);
  return bounds;
}

// -- registry -----------------------------------------------------------------------------------

registry::registry() = default;

registry::~registry() = default;

void registry::check_unique_samples(const detail::family_base& candidate) const {
  auto mine = sample_names(candidate);
  mine.push_back(candidate.name());
  for (const auto& [name, family] : families_) {
    auto theirs = sample_names(*family);
    theirs.push_back(name);
    for (const auto& a : mine)
      for (const auto& b : theirs)
        if (a == b)
          refuse(candidate.name() + ": its sample " + a + " clashes with family " + name);
  }
}

template <class Metric>
family<Metric>& registry::add(std::string name, std::string help, metric_type type,
                              std::vector<std::string> label_names, std::vector<double> bounds) {
  check_family(name, help, type, label_names);
  if (type == metric_type::histogram)
    bounds = checked_bounds(name, std::move(bounds));
  std::lock_guard<std::mutex> guard{mutex_};
  if (auto i = families_.find(name); i != families_.end()) {
    auto* existing = dynamic_cast<family<Metric>*>(i->second.get());
    if (existing == nullptr || existing->label_names() != label_names
        || existing->bounds() != bounds)
      refuse(name + " is already registered with another type, labels or buckets");
    return *existing;
  }
  std::unique_ptr<family<Metric>> created{new family<Metric>(
    std::move(name), std::move(help), std::move(label_names), std::move(bounds))};
  check_unique_samples(*created);
  auto& result = *created;
  families_.emplace(result.name(), std::move(created));
  return result;
}

counter_family& registry::counter(std::string name, std::string help,
                                  std::vector<std::string> label_names) {
  return add<metrics::counter>(std::move(name), std::move(help), metric_type::counter,
                               std::move(label_names), {});
}

gauge_family& registry::gauge(std::string name, std::string help,
                              std::vector<std::string> label_names) {
  return add<metrics::gauge>(std::move(name), std::move(help), metric_type::gauge,
                             std::move(label_names), {});
}

histogram_family& registry::histogram(std::string name, std::string help,
                                      std::vector<std::string> label_names,
                                      std::vector<double> bounds) {
  return add<metrics::histogram>(std::move(name), std::move(help), metric_type::histogram,
                                 std::move(label_names), std::move(bounds));
}

void registry::add_callback(std::unique_ptr<detail::family_base> callback) {
  check_family(callback->name(), callback->help(), callback->type(), callback->label_names());
  std::lock_guard<std::mutex> guard{mutex_};
  // A second callback under the same name would silently never run; refuse it instead.
  if (families_.count(callback->name()) != 0)
    refuse(callback->name() + " is already registered");
  check_unique_samples(*callback);
  auto name = callback->name();
  families_.emplace(std::move(name), std::move(callback));
}

void registry::gauge_callback(std::string name, std::string help, std::function<double()> read) {
  add_callback(std::make_unique<callback_family>(std::move(name), std::move(help),
                                                 metric_type::gauge, std::vector<std::string>{},
                                                 one_sample(std::move(read))));
}

void registry::gauge_callback(std::string name, std::string help,
                              std::vector<std::string> label_names,
                              std::function<std::vector<labelled_value>()> read) {
  add_callback(std::make_unique<callback_family>(
    std::move(name), std::move(help), metric_type::gauge, std::move(label_names), std::move(read)));
}

void registry::counter_callback(std::string name, std::string help, std::function<double()> read) {
  add_callback(std::make_unique<callback_family>(std::move(name), std::move(help),
                                                 metric_type::counter, std::vector<std::string>{},
                                                 one_sample(std::move(read))));
}

std::string registry::expose() const {
  // Families are never removed, so the pointers outlive the lock; callbacks then run
  // unlocked and may themselves use the registry.
  std::vector<const detail::family_base*> families;
  {
    std::lock_guard<std::mutex> guard{mutex_};
    families.reserve(families_.size());
    for (const auto& entry : families_)
      families.push_back(entry.second.get());
  }
  std::string out;
  for (const auto* family : families)
    family->write(out);
  return out;
}

// -- process metrics ----------------------------------------------------------------------------

#ifdef __linux__

namespace {

/// The fields of /proc/self/stat that the process metrics need.
struct proc_stat {
  double cpu_ticks = 0;   // utime + stime
  double start_ticks = 0; // since boot
  double virtual_bytes = 0;
  double resident_pages = 0;
};

bool read_proc_stat(proc_stat& out) {
  std::ifstream file{"/proc/self/stat"};
  std::string text{std::istreambuf_iterator<char>{file}, std::istreambuf_iterator<char>{}};
  // Field 2, the command name, is in parentheses and may hold spaces or ')': fields are
  // counted from the last ')'.
  auto close = text.rfind(')');
  if (close == std::string::npos)
    return false;
  std::istringstream fields{text.substr(close + 1)};
  std::vector<std::string> field; // field[0] is field 3, `state`
  for (std::string f; fields >> f;)
    field.push_back(f);
  if (field.size() < 22)
    return false;
  auto at = [&](int number) { return std::strtod(field[number - 3].c_str(), nullptr); };
  out.cpu_ticks = at(14) + at(15);
  out.start_ticks = at(22);
  out.virtual_bytes = at(23);
  out.resident_pages = at(24);
  return true;
}

/// Seconds since the epoch at boot, from the `btime` line of /proc/stat.
double boot_time() {
  std::ifstream file{"/proc/stat"};
  for (std::string line; std::getline(file, line);)
    if (line.rfind("btime ", 0) == 0)
      return std::strtod(line.c_str() + 6, nullptr);
  return nan;
}

double open_fds() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr)
    return nan;
  double count = 0;
  int own = dirfd(dir); // the listing's own descriptor is not one the process holds
  while (auto* entry = readdir(dir)) {
    if (entry->d_name[0] == '.')
      continue;
    if (std::atoi(entry->d_name) == own)
      continue;
    ++count;
  }
  closedir(dir);
  return count;
}

} // namespace

void register_process_metrics(registry& target) {
  const double ticks_per_second = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page_size = static_cast<double>(sysconf(_SC_PAGESIZE));
  auto stat_field = [](double proc_stat::*field, double scale) {
    return [field, scale] {
      proc_stat stat;
      return read_proc_stat(stat) ? stat.*field * scale : nan;
    };
  };
  target.counter_callback("process_cpu_seconds_total",
                          "Total user and system CPU time spent in seconds.",
                          stat_field(&proc_stat::cpu_ticks, 1 / ticks_per_second));
  target.gauge_callback("process_resident_memory_bytes", "Resident memory size in bytes.",
                        stat_field(&proc_stat::resident_pages, page_size));
  target.gauge_callback("process_virtual_memory_bytes", "Virtual memory size in bytes.",
                        stat_field(&proc_stat::virtual_bytes, 1));
  target.gauge_callback("process_open_fds", "Number of open file descriptors.", open_fds);
  target.gauge_callback("process_max_fds", "Maximum number of open file descriptors.", [] {
    // The soft limit, the "Max open files" line of /proc/self/limits, straight from the kernel.
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0)
      return nan;
    return limit.rlim_cur == RLIM_INFINITY ? inf : static_cast<double>(limit.rlim_cur);
  });
  // Boot time and start ticks never change: computed once.
  proc_stat stat;
  const double start =
    read_proc_stat(stat) ? boot_time() + stat.start_ticks / ticks_per_second : nan;
  target.gauge_callback("process_start_time_seconds",
                        "Start time of the process since unix epoch in seconds.",
                        [start] { return start; });
}

#else

void register_process_metrics(registry&) {
  // nop: the process metrics read Linux's /proc
}

#endif

registry& global() {
  static registry* instance = [] {
    // Never destroyed: threads may still update metrics while static destructors run.
    auto* created = new registry;
    register_process_metrics(*created);
    return created;
  }();
  return *instance;
}

} // namespace goring::metrics
