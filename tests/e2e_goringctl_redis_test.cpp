/// goringctl against the real thing: two goring instances sharing one Redis,
/// users and a call across them, and each command's --json output checked
/// against what the clients and Redis know; and --cluster against a real
/// six-node Redis Cluster holding the fleet's keys in the cluster layout.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <ctime>
#include <initializer_list>
#include <map>
#include <ostream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "redis/cluster_keys.hpp"
#include "redis/keys.hpp"
#include "tests/support/goring_process.hpp"
#include "tests/support/redis_cluster.hpp"
#include "tests/support/redis_server.hpp"
#include "tests/support/sentinel_set.hpp"
#include "tests/support/token.hpp"
#include "tests/support/ws_client.hpp"

#ifndef GORINGCTL_BINARY
#error "GORINGCTL_BINARY must name the goringctl binary under test"
#endif

using namespace goring::test;
namespace keys = goring::redis::keys;
namespace cluster = goring::redis::cluster;

namespace {

/// How long one goringctl run may take before the test kills it.
constexpr auto ctl_timeout = std::chrono::seconds(20);

/// What one goringctl run printed and how it ended.
struct ctl_run {
  /// The exit status; -1 when it had to be killed.
  int status = -1;
  std::string out;
  std::string err;
  /// `out` parsed; not valid() when it is no JSON (a table).
  json value;
};

std::ostream& operator<<(std::ostream& os, const ctl_run& run) {
  return os << "goringctl exited " << run.status << "\n--- stdout ---\n"
            << run.out << "--- stderr ---\n"
            << run.err;
}

/// Runs goringctl with `args`, in the test's environment without
/// GORING_ADMIN_TOKEN, JWT_SECRET, REDIS_PASSWORD, JWT_ALGORITHMS,
/// JWT_ISSUER and JWT_AUDIENCE, plus `env`.
ctl_run goringctl(const std::vector<std::string>& args,
                  const std::map<std::string, std::string>& env = {}) {
  int out_pipe[2];
  int err_pipe[2];
  REQUIRE(::pipe2(out_pipe, O_CLOEXEC) == 0);
  REQUIRE(::pipe2(err_pipe, O_CLOEXEC) == 0);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::dup2(out_pipe[1], STDOUT_FILENO);
    ::dup2(err_pipe[1], STDERR_FILENO);
    ::close_range(3, ~0U, 0);
    for (const char* name : {"GORING_ADMIN_TOKEN", "JWT_SECRET", "REDIS_PASSWORD", "JWT_ALGORITHMS",
                             "JWT_ISSUER", "JWT_AUDIENCE"})
      ::unsetenv(name);
    for (const auto& [name, value] : env)
      ::setenv(name.c_str(), value.c_str(), 1);
    std::vector<char*> argv{const_cast<char*>(GORINGCTL_BINARY)};
    for (const auto& arg : args)
      argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);
    ::execv(GORINGCTL_BINARY, argv.data());
    ::_exit(127);
  }
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  ctl_run run;
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  std::string* sinks[2] = {&run.out, &run.err};
  int open_pipes = 2;
  auto deadline = std::chrono::steady_clock::now() + ctl_timeout;
  while (open_pipes > 0 && std::chrono::steady_clock::now() < deadline) {
    if (::poll(fds, 2, 100) <= 0)
      continue;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0)
        continue;
      char buf[4096];
      auto n = ::read(fds[i].fd, buf, sizeof buf);
      if (n > 0) {
        sinks[i]->append(buf, static_cast<std::size_t>(n));
      } else {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_pipes;
      }
    }
  }
  for (auto& fd : fds)
    if (fd.fd >= 0)
      ::close(fd.fd);
  int status = 0;
  if (open_pipes > 0)
    ::kill(pid, SIGKILL);
  ::waitpid(pid, &status, 0);
  run.status = open_pipes == 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  run.value = json::parse(run.out);
  return run;
}

/// The string member `key` of an object, "" when missing.
std::string text(const rapidjson::Value& object, const char* key) {
  if (!object.IsObject() || !object.HasMember(key) || !object[key].IsString())
    return {};
  return object[key].GetString();
}

/// The integer member `key`, -1 when missing.
int64_t number(const rapidjson::Value& object, const char* key) {
  if (!object.IsObject() || !object.HasMember(key) || !object[key].IsInt64())
    return -1;
  return object[key].GetInt64();
}

/// Whether the boolean member `key` is true.
bool flag(const rapidjson::Value& object, const char* key) {
  return object.IsObject() && object.HasMember(key) && object[key].IsBool()
         && object[key].GetBool();
}

/// The strings of the array member `key`, sorted.
std::vector<std::string> strings(const rapidjson::Value& object, const char* key) {
  std::vector<std::string> out;
  if (object.IsObject() && object.HasMember(key) && object[key].IsArray())
    for (const auto& item : object[key].GetArray())
      if (item.IsString())
        out.emplace_back(item.GetString());
  std::sort(out.begin(), out.end());
  return out;
}

/// The rows of an array whose `key` is `value`.
std::vector<const rapidjson::Value*> rows_where(const rapidjson::Value& rows, const char* key,
                                                const std::string& value) {
  std::vector<const rapidjson::Value*> out;
  if (rows.IsArray())
    for (const auto& row : rows.GetArray())
      if (text(row, key) == value)
        out.push_back(&row);
  return out;
}

std::size_t size_of(const json& value) {
  return value.value().IsArray() ? value.value().Size() : 0;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in{text};
  for (std::string line; std::getline(in, line);)
    lines.push_back(line);
  return lines;
}

/// Two goring instances, "goring-a" and "goring-b", on one Redis, each
/// registered there with its admin address.
struct fleet {
  redis_server redis;
  goring_process a;
  goring_process b;

  explicit fleet(const std::map<std::string, std::string>& env = {})
    : a(redis.addr(), "goring-a", env), b(redis.addr(), "goring-b", env) {
    REQUIRE(registered(a));
    REQUIRE(registered(b));
  }

  /// Waits until the instance's heartbeat names its admin listener.
  bool registered(const goring_process& instance) {
    auto expected = "127.0.0.1:" + std::to_string(instance.admin_port());
    return wait_until(
      [&] {
        auto admin = redis.run({"HGET", keys::server(instance.server_id()), "admin"});
        return admin.str == expected;
      },
      std::chrono::seconds(5));
  }

