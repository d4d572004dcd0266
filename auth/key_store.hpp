/// The key set in force for RS/PS/ES tokens. Token checks read it on any
/// thread while a fetch (outbound/jwks_fetcher) replaces it on another: a
/// set is immutable and swapped whole, so a check never waits for a fetch.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "auth/key_set.hpp"

namespace goring::auth {

/// What taking a JWKS document did.
struct jwks_update {
  /// Why the document was refused (the set in force stays); empty when taken.
  std::string error;
  /// Keys in force afterwards.
  std::size_t keys = 0;
  /// For the log: the keys added and removed, and the keys left out;
  /// empty when the set is as it was.
  std::string change;
};

class key_store {
public:
  /// No set yet: tokens that need one are refused until the first arrives.
  key_store() = default;
  explicit key_store(key_set initial);

  key_store(const key_store&) = delete;
  key_store& operator=(const key_store&) = delete;

  /// The set in force; null until the first one arrived.
  std::shared_ptr<const key_set> current() const;

  /// Parses `document` (auth/jwks) and, when it holds a usable key, makes
  /// it the set in force.
  jwks_update take_jwks(std::string_view document);

  /// Who fetches a new set when asked to; `done` must run once, on any
  /// thread, when the fetch ended or was not made.
  using refresher = std::function<void(std::function<void()> done)>;
  void set_refresher(refresher fetch);

  /// A token named a kid the set does not hold: asks for the set again
  /// (the refresher bounds how often). `done` runs when that fetch has
  /// ended or was not made, maybe at once on this thread; never when there
  /// is no refresher (then at once).
  void request_refresh(std::function<void()> done) const;

private:
  // Read and written with std::atomic_load/atomic_store only.
  std::shared_ptr<const key_set> keys_;
  mutable std::mutex mutex_; // guards refresher_
  refresher refresher_;
};

} // namespace goring::auth
