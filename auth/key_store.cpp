#include "auth/key_store.hpp"

#include <atomic>
#include <set>

#include "auth/jwks.hpp"

namespace goring::auth {

namespace {

/// "kid (alg)" of each key, for the log.
std::set<std::string> names_of(const key_set* keys) {
  std::set<std::string> out;
  if (keys == nullptr)
    return out;
  for (auto& k : keys->keys())
    out.insert((k.kid.empty() ? std::string{"(no kid)"} : "'" + k.kid.substr(0, 64) + "'")
               + (k.alg.empty() ? std::string{} : " " + k.alg));
  return out;
}

std::string joined(const std::set<std::string>& names) {
  std::string out;
  for (auto& n : names)
    out += (out.empty() ? "" : ", ") + n;
  return out;
}

} // namespace

key_store::key_store(key_set initial) : keys_(std::make_shared<const key_set>(std::move(initial))) {
  // nop
}

std::shared_ptr<const key_set> key_store::current() const {
  return std::atomic_load(&keys_);
}

jwks_update key_store::take_jwks(std::string_view document) {
  auto parsed = parse_jwks(document);
  jwks_update out;
  auto before = current();
  if (!parsed.keys) {
    out.error = parsed.error;
    out.keys = before ? before->keys().size() : 0;
    return out;
  }
  auto next = std::make_shared<const key_set>(std::move(*parsed.keys));
  out.keys = next->keys().size();
  auto old_names = names_of(before.get());
  auto new_names = names_of(next.get());
  std::set<std::string> added, removed;
  for (auto& n : new_names)
    if (!old_names.count(n))
      added.insert(n);
  for (auto& n : old_names)
    if (!new_names.count(n))
      removed.insert(n);
  if (!added.empty() || !removed.empty() || !before) {
    out.change = std::to_string(out.keys) + (out.keys == 1 ? " key" : " keys");
    if (!added.empty())
      out.change += "; new: " + joined(added);
    if (!removed.empty())
      out.change += "; gone: " + joined(removed);
    for (auto& line : parsed.skipped)
      out.change += "; left out " + line;
  }
  std::atomic_store(&keys_, std::shared_ptr<const key_set>{std::move(next)});
  return out;
}

void key_store::set_refresher(refresher fetch) {
  std::lock_guard<std::mutex> guard{mutex_};
  refresher_ = std::move(fetch);
}

void key_store::request_refresh(std::function<void()> done) const {
  refresher fetch;
  {
    std::lock_guard<std::mutex> guard{mutex_};
    fetch = refresher_;
  }
  if (!done)
    done = [] {};
  if (fetch)
    fetch(std::move(done));
  else
    done();
}

} // namespace goring::auth