  static std::string admin_url(const goring_process& instance) {
    return "http://127.0.0.1:" + std::to_string(instance.admin_port());
  }

  /// goringctl --redis ADDR --json COMMAND...
  ctl_run via_redis(std::initializer_list<std::string> command,
                    const std::map<std::string, std::string>& env = {}) {
    std::vector<std::string> args{"--redis", redis.addr(), "--json"};
    args.insert(args.end(), command);
    return goringctl(args, env);
  }

  /// goringctl --admin URL --json COMMAND...
  ctl_run via_admin(const goring_process& instance, std::initializer_list<std::string> command,
                    const std::map<std::string, std::string>& env = {}) {
    std::vector<std::string> args{"--admin", admin_url(instance), "--json"};
    args.insert(args.end(), command);
    return goringctl(args, env);
  }

  /// Connects `client` as the user its label names.
  void join(ws_client& client, const goring_process& instance) {
    connect_online(client, instance, redis, user_token(client.label()));
  }
};

bool becomes_ready(const goring_process& instance) {
  return wait_until([&] { return http_get(instance.admin_port(), "/ready").status == 200; },
                    std::chrono::seconds(5));
}

/// The master of the slot of `key` in `redis` now.
redis_server& master_for(redis_cluster& redis, const std::string& key) {
  auto* master = redis.master_of(cluster::key_slot(key));
  REQUIRE(master != nullptr);
  return *master;
}

/// Copies the string or hash `key` of the single Redis `from` into the
/// cluster `into` as `to`, on the master of its slot.
void copy_key(redis_server& from, const std::string& key, redis_cluster& into,
              const std::string& to) {
  auto& master = master_for(into, to);
  auto type = from.run({"TYPE", key}).str;
  if (type == "string") {
    REQUIRE(master.run({"SET", to, from.run({"GET", key}).str}).str == "OK");
    return;
  }
  REQUIRE(type == "hash");
  std::vector<std::string> hset{"HSET", to};
  for (const auto& item : from.run({"HGETALL", key}).elements)
    hset.push_back(item.str);
  REQUIRE(hset.size() > 2);
  REQUIRE_FALSE(master.run(hset).is_error());
}

/// A seed node whose slot map is out of date: on loopback, it answers one
/// connection's CLUSTER SLOTS with every slot on the node at `master_port`,
/// then waits for the client to hang up (at most ctl_timeout).
class stale_seed {
public:
  explicit stale_seed(uint16_t master_port) {
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(listener_ >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(listener_, 1) == 0);
    socklen_t len = sizeof addr;
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    auto port_text = std::to_string(master_port);
    reply_ = "*1\r\n*3\r\n:0\r\n:16383\r\n*2\r\n$9\r\n127.0.0.1\r\n:" + port_text + "\r\n";
    thread_ = std::thread{[this] { serve(); }};
  }
  ~stale_seed() {
    if (thread_.joinable())
      thread_.join();
    ::close(listener_);
  }
  stale_seed(const stale_seed&) = delete;
  stale_seed& operator=(const stale_seed&) = delete;

  std::string addr() const {
    return "127.0.0.1:" + std::to_string(port_);
  }
  /// What the client sent; waits until it has hung up.
  std::string request() {
    if (thread_.joinable())
      thread_.join();
    return request_;
  }

private:
  void serve() {
    pollfd listening{listener_, POLLIN, 0};
    auto wait_ms = static_cast<int>(std::chrono::milliseconds{ctl_timeout}.count());
    if (::poll(&listening, 1, wait_ms) != 1)
      return;
    int conn = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
    if (conn < 0)
      return;
    bool answered = false;
    pollfd peer{conn, POLLIN, 0};
    char buf[512];
    while (::poll(&peer, 1, wait_ms) == 1) {
      auto n = ::read(conn, buf, sizeof buf);
      if (n <= 0)
        break;
      request_.append(buf, static_cast<std::size_t>(n));
      if (!answered && request_.find("SLOTS\r\n") != std::string::npos) {
        answered =
          ::write(conn, reply_.data(), reply_.size()) == static_cast<ssize_t>(reply_.size());
      }
    }
    ::close(conn);
  }

  int listener_ = -1;
  uint16_t port_ = 0;
  std::string reply_;
  std::string request_;
  std::thread thread_;
};

} // namespace

TEST_CASE("instances lists every live instance with its admin address and connections") {
  fleet f;
  ws_client alice{"alice"};
  ws_client bob{"bob"};
  ws_client carol{"carol"};
  f.join(alice, f.a);
  f.join(bob, f.b);
  f.join(carol, f.b);
  REQUIRE(becomes_ready(f.a));
  REQUIRE(becomes_ready(f.b));

  auto all = f.via_redis({"instances"});
  INFO(all);
  REQUIRE(all.status == 0);
  REQUIRE(all.value.value().IsArray());
  CHECK(size_of(all.value) == 2);
  for (const auto* instance : {&f.a, &f.b}) {
    auto rows = rows_where(all.value.value(), "server_id", instance->server_id());
    REQUIRE(rows.size() == 1);
    const auto& row = *rows.front();
    CHECK(number(row, "connections") == (instance == &f.a ? 1 : 2));
    CHECK(number(row, "calls") == 0);
    CHECK(text(row, "admin") == "127.0.0.1:" + std::to_string(instance->admin_port()));
    CHECK(text(row, "version") == GORING_VERSION);
    CHECK(text(row, "instance").rfind(instance->server_id() + "/", 0) == 0);
    // From the heartbeat in Redis: when the instance started.
    CHECK(number(row, "started_at") > 0);
    CHECK(number(row, "started_at") <= static_cast<int64_t>(std::time(nullptr)));
    CHECK(flag(row, "ready"));
    CHECK_FALSE(flag(row, "draining"));
  }

  // With --admin, that one instance, still as a list.
  auto one = f.via_admin(f.b, {"instances"});
  INFO(one);
  REQUIRE(one.status == 0);
  REQUIRE(size_of(one.value) == 1);
  CHECK(text(one.value.value()[0], "server_id") == "goring-b");
  CHECK(number(one.value.value()[0], "connections") == 2);

  // For people: a header, then one line per instance, columns aligned.
  auto table = goringctl({"--redis", f.redis.addr(), "instances"});
  INFO(table);
  REQUIRE(table.status == 0);
  auto lines = lines_of(table.out);
  REQUIRE(lines.size() == 3);
  CHECK(lines[0].rfind("SERVER", 0) == 0);
  auto column = lines[0].find("CONNECTIONS");
  REQUIRE(column != std::string::npos);
  CHECK(lines[1].rfind("goring-a", 0) == 0);
  CHECK(lines[1].substr(column, 2) == "1 ");
  CHECK(lines[2].rfind("goring-b", 0) == 0);
  CHECK(lines[2].substr(column, 2) == "2 ");
  CHECK(lines[1].find("ready") != std::string::npos);
}

