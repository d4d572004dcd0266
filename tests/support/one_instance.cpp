#include "tests/support/one_instance.hpp"

#include <doctest/doctest.h>

#include <fstream>
#include <iterator>
#include <sstream>

#include "tests/support/token.hpp"

namespace goring::test {

one_instance::one_instance(std::map<std::string, std::string> env)
  : goring(redis, "goring-1", std::move(env)) {
  // nop
}

void one_instance::join(ws_client& client) {
  connect_online(client, goring, redis, user_token(client.label()));
}

std::string one_instance::join_in_call(ws_client& caller, ws_client& callee) {
  join(caller);
  join(callee);
  return connect_call(caller, callee);
}

std::string one_instance::hget(const std::string& key, const std::string& field) {
  return redis.hget(key, field);
}

std::string one_instance::get(const std::string& key) {
  return redis.get(key);
}

std::vector<std::string> one_instance::keys_matching(const std::string& pattern) {
  return redis.keys_matching(pattern);
}

double one_instance::metric(const std::string& name) {
  auto res = http_get(goring.admin_port(), "/metrics");
  REQUIRE(res.status == 200);
  std::istringstream lines{res.body};
  std::string line;
  while (std::getline(lines, line))
    if (line.rfind(name + " ", 0) == 0)
      return std::stod(line.substr(name.size() + 1));
  return 0;
}

std::string one_instance::log() const {
  std::ifstream in{goring.log_path()};
  return std::string{std::istreambuf_iterator<char>{in}, {}};
}

} // namespace goring::test
