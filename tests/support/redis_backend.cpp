#include "tests/support/redis_backend.hpp"

#include <cstdlib>

#include <doctest/doctest.h>

#include "redis/cluster_keys.hpp"
#include "redis/keys.hpp"

namespace goring::test {

namespace keys = goring::redis::keys;
namespace cluster_keys = goring::redis::cluster;

namespace {

/// The port of a "MOVED slot host:port" error, 0 when `r` is none.
uint16_t moved_port(const redis::reply& r) {
  if (!r.is_error() || r.str.rfind("MOVED ", 0) != 0)
    return 0;
  auto colon = r.str.rfind(':');
  if (colon == std::string::npos)
    return 0;
  return static_cast<uint16_t>(std::atoi(r.str.c_str() + colon + 1));
}

} // namespace

redis_mode test_redis_mode() {
  const char* mode = std::getenv("GORING_TEST_REDIS");
  return mode != nullptr && std::string{mode} == "cluster" ? redis_mode::cluster
                                                           : redis_mode::single;
}

bool redis_mode_named(redis_mode mode) {
  const char* name = std::getenv("GORING_TEST_REDIS");
  if (name == nullptr)
    return false;
  return std::string{name} == (mode == redis_mode::cluster ? "cluster" : "single");
}

redis_backend::redis_backend(redis_persistence persistence)
  : redis_backend(test_redis_mode(), persistence) {
  // nop
}

redis_backend::redis_backend(redis_mode mode, redis_persistence persistence) {
  if (mode == redis_mode::cluster) {
    own_cluster_ = std::make_unique<redis_cluster>();
    cluster_ = own_cluster_.get();
  } else {
    own_server_ = std::make_unique<redis_server>(persistence);
    server_ = own_server_.get();
  }
}

redis_backend::redis_backend(redis_server& borrowed) : server_(&borrowed) {
  // nop
}

redis_backend::~redis_backend() = default;

redis_server& redis_backend::server() {
  REQUIRE_MESSAGE(server_ != nullptr, "this step needs the one redis-server of single mode");
  return *server_;
}

redis_cluster& redis_backend::cluster() {
  REQUIRE_MESSAGE(cluster_ != nullptr, "this step needs the Redis Cluster of cluster mode");
  return *cluster_;
}

std::map<std::string, std::string> redis_backend::goring_env() const {
  if (cluster_ != nullptr)
    return {{"REDIS_CLUSTER", cluster_->seed_list()}};
  return {{"REDIS_ADDR", server_->addr()}};
}

redis_server& redis_backend::node_of(const std::string& key) {
  if (server_ != nullptr)
    return *server_;
  auto* master = cluster_->master_of(cluster_keys::key_slot(key));
  REQUIRE_MESSAGE(master != nullptr, "no master serves the slot of ", key);
  return *master;
}

redis::reply redis_backend::run(const std::vector<std::string>& argv) {
  if (server_ != nullptr)
    return server_->run(argv);
  auto routed = argv;
  if (!routed.empty() && (routed[0] == "PUBLISH" || routed[0] == "publish"))
    routed[0] = "SPUBLISH";
  auto route = cluster_keys::route_of(routed);
  switch (route.kind) {
    case cluster_keys::route_kind::any_master:
      return cluster_->run_on_any(routed);
    case cluster_keys::route_kind::every_master: {
      auto last = redis::reply::make_error("no live master");
      for (auto* master : cluster_->masters())
        last = master->run(routed);
      return last;
    }
    case cluster_keys::route_kind::by_key:
      break;
  }
  auto* master = cluster_->master_of(cluster_keys::key_slot(route.key));
  if (master == nullptr)
    return redis::reply::make_error("no master serves the slot of " + std::string{route.key});
  auto r = master->run(routed);
  // The slot map we read may be a moment old (a failover, a migration).
  if (auto port = moved_port(r); port != 0)
    if (auto* moved_to = cluster_->node_on(port); moved_to != nullptr)
      r = moved_to->run(routed);
  return r;
}

void redis_backend::stop() {
  if (server_ != nullptr) {
    server_->stop();
    return;
  }
  for (auto* node : cluster_->nodes())
    node->stop();
}

std::vector<std::string> redis_backend::keys_matching(const std::string& pattern) {
  std::vector<std::string> out;
  std::vector<redis_server*> where;
  if (server_ != nullptr)
    where.push_back(server_);
  else
    where = cluster_->masters();
  for (auto* node : where)
    for (auto& element : node->run({"KEYS", pattern}).elements)
      out.push_back(element.str);
  return out;
}

void redis_backend::flush() {
  if (server_ != nullptr) {
    REQUIRE(server_->run({"FLUSHALL"}).str == "OK");
    return;
  }
  for (auto* master : cluster_->masters())
    REQUIRE(master->run({"FLUSHALL"}).str == "OK");
}

std::string redis_backend::get(const std::string& key) {
  auto r = run({"GET", key});
  return r.type == redis::reply::kind::string ? r.str : std::string{};
}

std::string redis_backend::hget(const std::string& key, const std::string& field) {
  auto r = run({"HGET", key, field});
  return r.type == redis::reply::kind::string ? r.str : std::string{};
}

std::string redis_backend::user_key(const std::string& user_id) const {
  return is_cluster() ? cluster_keys::user_key(keys::user_prefix, user_id) : keys::user(user_id);
}

std::string redis_backend::user_call_key(const std::string& user_id) const {
  return is_cluster() ? cluster_keys::user_key(keys::user_call_prefix, user_id)
                      : keys::user_call(user_id);
}

std::string redis_backend::session_key(const std::string& session_id) const {
  return is_cluster() ? keys::tagged_session(session_id) : keys::session(session_id);
}

std::string redis_backend::server_key(const std::string& server_id) const {
  return keys::server(server_id);
}

std::string redis_backend::user_pattern() const {
  return keys::join(keys::user_prefix, "*");
}

std::string redis_backend::user_call_pattern() const {
  return keys::join(keys::user_call_prefix, "*");
}

} // namespace goring::test