TEST_CASE("--sentinels finds the fleet through the sentinels, before and after a failover") {
  sentinel_set redis;
  goring_process one("", "goring-a", redis.goring_env());
  ws_client alice{"alice"};
  connect_online(alice, one, redis.first_master(), user_token("alice"));
  REQUIRE(becomes_ready(one));
  auto list = redis.sentinel_list();

  auto instances = [&](const std::vector<std::string>& args,
                       const std::map<std::string, std::string>& env = {}) {
    auto run = goringctl(args, env);
    INFO(run);
    CHECK(run.status == 0);
    auto rows = rows_where(run.value.value(), "server_id", "goring-a");
    REQUIRE(rows.size() == 1);
    CHECK(number(*rows.front(), "connections") == 1);
    CHECK(text(*rows.front(), "admin") == "127.0.0.1:" + std::to_string(one.admin_port()));
  };
  // The master's name from the option or, as goring reads it, from
  // REDIS_SENTINEL_MASTER.
  instances(
    {"--sentinels", list, "--sentinel-master", sentinel_set::master_name, "--json", "instances"});
  instances({"--sentinels", list, "--json", "instances"},
            {{"REDIS_SENTINEL_MASTER", sentinel_set::master_name}});
  auto user = goringctl({"--sentinels", list, "--sentinel-master", sentinel_set::master_name,
                         "--json", "user", "alice"});
  INFO(user);
  CHECK(user.status == 0);
  CHECK(text(user.value.value(), "user_id") == "alice");

  // After a failover the sentinels name the new master, where goring
  // wrote its heartbeat again.
  redis.first_master().kill();
  REQUIRE(redis.wait_master(redis.first_replica(), std::chrono::seconds(20)));
  REQUIRE(wait_until([&] { return key_exists(redis.first_replica(), keys::server("goring-a")); },
                     std::chrono::seconds(15)));
  instances(
    {"--sentinels", list, "--sentinel-master", sentinel_set::master_name, "--json", "instances"});

  // Mistakes are said plainly.
  auto no_name = goringctl({"--sentinels", list, "instances"});
  CHECK(no_name.status == 2);
  CHECK(no_name.err.find("REDIS_SENTINEL_MASTER") != std::string::npos);
  auto unknown = goringctl({"--sentinels", list, "--sentinel-master", "nobody", "instances"});
  CHECK(unknown.status == 1);
  CHECK(unknown.err.find("nobody") != std::string::npos);
  auto both = goringctl({"--redis", redis.first_replica().addr(), "--sentinels", list, "users"});
  CHECK(both.status == 2);
}

