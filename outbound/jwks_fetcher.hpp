/// Keeps the identity provider's key set (JWT_JWKS_URL) fresh: fetches it
/// at start, again every JWT_JWKS_REFRESH (sooner when the provider's
/// Cache-Control max-age is shorter), again soon after a failed fetch, and
/// on demand when a token names a kid the set lacks. Each body goes to a
/// consumer (auth::key_store, wired in main) that says whether it took it;
/// a failed fetch leaves the consumer's set as it was. Metrics:
/// goring_jwks_fetches_total{outcome}, goring_jwks_keys,
/// goring_jwks_age_seconds.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "outbound/url.hpp"

namespace boost::asio {
class io_context;
} // namespace boost::asio

namespace goring::outbound {

class http_client;

/// Fetches on demand (unknown kids) start at most this often, so a flood of
/// made-up kids cannot hammer the provider. Also the shortest wait a
/// Cache-Control max-age can ask for.
inline constexpr std::chrono::seconds jwks_on_demand_gap{10};
/// One fetch, from resolve to the last byte.
inline constexpr std::chrono::seconds jwks_fetch_timeout{5};
/// A bigger key set is no key set (real ones are a few KB).
inline constexpr std::size_t max_jwks_bytes = 256 * 1024;
/// After a failure the next try comes this soon, doubling up to the max
/// (and never later than the refresh interval).
inline constexpr std::chrono::seconds jwks_first_retry{1};
inline constexpr std::chrono::seconds jwks_max_retry{30};

/// What the consumer made of a body.
struct jwks_verdict {
  /// Why it refused the body; empty when it took it.
  std::string error;
  /// Keys in force afterwards.
  std::size_t keys = 0;
  /// What changed, for an info line; empty: nothing worth logging.
  std::string change;
};

using jwks_consumer = std::function<jwks_verdict(std::string_view body)>;

/// The max-age of a Cache-Control value ("public, max-age=3600"); 0 for
/// no-cache and no-store; nothing without either.
std::optional<std::chrono::seconds> cache_max_age(std::string_view cache_control);

class jwks_fetcher {
public:
  /// Fetches `where` with `client`; `consume` runs on one of `io`'s threads,
  /// one body at a time.
  jwks_fetcher(boost::asio::io_context& io, std::shared_ptr<http_client> client, url where,
               std::chrono::milliseconds refresh, jwks_consumer consume);
  /// Stops (see stop()).
  ~jwks_fetcher();

  jwks_fetcher(const jwks_fetcher&) = delete;
  jwks_fetcher& operator=(const jwks_fetcher&) = delete;

  /// The first fetch, at once; then the schedule. Call once.
  void start();

  /// No fetch after this; callers waiting in refresh_soon() are let go.
  void stop();

  /// A token named a kid the set lacks: fetches now unless an on-demand
  /// fetch started within jwks_on_demand_gap (a fetch already running is
  /// joined). `done` runs once, on any thread (maybe at once, on this
  /// one), when the fetch ended or was not made.
  void refresh_soon(std::function<void()> done);

  struct impl;

private:
  std::shared_ptr<impl> impl_;
};

} // namespace goring::outbound
