#include "tests/support/sentinel_set.hpp"

#include <sstream>

#include <doctest/doctest.h>

namespace goring::test {

namespace {

using reply_kind = redis::reply::kind;

redis_options data_node(uint16_t replica_of, redis_persistence persistence) {
  redis_options o;
  o.persistence = persistence;
  o.replica_of = replica_of;
  // A replica takes the full copy straight over the socket, at once.
  o.args = {"--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0",
            "--replica-read-only",  "no"};
  return o;
}

redis_options sentinel_of(uint16_t master_port) {
  redis_options o;
  o.sentinel_of = master_port;
  o.monitor_name = sentinel_set::master_name;
  o.sentinel_settings = {
    {"down-after-milliseconds", "1000"}, {"failover-timeout", "3000"}, {"parallel-syncs", "1"}};
  return o;
}

/// `SENTINEL MASTER name` as field -> value.
std::map<std::string, std::string> master_fields(redis_server& sentinel) {
  std::map<std::string, std::string> out;
  auto r = sentinel.run({"SENTINEL", "MASTER", sentinel_set::master_name});
  if (r.type != reply_kind::array)
    return out;
  for (std::size_t i = 0; i + 1 < r.elements.size(); i += 2)
    out[r.elements[i].str] = r.elements[i + 1].str;
  return out;
}

/// The `field:value` of an INFO section, "" when missing.
std::string info_field(redis_server& server, const std::string& section, const std::string& field) {
  auto r = server.run({"INFO", section});
  if (r.type != reply_kind::string)
    return {};
  std::istringstream lines{r.str};
  std::string line;
  while (std::getline(lines, line)) {
    if (!line.empty() && line.back() == '\r')
      line.pop_back();
    if (line.compare(0, field.size() + 1, field + ":") == 0)
      return line.substr(field.size() + 1);
  }
  return {};
}

/// Waits until `replica` is in sync, so that a sentinel's first INFO of the
/// master already lists it (the next one comes 10 s later); returns the
/// master's port.
uint16_t synced(redis_server& replica, uint16_t master_port) {
  bool up =
    wait_until([&] { return info_field(replica, "replication", "master_link_status") == "up"; },
               std::chrono::seconds(10));
  REQUIRE_MESSAGE(up, "the replica did not sync with its master within 10 s");
  return master_port;
}

} // namespace

std::string role_of(redis_server& server) {
  auto r = server.run({"ROLE"});
  if (r.type != reply_kind::array || r.elements.empty())
    return {};
  return r.elements[0].str;
}

std::vector<std::string> client_names(redis_server& server) {
  std::vector<std::string> names;
  auto r = server.run({"CLIENT", "LIST"});
  if (r.type != reply_kind::string)
    return names;
  std::istringstream lines{r.str};
  std::string line;
  while (std::getline(lines, line)) {
    auto at = line.find(" name=");
    if (at == std::string::npos)
      continue;
    auto end = line.find(' ', at + 6);
    names.push_back(line.substr(at + 6, end == std::string::npos ? end : end - at - 6));
  }
  return names;
}

sentinel_set::sentinel_set(redis_persistence master_persistence)
  : master_(data_node(0, master_persistence)),
    replica_(data_node(master_.port(), redis_persistence::none)),
    sentinel_a_(sentinel_of(synced(replica_, master_.port()))),
    sentinel_b_(sentinel_of(master_.port())), sentinel_c_(sentinel_of(master_.port())) {
  bool ready = wait_until(
    [&] {
      for (auto* s : sentinels()) {
        auto fields = master_fields(*s);
        if (fields["num-slaves"] != "1" || fields["num-other-sentinels"] != "2")
          return false;
      }
      return true;
    },
    std::chrono::seconds(20));
  REQUIRE_MESSAGE(ready, "the replica did not sync or the sentinels did not find each other "
                         "and the replica within 20 s");
}

std::string sentinel_set::sentinel_list() const {
  return sentinel_a_.addr() + "," + sentinel_b_.addr() + "," + sentinel_c_.addr();
}

std::map<std::string, std::string>
sentinel_set::goring_env(std::map<std::string, std::string> extra) const {
  std::map<std::string, std::string> env{{"REDIS_SENTINELS", sentinel_list()},
                                         {"REDIS_SENTINEL_MASTER", master_name}};
  for (auto& [key, value] : extra)
    env[key] = value;
  return env;
}

uint16_t sentinel_set::named_master_port() {
  for (auto* s : sentinels()) {
    auto r = s->run({"SENTINEL", "GET-MASTER-ADDR-BY-NAME", master_name});
    if (r.type == reply_kind::array && r.elements.size() == 2)
      return static_cast<uint16_t>(std::stoi(r.elements[1].str));
  }
  return 0;
}

bool sentinel_set::wait_master(redis_server& server, std::chrono::milliseconds timeout) {
  return wait_until(
    [&] {
      if (role_of(server) != "master")
        return false;
      for (auto* s : sentinels()) {
        auto r = s->run({"SENTINEL", "GET-MASTER-ADDR-BY-NAME", master_name});
        if (r.type == reply_kind::array && r.elements.size() == 2
            && r.elements[1].str != std::to_string(server.port()))
          return false;
      }
      return true;
    },
    timeout);
}

bool sentinel_set::wait_replica(redis_server& server, std::chrono::milliseconds timeout) {
  return wait_until(
    [&] {
      return role_of(server) == "slave"
             && info_field(server, "replication", "master_link_status") == "up";
    },
    timeout);
}

} // namespace goring::test