// goring's own Cluster mode is not here yet: the fleet runs on one Redis,
// and its keys are copied into a cluster under their Cluster names
// (ws:user:{tag}), which the single Redis never holds, so what goringctl
// finds it found in the cluster.
TEST_CASE("--cluster finds instances, users and a call over the masters of a Redis Cluster") {
  redis_cluster redis_nodes;
  auto seeds = redis_nodes.seed_list();
  // Two instances whose heartbeats live on two different masters, so that
  // listing them needs a SCAN on more than one.
  std::vector<std::string> ids;
  for (char c = 'a'; c <= 'z' && ids.size() < 2; ++c) {
    std::string id = std::string{"goring-"} + c;
    if (ids.empty()
        || &master_for(redis_nodes, keys::server(id))
             != &master_for(redis_nodes, keys::server(ids.front())))
      ids.push_back(id);
  }
  REQUIRE(ids.size() == 2);
  redis_server redis;
  goring_process a(redis.addr(), ids[0]);
  goring_process b(redis.addr(), ids[1]);
  for (const auto* instance : {&a, &b})
    REQUIRE(wait_until(
      [&] {
        return redis.run({"HGET", keys::server(instance->server_id()), "admin"}).str
               == "127.0.0.1:" + std::to_string(instance->admin_port());
      },
      std::chrono::seconds(5)));
  const std::string odd_id = "a}b{c";
  ws_client alice{"alice"};
  ws_client odd{odd_id};
  ws_client bob{"bob"};
  connect_online(alice, a, redis, user_token("alice"));
  connect_online(odd, b, redis, user_token(odd_id));
  connect_online(bob, b, redis, user_token("bob"));
  auto session_id = place_call(alice, bob);

  for (const auto* instance : {&a, &b})
    copy_key(redis, keys::server(instance->server_id()), redis_nodes,
             keys::server(instance->server_id()));
  for (const auto& user : {std::string{"alice"}, odd_id, std::string{"bob"}})
    copy_key(redis, keys::user(user), redis_nodes, cluster::user_key(keys::user_prefix, user));
  copy_key(redis, keys::session(session_id), redis_nodes, keys::tagged_session(session_id));
  // The escaped tag is what Redis hashes: braces in an id do not split it.
  CHECK(cluster::user_key(keys::user_prefix, odd_id) == "ws:user:{a%7Db%7Bc}");
  CHECK(redis_nodes.keyslot(cluster::user_key(keys::user_prefix, odd_id))
        == cluster::key_slot("a%7Db%7Bc"));

  // One cluster for every step below (each takes seconds to start); the
  // slot migration, which changes it, comes last.
  auto via_cluster = [&](std::initializer_list<std::string> command) {
    std::vector<std::string> args{"--cluster", seeds, "--json"};
    args.insert(args.end(), command);
    return goringctl(args);
  };

  // Instances and users: every master's heartbeats, merged.
  {
    auto all = via_cluster({"instances"});
    INFO(all);
    REQUIRE(all.status == 0);
    CHECK(size_of(all.value) == 2);
    for (const auto* instance : {&a, &b}) {
      auto rows = rows_where(all.value.value(), "server_id", instance->server_id());
      REQUIRE(rows.size() == 1);
      CHECK(number(*rows.front(), "connections") == (instance == &a ? 1 : 2));
      CHECK(text(*rows.front(), "admin") == "127.0.0.1:" + std::to_string(instance->admin_port()));
    }
    auto users = via_cluster({"users"});
    INFO(users);
    REQUIRE(users.status == 0);
    CHECK(size_of(users.value) == 3);
    for (const auto& [user, instance] : {std::pair{std::string{"alice"}, &a}, std::pair{odd_id, &b},
                                         std::pair{std::string{"bob"}, &b}}) {
      CAPTURE(user);
      auto rows = rows_where(users.value.value(), "user_id", user);
      REQUIRE(rows.size() == 1);
      CHECK(text(*rows.front(), "server_id") == instance->server_id());
    }
    // The table is the one --redis prints.
    auto table = goringctl({"--cluster", seeds, "instances"});
    INFO(table);
    REQUIRE(table.status == 0);
    auto lines = lines_of(table.out);
    REQUIRE(lines.size() == 3);
    CHECK(lines[0].rfind("SERVER", 0) == 0);
    CHECK(lines[1].rfind(ids[0], 0) == 0);
    CHECK(lines[2].rfind(ids[1], 0) == 0);
  }

  // User: through its presence key in the cluster layout, braces and all.
  {
    for (const auto& [user, instance] :
         {std::pair{std::string{"alice"}, &a}, std::pair{odd_id, &b}}) {
      CAPTURE(user);
      auto found = via_cluster({"user", user});
      INFO(found);
      REQUIRE(found.status == 0);
      CHECK(text(found.value.value(), "user_id") == user);
      CHECK(text(found.value.value(), "server_id") == instance->server_id());
    }
    auto nobody = via_cluster({"user", "nobody"});
    INFO(nobody);
    CHECK(nobody.status == 1);
    CHECK(nobody.err.find("Redis has no ws:user:{nobody}") != std::string::npos);
  }

  // Call and calls: the session hash on its slot's master.
  {
    auto call = via_cluster({"call", session_id});
    INFO(call);
    REQUIRE(call.status == 0);
    const auto& hash = call.value.value()["redis"];
    CHECK(text(hash, "state") == "ringing");
    CHECK(text(hash, "caller_id") == "alice");
    CHECK(text(hash, "callee_id") == "bob");
    CHECK(rows_where(call.value.value()["actors"], "server_id", a.server_id()).size() == 1);
    auto calls = via_cluster({"calls"});
    INFO(calls);
    REQUIRE(calls.status == 0);
    auto rows = rows_where(calls.value.value(), "session_id", session_id);
    REQUIRE_FALSE(rows.empty());
    for (const auto* row : rows)
      CHECK(text(*row, "redis_state") == "ringing");
  }

  // Seeds: a dead one is passed over, and mistakes are said plainly.
  {
    auto port = std::to_string(free_port());
    auto past_dead =
      goringctl({"--cluster", "127.0.0.1:" + port + "," + seeds, "--json", "user", "alice"});
    INFO(past_dead);
    CHECK(past_dead.status == 0);
    auto all_dead = goringctl({"--cluster", "127.0.0.1:" + port, "instances"});
    INFO(all_dead);
    CHECK(all_dead.status == 1);
    CHECK(all_dead.err.find("cannot reach Redis at 127.0.0.1:" + port) != std::string::npos);
    // A single Redis is no cluster.
    auto not_cluster = goringctl({"--cluster", redis.addr(), "instances"});
    INFO(not_cluster);
    CHECK(not_cluster.status == 1);
    CHECK(not_cluster.err.find("CLUSTER") != std::string::npos);
    CHECK(goringctl({"--cluster", seeds, "--redis", redis.addr(), "users"}).status == 2);
    CHECK(goringctl({"--cluster", "", "users"}).status == 2);
    CHECK(goringctl({"--cluster", "127.0.0.1:99999", "users"}).status == 2);
  }

  // A stale slot map is put right by MOVED: the seed names a master that
  // does not serve alice's slot, which redirects to the one that does.
  {
    auto key = cluster::user_key(keys::user_prefix, "alice");
    auto& owner = master_for(redis_nodes, key);
    auto masters = redis_nodes.masters();
    auto wrong = std::find_if(masters.begin(), masters.end(), [&](auto* m) { return m != &owner; });
    REQUIRE(wrong != masters.end());
    CHECK((*wrong)->run({"GET", key}).str.rfind("MOVED ", 0) == 0);
    stale_seed seed{(*wrong)->port()};
    auto found = goringctl({"--cluster", seed.addr(), "--json", "user", "alice"});
    INFO(found);
    CHECK(found.status == 0);
    CHECK(text(found.value.value(), "server_id") == a.server_id());
    // The seed was asked for its map, and for nothing else.
    auto asked = seed.request();
    CHECK(asked.find("SLOTS") != std::string::npos);
    CHECK(asked.find("GET") == std::string::npos);
  }

  // A key moving to another master is followed there (ASK).
  {
    auto key = cluster::user_key(keys::user_prefix, "alice");
    auto slot = cluster::key_slot(key);
    auto& from = master_for(redis_nodes, key);
    auto masters = redis_nodes.masters();
    auto to = std::find_if(masters.begin(), masters.end(), [&](auto* m) { return m != &from; });
    REQUIRE(to != masters.end());
    redis_nodes.begin_migration(slot, from, **to);
    redis_nodes.migrate_key(key, from, **to);
    // Every node still names `from` as the slot's master; `from` answers
    // ASK for the key it no longer holds.
    CHECK(from.run({"GET", key}).str.rfind("ASK " + std::to_string(slot) + " ", 0) == 0);
    auto found = via_cluster({"user", "alice"});
    INFO(found);
    CHECK(found.status == 0);
    CHECK(text(found.value.value(), "server_id") == a.server_id());
    redis_nodes.finish_migration(slot, from, **to);
    auto after = via_cluster({"user", "alice"});
    INFO(after);
    CHECK(after.status == 0);
  }
}

