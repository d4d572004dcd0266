#include "outbound/jwks_fetcher.hpp"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cmath>
#include <limits>
#include <mutex>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include "config/log.hpp"
#include "metrics/metrics.hpp"
#include "outbound/http_client.hpp"

namespace goring::outbound {

namespace {

using std::chrono::steady_clock;

/// When the key set in force was fetched (steady_clock nanoseconds); -1
/// before any. Process-wide, as the metric that reads it is.
std::atomic<long long> last_good_fetch_ns{-1};

long long now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
           steady_clock::now().time_since_epoch())
    .count();
}

/// The fetcher's metrics, registered once per process.
struct jwks_metrics {
  metrics::counter_family* fetches = nullptr;
  metrics::gauge* keys = nullptr;
};

jwks_metrics& metrics_of_jwks() {
  static jwks_metrics* m = [] {
    auto* out = new jwks_metrics;
    auto& reg = metrics::global();
    out->fetches = &reg.counter("goring_jwks_fetches_total",
                                "Fetches of JWT_JWKS_URL by outcome: ok, http_status (not 200), "
                                "invalid (no usable key set), or the failure: timeout, tls, "
                                "connect, resolve, too_large, protocol, refused_url.",
                                {"outcome"});
    out->keys =
      &reg.gauge("goring_jwks_keys", "Keys in the JWKS key set in force (0 before the first).")
         .with();
    reg.gauge_callback("goring_jwks_age_seconds",
                       "Seconds since the key set in force was fetched; +Inf before the first.",
                       [] {
                         auto at = last_good_fetch_ns.load();
                         if (at < 0)
                           return std::numeric_limits<double>::infinity();
                         return static_cast<double>(now_ns() - at) / 1e9;
                       });
    return out;
  }();
  return *m;
}

std::string lower(std::string_view text) {
  std::string out{text};
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string seconds_text(std::chrono::milliseconds d) {
  auto ms = d.count();
  return ms % 1000 == 0 ? std::to_string(ms / 1000) + " s" : std::to_string(ms) + " ms";
}

} // namespace

std::optional<std::chrono::seconds> cache_max_age(std::string_view cache_control) {
  auto text = lower(cache_control);
  std::optional<std::chrono::seconds> out;
  std::size_t start = 0;
  while (start <= text.size()) {
    auto comma = text.find(',', start);
    auto item = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    auto first = item.find_first_not_of(" \t");
    auto last = item.find_last_not_of(" \t");
    item = first == std::string::npos ? std::string{} : item.substr(first, last - first + 1);
    if (item == "no-cache" || item == "no-store")
      return std::chrono::seconds{0};
    if (item.rfind("max-age=", 0) == 0) {
      auto value = item.substr(8);
      if (value.size() >= 2 && value.front() == '"' && value.back() == '"')
        value = value.substr(1, value.size() - 2);
      if (!value.empty() && value.size() <= 10
          && std::all_of(value.begin(), value.end(),
                         [](unsigned char c) { return std::isdigit(c); }))
        out = std::chrono::seconds{std::stoll(value)};
    }
    if (comma == std::string::npos)
      break;
    start = comma + 1;
  }
  return out;
}

struct jwks_fetcher::impl : std::enable_shared_from_this<impl> {
  boost::asio::strand<boost::asio::io_context::executor_type> strand;
  boost::asio::steady_timer timer;
  std::shared_ptr<http_client> client;
  url where;
  std::chrono::milliseconds refresh;
  jwks_consumer consume;
  jwks_metrics& counts = metrics_of_jwks();

  /// A fetch runs; written on the strand, read off it by refresh_soon().
  std::atomic<bool> fetching{false};
  // -- on the strand --
  bool stopped = false;
  std::vector<std::function<void()>> waiting;
  /// When the set in force was fetched; none before the first.
  std::optional<steady_clock::time_point> good_at;
  std::size_t keys = 0;
  unsigned failures_in_a_row = 0;
  /// Read off the strand too: the fast refusal of refresh_soon().
  std::atomic<long long> on_demand_at_ns{std::numeric_limits<long long>::min() / 2};

  impl(boost::asio::io_context& io, std::shared_ptr<http_client> client, url where,
       std::chrono::milliseconds refresh, jwks_consumer consume)
    : strand(boost::asio::make_strand(io)), timer(strand), client(std::move(client)),
      where(std::move(where)), refresh(refresh), consume(std::move(consume)) {
    // nop
  }

