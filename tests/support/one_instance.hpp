/// The most common end-to-end setting: one goring and its own Redis, with
/// the lookups tests make on both.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "tests/support/goring_process.hpp"
#include "tests/support/redis_backend.hpp"
#include "tests/support/ws_client.hpp"

namespace goring::test {

/// One goring ("goring-1", `env` added to its settings) and its own Redis:
/// a redis-server, or a cluster with GORING_TEST_REDIS=cluster.
struct one_instance {
  redis_backend redis;
  goring_process goring;

  explicit one_instance(std::map<std::string, std::string> env = {});

  /// Connects `client` as the user its label names, with full claims, and
  /// waits until Redis has the user online.
  void join(ws_client& client);

  /// Joins both, then `caller` calls `callee`, who accepts (connect_call);
  /// returns the session id.
  std::string join_in_call(ws_client& caller, ws_client& callee);

  /// HGET / GET, "" when the key or field is missing.
  std::string hget(const std::string& key, const std::string& field);
  std::string get(const std::string& key);

  /// The keys matching `pattern` (on every master of a cluster).
  std::vector<std::string> keys_matching(const std::string& pattern);

  /// A sample of /metrics on the admin port (`name` with its labels); 0 when
  /// absent (a labelled counter shows only once counted).
  double metric(const std::string& name);

  /// Everything goring logged so far.
  std::string log() const;
};

} // namespace goring::test