TEST_CASE("--cluster logs in to the nodes with REDIS_USERNAME and REDIS_PASSWORD") {
  // The ACL user goring would log in as; the default user stays open for
  // the harness, so a wrong password is what shows that goringctl logs in.
  redis_cluster redis_nodes{{"--user", "goring", "on", ">secret", "~*", "&*", "+@all"}};
  auto seeds = redis_nodes.seed_list();
  const std::string session_id = "s-auth";
  REQUIRE_FALSE(master_for(redis_nodes, keys::tagged_session(session_id))
                  .run({"HSET", keys::tagged_session(session_id), "state", "ringing"})
                  .is_error());
  auto logged_in = goringctl({"--cluster", seeds, "--json", "call", session_id},
                             {{"REDIS_USERNAME", "goring"}, {"REDIS_PASSWORD", "secret"}});
  INFO(logged_in);
  CHECK(logged_in.status == 0);
  CHECK(text(logged_in.value.value()["redis"], "state") == "ringing");
  auto refused = goringctl({"--cluster", seeds, "call", session_id},
                           {{"REDIS_USERNAME", "goring"}, {"REDIS_PASSWORD", "wrong"}});
  INFO(refused);
  CHECK(refused.status == 1);
  CHECK(refused.err.find("refused AUTH") != std::string::npos);
}

TEST_CASE("--cluster rides out a failover under way: a killed master's slots are looked up again "
          "until its replica serves them") {
  redis_cluster redis_nodes;
  auto seeds = redis_nodes.seed_list();
  auto masters = redis_nodes.masters();
  REQUIRE(masters.size() == 3);
  // A heartbeat on each master (the admin addresses lead nowhere) and a
  // session on the first two, each written to its replica before the kill.
  std::vector<std::string> ids;
  for (char c = 'a'; c <= 'z' && ids.size() < masters.size(); ++c) {
    std::string id = std::string{"goring-"} + c;
    auto* m = &master_for(redis_nodes, keys::server(id));
    bool taken = false;
    for (auto& other : ids)
      taken = taken || &master_for(redis_nodes, keys::server(other)) == m;
    if (!taken)
      ids.push_back(id);
  }
  REQUIRE(ids.size() == masters.size());
  auto dead_admin = "127.0.0.1:" + std::to_string(free_port());
  for (auto& id : ids)
    REQUIRE_FALSE(master_for(redis_nodes, keys::server(id))
                    .run({"HSET", keys::server(id), "admin", dead_admin, "version", "test"})
                    .is_error());
  std::vector<std::string> sessions;
  for (int n = 0; sessions.size() < 2 && n < 1000; ++n) {
    auto sid = "s-failover-" + std::to_string(n);
    auto* m = &master_for(redis_nodes, keys::tagged_session(sid));
    if (sessions.empty() ? m != masters[0]
                         : m == &master_for(redis_nodes, keys::tagged_session(sessions[0])))
      continue;
    REQUIRE_FALSE(m->run({"HSET", keys::tagged_session(sid), "state", "ringing"}).is_error());
    sessions.push_back(sid);
  }
  REQUIRE(sessions.size() == 2);
  for (auto* m : masters)
    REQUIRE(m->run({"WAIT", "1", "5000"}).integer == 1);

  // A listing (SCAN on every master) right after the kill of one: the
  // first slot map still names the dead master.
  {
    auto& victim = master_for(redis_nodes, keys::tagged_session(sessions[0]));
    victim.kill();
    auto all = goringctl({"--cluster", seeds, "--json", "instances"});
    INFO(all);
    REQUIRE(all.value.valid());
    CHECK(size_of(all.value) == 3);
    for (auto& id : ids)
      CHECK(rows_where(all.value.value(), "server_id", id).size() == 1);
    CHECK(all.err.find("did not settle") == std::string::npos);
    CHECK(all.err.find("cannot reach Redis") == std::string::npos);
    REQUIRE(redis_nodes.wait_healthy());
  }
  // A key lookup right after the kill of another master.
  {
    auto& victim = master_for(redis_nodes, keys::tagged_session(sessions[1]));
    victim.kill();
    auto call = goringctl({"--cluster", seeds, "--json", "call", sessions[1]});
    INFO(call);
    // What the instances would add is out of reach (their admin addresses
    // lead nowhere); Redis's part must be whole.
    CHECK(call.err.find("did not settle") == std::string::npos);
    CHECK(call.err.find("cannot reach Redis") == std::string::npos);
    REQUIRE(call.value.valid());
    CHECK(text(call.value.value()["redis"], "state") == "ringing");
  }
}