  void fetch() {
    if (fetching || stopped)
      return;
    fetching = true;
    timer.cancel();
    http_request request;
    request.where = where;
    request.headers = {{"Accept", "application/jwk-set+json, application/json"}};
    request.timeout = jwks_fetch_timeout;
    request.max_body_bytes = max_jwks_bytes;
    client->send(std::move(request), [self = shared_from_this()](http_result result) {
      boost::asio::post(self->strand, [self, result = std::move(result)]() mutable {
        self->on_fetched(std::move(result));
      });
    });
  }

  void on_fetched(http_result result) {
    fetching = false;
    std::string outcome;
    std::string problem;
    std::optional<std::chrono::seconds> max_age;
    if (!result.response) {
      outcome = failure_name(result.failure);
      problem = result.error;
    } else if (result.response->status != 200) {
      outcome = "http_status";
      problem = "the provider answered " + std::to_string(result.response->status);
    } else {
      auto verdict = consume(result.response->body);
      if (!verdict.error.empty()) {
        outcome = "invalid";
        problem = verdict.error;
      } else {
        outcome = "ok";
        keys = verdict.keys;
        good_at = steady_clock::now();
        last_good_fetch_ns = now_ns();
        counts.keys->set(static_cast<double>(keys));
        if (auto cc = result.response->header("Cache-Control"))
          max_age = cache_max_age(*cc);
        if (!verdict.change.empty())
          GORING_LOG(info, "jwks", "key set from " << where.shown() << ": " << verdict.change);
        else
          GORING_LOG(debug, "jwks", "key set from " << where.shown() << " unchanged");
      }
    }
    counts.fetches->with({outcome}).inc();
    std::chrono::milliseconds next = refresh;
    if (outcome == "ok") {
      failures_in_a_row = 0;
      // The provider may ask for sooner, not for later; and not for a
      // fetch every moment either.
      if (max_age)
        next = std::min<std::chrono::milliseconds>(
          refresh, std::max<std::chrono::milliseconds>(*max_age, jwks_on_demand_gap));
    } else {
      ++failures_in_a_row;
      auto backoff = jwks_first_retry * (1LL << std::min(failures_in_a_row - 1, 5u));
      next = std::min<std::chrono::milliseconds>(
        {refresh, std::chrono::milliseconds{jwks_max_retry}, std::chrono::milliseconds{backoff}});
      if (good_at) {
        auto age = std::chrono::duration_cast<std::chrono::seconds>(steady_clock::now() - *good_at);
        GORING_LOG(warn, "jwks",
                   "fetching the key set from "
                     << where.shown() << " failed (" << outcome << "): " << problem << "; the "
                     << keys << " keys fetched " << age.count()
                     << " s ago stay in use; next try in " << seconds_text(next));
      } else {
        GORING_LOG(warn, "jwks",
                   "fetching the key set from "
                     << where.shown() << " failed (" << outcome << "): " << problem
                     << "; no key set yet, so WebSocket upgrades get 503; next try in "
                     << seconds_text(next));
      }
    }
    let_go();
    if (stopped)
      return;
    timer.expires_after(next);
    timer.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (!ec)
        self->fetch();
    });
  }

  void let_go() {
    auto callers = std::move(waiting);
    waiting.clear();
    for (auto& done : callers)
      done();
  }
};

jwks_fetcher::jwks_fetcher(boost::asio::io_context& io, std::shared_ptr<http_client> client,
                           url where, std::chrono::milliseconds refresh, jwks_consumer consume)
  : impl_(
    std::make_shared<impl>(io, std::move(client), std::move(where), refresh, std::move(consume))) {
  // nop
}

jwks_fetcher::~jwks_fetcher() {
  stop();
}

void jwks_fetcher::start() {
  boost::asio::post(impl_->strand, [self = impl_] { self->fetch(); });
}

void jwks_fetcher::stop() {
  boost::asio::post(impl_->strand, [self = impl_] {
    self->stopped = true;
    self->timer.cancel();
    self->let_go();
  });
}

void jwks_fetcher::refresh_soon(std::function<void()> done) {
  if (!done)
    done = [] {};
  auto gap = std::chrono::duration_cast<std::chrono::nanoseconds>(jwks_on_demand_gap).count();
  // A flood of made-up kids stops here, without a trip to the strand.
  if (now_ns() - impl_->on_demand_at_ns.load() < gap && !impl_->fetching.load()) {
    done();
    return;
  }
  boost::asio::post(impl_->strand, [self = impl_, done = std::move(done), gap]() mutable {
    if (self->stopped) {
      done();
      return;
    }
    if (self->fetching) {
      self->waiting.push_back(std::move(done));
      return;
    }
    auto now = now_ns();
    if (now - self->on_demand_at_ns.load() < gap) {
      done();
      return;
    }
    self->on_demand_at_ns = now;
    self->waiting.push_back(std::move(done));
    self->fetch();
  });
}

} // namespace goring::outbound