TEST_CASE("users, user, calls, call and actors show a call placed across two instances") {
  fleet f;
  ws_client alice{"alice"};
  ws_client bob{"bob"};
  ws_client carol{"carol"};
  auto before = static_cast<int64_t>(std::time(nullptr));
  f.join(alice, f.a);
  f.join(bob, f.b);
  f.join(carol, f.b);

  auto session_id = place_call(alice, bob);
  {
    auto ringing = f.via_redis({"call", session_id});
    INFO(ringing);
    REQUIRE(ringing.status == 0);
    const auto& redis = ringing.value.value()["redis"];
    CHECK(text(redis, "state") == "ringing");
    CHECK(text(redis, "caller_id") == "alice");
    CHECK(text(redis, "callee_id") == "bob");
    auto on_a = rows_where(ringing.value.value()["actors"], "server_id", "goring-a");
    REQUIRE(on_a.size() == 1);
    CHECK(text(*on_a.front(), "state") == "ringing");
  }

  bob.accept(session_id);
  alice.expect("call.accepted");
  REQUIRE(wait_until(
    [&] {
      return f.redis.run({"HGET", keys::session(session_id), "state"}).str == "accepted";
    },
    std::chrono::seconds(3)));

  SUBCASE("users: each user on its instance, with its call") {
    auto users = f.via_redis({"users"});
    INFO(users);
    REQUIRE(users.status == 0);
    CHECK(size_of(users.value) == 3);
    auto now = static_cast<int64_t>(std::time(nullptr));
    for (auto [user, server, session] : {std::tuple{"alice", "goring-a", session_id},
                                         {"bob", "goring-b", session_id},
                                         {"carol", "goring-b", std::string{}}}) {
      CAPTURE(user);
      auto rows = rows_where(users.value.value(), "user_id", user);
      REQUIRE(rows.size() == 1);
      const auto& row = *rows.front();
      CHECK(text(row, "server_id") == server);
      CHECK(text(row, "instance").rfind(std::string{server} + "/", 0) == 0);
      CHECK(text(row, "session_id") == session);
      CHECK(number(row, "connected_at") >= before - 1);
      CHECK(number(row, "connected_at") <= now + 1);
      CHECK(text(row, "remote_addr").find("127.0.0.1") != std::string::npos);
    }

    // The table for people: USER and INSTANCE columns line up.
    auto table = goringctl({"--redis", f.redis.addr(), "users"});
    INFO(table);
    REQUIRE(table.status == 0);
    auto lines = lines_of(table.out);
    REQUIRE(lines.size() == 4);
    auto column = lines[0].find("INSTANCE");
    REQUIRE(column != std::string::npos);
    for (std::size_t i = 1; i < lines.size(); ++i) {
      CAPTURE(lines[i]);
      CHECK(lines[i].substr(column, 8).rfind("goring-", 0) == 0);
    }
  }

  SUBCASE("user: found through its presence key, or on the instance asked") {
    auto alice_row = f.via_redis({"user", "alice"});
    INFO(alice_row);
    REQUIRE(alice_row.status == 0);
    CHECK(alice_row.value.str("user_id") == "alice");
    CHECK(alice_row.value.str("server_id") == "goring-a");
    CHECK(alice_row.value.str("session_id") == session_id);

    auto carol_row = f.via_admin(f.b, {"user", "carol"});
    INFO(carol_row);
    REQUIRE(carol_row.status == 0);
    CHECK(carol_row.value.str("user_id") == "carol");
    CHECK(carol_row.value.str("session_id").empty());

    auto elsewhere = f.via_admin(f.a, {"user", "carol"});
    INFO(elsewhere);
    CHECK(elsewhere.status == 1);
    CHECK(elsewhere.err.find("carol is not connected") != std::string::npos);
    auto nobody = f.via_redis({"user", "nobody"});
    INFO(nobody);
    CHECK(nobody.status == 1);
    CHECK(nobody.err.find("nobody is not connected") != std::string::npos);
  }

  SUBCASE("calls and call: Redis's state and both instances' call actors agree") {
    auto calls = f.via_redis({"calls"});
    INFO(calls);
    REQUIRE(calls.status == 0);
    auto rows = rows_where(calls.value.value(), "session_id", session_id);
    REQUIRE(rows.size() == 2);
    std::set<std::string> servers;
    for (const auto* row : rows) {
      servers.insert(text(*row, "server_id"));
      CHECK(text(*row, "state") == "accepted");
      CHECK(text(*row, "redis_state") == "accepted");
      CHECK(text(*row, "caller_id") == "alice");
      CHECK(text(*row, "callee_id") == "bob");
      auto local = text(*row, "server_id") == "goring-a" ? "alice" : "bob";
      CHECK(strings(*row, "local_users") == std::vector<std::string>{local});
    }
    CHECK(servers == std::set<std::string>{"goring-a", "goring-b"});

    auto call = f.via_redis({"call", session_id});
    INFO(call);
    REQUIRE(call.status == 0);
    CHECK(call.value.str("session_id") == session_id);
    const auto& redis = call.value.value()["redis"];
    CHECK(text(redis, "state") == "accepted");
    CHECK(text(redis, "caller_id") == "alice");
    CHECK(text(redis, "callee_id") == "bob");
    CHECK_FALSE(text(redis, "created_at").empty());
    const auto& actors = call.value.value()["actors"];
    REQUIRE(actors.IsArray());
    CHECK(actors.Size() == 2);
    for (const auto& actor : actors.GetArray())
      CHECK(text(actor, "state") == "accepted");

    auto on_b = f.via_admin(f.b, {"call", session_id});
    INFO(on_b);
    REQUIRE(on_b.status == 0);
    CHECK(on_b.value.str("session_id") == session_id);
    CHECK(on_b.value.str("state") == "accepted");

    auto unknown = f.via_redis({"call", "no-such-session"});
    INFO(unknown);
    CHECK(unknown.status == 1);
    CHECK(unknown.err.find("no call no-such-session") != std::string::npos);
  }

  SUBCASE("actors: one call actor on each instance, the connections where their users are") {
    for (const auto* instance : {&f.a, &f.b}) {
      auto actors = f.via_admin(*instance, {"actors", "--kind", "call"});
      INFO(actors);
      REQUIRE(actors.status == 0);
      REQUIRE(size_of(actors.value) == 1);
      const auto& row = actors.value.value()[0];
      CHECK(text(row, "kind") == "call");
      CHECK(text(row, "session_id") == session_id);
      CHECK(text(row, "state") == "accepted");
      CHECK(number(row, "id") > 0);
    }
    auto connections = f.via_admin(f.b, {"actors", "--kind", "connection"});
    INFO(connections);
    REQUIRE(connections.status == 0);
    std::set<std::string> users;
    for (const auto& row : connections.value.value().GetArray()) {
      CHECK(text(row, "kind") == "connection");
      users.insert(text(row, "user_id"));
    }
    CHECK(users == std::set<std::string>{"bob", "carol"});

    auto everything = f.via_redis({"actors"});
    INFO(everything);
    REQUIRE(everything.status == 0);
    CHECK(rows_where(everything.value.value(), "kind", "bridge").size() == 2);
    CHECK(rows_where(everything.value.value(), "kind", "connection").size() == 3);
    CHECK(rows_where(everything.value.value(), "kind", "call").size() == 2);
  }
}

TEST_CASE("kick closes the right connection, on whichever instance holds it") {
  fleet f;
  ws_client alice{"alice"};
  ws_client bob{"bob"};
  ws_client carol{"carol"};
  f.join(alice, f.a);
  f.join(bob, f.b);
  f.join(carol, f.b);

  // Asked of the wrong instance, nothing happens.
  auto wrong = f.via_admin(f.a, {"kick", "bob"});
  INFO(wrong);
  CHECK(wrong.status == 1);
  CHECK(wrong.err.find("bob is not connected") != std::string::npos);
  bob.expect_nothing(200ms);

  auto kicked = f.via_redis({"kick", "bob"});
  INFO(kicked);
  REQUIRE(kicked.status == 0);
  CHECK(kicked.value.str("user_id") == "bob");
  CHECK(kicked.value.str("server_id") == "goring-b");
  auto closed = bob.expect_close();
  REQUIRE(closed);
  CHECK(closed->code == 4002);
  CHECK(closed->reason == "kicked by operator");
  alice.expect_nothing();
  carol.expect_nothing();
  CHECK(alice.is_open());
  CHECK(carol.is_open());

  CHECK(
    wait_until([&] { return !key_exists(f.redis, keys::user("bob")); }, std::chrono::seconds(3)));
  auto again = f.via_redis({"kick", "bob"});
  INFO(again);
  CHECK(again.status == 1);
  CHECK(again.err.find("bob is not connected") != std::string::npos);
  auto users = f.via_redis({"users"});
  INFO(users);
  REQUIRE(users.status == 0);
  CHECK(size_of(users.value) == 2);
  CHECK(rows_where(users.value.value(), "user_id", "bob").empty());
}

TEST_CASE("drain turns that instance's readiness off and leaves the other ready") {
  fleet f;
  REQUIRE(becomes_ready(f.a));
  REQUIRE(becomes_ready(f.b));

  auto level = f.via_redis({"log-level", "info"});
  INFO(level);
  CHECK(level.status == 0);
  CHECK(size_of(level.value) == 2);
  CHECK(f.via_redis({"log-level", "loud"}).status == 2);

  CHECK(f.via_redis({"drain"}).status == 2);
  auto unknown = f.via_redis({"drain", "goring-z"});
  CHECK(unknown.status == 1);
  CHECK(unknown.err.find("goring-z") != std::string::npos);

  auto drained = f.via_redis({"drain", "goring-b"});
  INFO(drained);
  REQUIRE(drained.status == 0);
  CHECK(drained.value.str("server_id") == "goring-b");
  auto ready_b = http_get(f.b.admin_port(), "/ready");
  CHECK(ready_b.status == 503);
  CHECK(ready_b.body == "draining");
  CHECK(http_get(f.a.admin_port(), "/ready").status == 200);

  auto instances = f.via_redis({"instances"});
  INFO(instances);
  auto b_rows = rows_where(instances.value.value(), "server_id", "goring-b");
  REQUIRE(b_rows.size() == 1);
  CHECK(flag(*b_rows.front(), "draining"));

  // With --admin, the instance it names.
  auto direct = goringctl({"--admin", fleet::admin_url(f.a), "drain"});
  INFO(direct);
  CHECK(direct.status == 0);
  CHECK(http_get(f.a.admin_port(), "/ready").status == 503);
}

TEST_CASE("token mints a token goring accepts, with the claims asked for") {
  redis_server redis;
  goring_process goring{redis.addr()};

  auto minted = goringctl({"token", "--secret", test_jwt_secret, "--user", "dave", "--name", "Dave",
                           "--username", "dave.h", "--ttl", "10m", "--json"});
  INFO(minted);
  REQUIRE(minted.status == 0);
  auto token = minted.value.str("token");
  REQUIRE_FALSE(token.empty());
  auto expires_at = number(minted.value.value(), "expires_at");
  auto now = static_cast<int64_t>(std::time(nullptr));
  CHECK(expires_at >= now + 598);
  CHECK(expires_at <= now + 601);

  ws_client dave{"dave"};
  ws_client erin{"erin"};
  connect_online(dave, goring, redis, token);
  connect_online(erin, goring, redis, user_token("erin"));
  dave.start_call("erin");
  auto ring = erin.expect("call.ring");
  auto caller = ring.at("caller_info");
  CHECK(caller.str("user_id") == "dave");
  CHECK(caller.str("name") == "Dave");
  CHECK(caller.str("username") == "dave.h");

  // Without --json, the token alone on one line; the secret may come from
  // JWT_SECRET as goring's does.
  auto plain = goringctl({"token", "--user", "frank"}, {{"JWT_SECRET", test_jwt_secret}});
  INFO(plain);
  REQUIRE(plain.status == 0);
  auto lines = lines_of(plain.out);
  REQUIRE(lines.size() == 1);
  ws_client frank{"frank"};
  CHECK(frank.try_connect(goring.port(), lines[0]) == 101);

  auto forged = goringctl({"token", "--secret", "not-the-secret", "--user", "mallory"});
  REQUIRE(forged.status == 0);
  ws_client mallory{"mallory"};
  CHECK(mallory.try_connect(goring.port(), lines_of(forged.out).at(0)) == 401);

  auto no_user = goringctl({"token", "--secret", "s"});
  CHECK(no_user.status == 2);
  CHECK(no_user.err.find("--user") != std::string::npos);
  auto no_secret = goringctl({"token", "--user", "u"});
  CHECK(no_secret.status == 2);
  CHECK(no_secret.err.find("--secret") != std::string::npos);
  auto bad_ttl = goringctl({"token", "--secret", "s", "--user", "u", "--ttl", "soon"});
  CHECK(bad_ttl.status == 2);
  CHECK(bad_ttl.err.find("--ttl") != std::string::npos);
}

TEST_CASE("token signs with HS384/HS512 and carries iss and aud, from options or the server's "
          "variables") {
  redis_server redis;
  goring_process goring{redis.addr(),
                        "goring-1",
                        {{"JWT_ALGORITHMS", "HS512"},
                         {"JWT_ISSUER", "https://auth.example"},
                         {"JWT_AUDIENCE", "goring"}}};
  auto connects = [&](const std::string& user, const ctl_run& minted) {
    INFO(minted);
    REQUIRE(minted.status == 0);
    ws_client client{user};
    return client.try_connect(goring.port(), lines_of(minted.out).at(0));
  };
  // The server's own variables, as goring reads them.
  CHECK(
    connects("gina", goringctl({"token", "--user", "gina"}, {{"JWT_SECRET", test_jwt_secret},
                                                             {"JWT_ALGORITHMS", "RS256, HS512"},
                                                             {"JWT_ISSUER", "https://auth.example"},
                                                             {"JWT_AUDIENCE", "goring"}}))
    == 101);
  // Options.
  CHECK(connects("hank",
                 goringctl({"token", "--secret", test_jwt_secret, "--user", "hank", "--alg",
                            "HS512", "--issuer", "https://auth.example", "--audience", "goring"}))
        == 101);
  // What this server does not accept: HS256, no iss, another aud.
  CHECK(connects("ivan", goringctl({"token", "--secret", test_jwt_secret, "--user", "ivan",
                                    "--issuer", "https://auth.example", "--audience", "goring"}))
        == 401);
  CHECK(connects("jill", goringctl({"token", "--secret", test_jwt_secret, "--user", "jill", "--alg",
                                    "HS512", "--audience", "goring"}))
        == 401);
  // An empty option is no claim, even with the variable set.
  CHECK(connects("lena", goringctl({"token", "--user", "lena", "--alg", "HS512", "--issuer", ""},
                                   {{"JWT_SECRET", test_jwt_secret},
                                    {"JWT_ISSUER", "https://auth.example"},
                                    {"JWT_AUDIENCE", "goring"}}))
        == 401);
  CHECK(connects("kate", goringctl({"token", "--secret", test_jwt_secret, "--user", "kate", "--alg",
                                    "HS512", "--issuer", "https://auth.example", "--audience",
                                    "someone-else"}))
        == 401);
  auto bad_alg = goringctl({"token", "--secret", "s", "--user", "u", "--alg", "RS256"});
  CHECK(bad_alg.status == 2);
  CHECK(bad_alg.err.find("--alg") != std::string::npos);
}

TEST_CASE("token puts the user id in JWT_USER_CLAIM's claim, from the option or the variable") {
  redis_server redis;
  goring_process goring{redis.addr(), "goring-1", {{"JWT_USER_CLAIM", "sub"}}};
  auto connects = [&](const std::string& user, const ctl_run& minted) {
    INFO(minted);
    REQUIRE(minted.status == 0);
    ws_client client{user};
    return client.try_connect(goring.port(), lines_of(minted.out).at(0));
  };
  CHECK(connects("mia", goringctl({"token", "--secret", test_jwt_secret, "--user", "mia",
                                   "--user-claim", "sub"}))
        == 101);
  CHECK(connects("noah", goringctl({"token", "--user", "noah"},
                                   {{"JWT_SECRET", test_jwt_secret}, {"JWT_USER_CLAIM", "sub"}}))
        == 101);
  // In `hash`, where this server does not look.
  CHECK(connects("olga", goringctl({"token", "--secret", test_jwt_secret, "--user", "olga"}))
        == 401);
}

TEST_CASE("goringctl fails with a clear message on bad arguments and unreachable instances") {
  auto unknown = goringctl({"frobnicate"});
  CHECK(unknown.status == 2);
  CHECK(unknown.err == "goringctl: unknown command 'frobnicate' (see goringctl --help)\n");
  CHECK(unknown.out.empty());

  auto bare = goringctl({});
  CHECK(bare.status == 2);
  CHECK(bare.err.find("Usage: goringctl") != std::string::npos);

  CHECK(goringctl({"user"}).status == 2);
  CHECK(goringctl({"kick", "a", "b"}).status == 2);
  auto stray = goringctl({"users", "--kind", "call"});
  CHECK(stray.status == 2);
  CHECK(stray.err.find("unknown option --kind for 'users'") != std::string::npos);
  auto both = goringctl({"--admin", "127.0.0.1:1", "--redis", "127.0.0.1:1", "users"});
  CHECK(both.status == 2);
  CHECK(goringctl({"--admin", "https://127.0.0.1:9090", "users"}).status == 2);

  // --help on every command, and help for each.
  for (const char* command : {"actors", "users", "user", "calls", "call", "instances", "kick",
                              "drain", "log-level", "token"}) {
    CAPTURE(command);
    auto help = goringctl({command, "--help"});
    CHECK(help.status == 0);
    CHECK(help.out.find(std::string{"Usage: goringctl"}) != std::string::npos);
    CHECK(help.out.find(command) != std::string::npos);
  }
  CHECK(goringctl({"--help"}).status == 0);

  auto port = std::to_string(free_port());
  auto refused = goringctl({"--admin", "http://127.0.0.1:" + port, "instances"});
  INFO(refused);
  CHECK(refused.status == 1);
  CHECK(refused.err.rfind("goringctl: cannot reach admin API at 127.0.0.1:" + port, 0) == 0);
  CHECK(lines_of(refused.err).size() == 1);
  CHECK(refused.out.empty());

  auto no_redis = goringctl({"--redis", "127.0.0.1:" + port, "users"});
  INFO(no_redis);
  CHECK(no_redis.status == 1);
  CHECK(no_redis.err.rfind("goringctl: cannot reach Redis at 127.0.0.1:" + port, 0) == 0);

  // An admin port that accepts but never answers: the request gives up.
  int silent = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(silent >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(silent, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(::listen(silent, 4) == 0);
  socklen_t len = sizeof addr;
  ::getsockname(silent, reinterpret_cast<sockaddr*>(&addr), &len);
  auto started = std::chrono::steady_clock::now();
  auto hung =
    goringctl({"--admin", "127.0.0.1:" + std::to_string(ntohs(addr.sin_port)), "instances"});
  auto took = std::chrono::steady_clock::now() - started;
  ::close(silent);
  INFO(hung);
  CHECK(hung.status == 1);
  CHECK(hung.err.find("did not answer within 5 s") != std::string::npos);
  CHECK(took < std::chrono::seconds(8));
}

TEST_CASE("with ADMIN_TOKEN set, goringctl needs the token and works with it") {
  fleet f{{{"ADMIN_TOKEN", "s3cret-admin"}}};

  auto without = f.via_admin(f.a, {"instances"});
  INFO(without);
  CHECK(without.status == 1);
  CHECK(without.err.find("requires a token (401)") != std::string::npos);
  CHECK(without.err.find("GORING_ADMIN_TOKEN") != std::string::npos);
  CHECK(without.out.empty());

  auto wrong = f.via_admin(f.a, {"--token", "guess", "instances"});
  INFO(wrong);
  CHECK(wrong.status == 1);
  CHECK(wrong.err.find("refused the token (401)") != std::string::npos);

  auto from_env = f.via_admin(f.a, {"instances"}, {{"GORING_ADMIN_TOKEN", "s3cret-admin"}});
  INFO(from_env);
  CHECK(from_env.status == 0);
  CHECK(size_of(from_env.value) == 1);

  auto fleet_wide = f.via_redis({"--token", "s3cret-admin", "instances"});
  INFO(fleet_wide);
  CHECK(fleet_wide.status == 0);
  CHECK(size_of(fleet_wide.value) == 2);

  // Without it, each instance is reported; what Redis knows still shows.
  auto refused = f.via_redis({"instances"});
  INFO(refused);
  CHECK(refused.status == 1);
  CHECK(lines_of(refused.err).size() == 2);
  CHECK(size_of(refused.value) == 2);
  for (const auto& row : refused.value.value().GetArray())
    CHECK(text(row, "error").find("requires a token") != std::string::npos);
}
