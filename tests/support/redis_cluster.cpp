#include "tests/support/redis_cluster.hpp"

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

namespace goring::test {

namespace {

using namespace std::chrono_literals;
using reply_kind = redis::reply::kind;

constexpr std::size_t node_count = 6;

/// True when `program` is an executable file in a directory of PATH.
bool on_path(const std::string& program) {
  const char* path = std::getenv("PATH");
  std::istringstream dirs{path != nullptr ? path : "/usr/bin:/bin"};
  std::string dir;
  while (std::getline(dirs, dir, ':'))
    if (!dir.empty() && ::access((dir + "/" + program).c_str(), X_OK) == 0)
      return true;
  return false;
}

redis_options cluster_node(const std::vector<std::string>& node_args) {
  redis_options o;
  // The bus port is given: port + 10000 may lie above 65535 for the
  // ephemeral ports free_port() hands out.
  o.args = {"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
            "--cluster-node-timeout", std::to_string(redis_cluster::node_timeout_ms),
            "--cluster-replica-validity-factor", "0", "--cluster-port", std::to_string(free_port()),
            // A replica takes the full copy straight over the socket, at once.
            "--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0"};
  o.args.insert(o.args.end(), node_args.begin(), node_args.end());
  return o;
}

std::string read_file(const std::string& path) {
  std::ifstream in{path};
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

/// CLUSTER SLOTS parsed; empty on an error or an odd reply.
std::vector<slot_range> parse_slots(const redis::reply& r) {
  std::vector<slot_range> out;
  if (r.type != reply_kind::array)
    return out;
  for (auto& range : r.elements) {
    if (range.type != reply_kind::array || range.elements.size() < 3
        || range.elements[2].type != reply_kind::array || range.elements[2].elements.size() < 2)
      return {};
    slot_range s;
    s.first = static_cast<uint16_t>(range.elements[0].integer);
    s.last = static_cast<uint16_t>(range.elements[1].integer);
    s.master_port = static_cast<uint16_t>(range.elements[2].elements[1].integer);
    out.push_back(s);
  }
  std::sort(out.begin(), out.end(),
            [](const slot_range& a, const slot_range& b) { return a.first < b.first; });
  return out;
}

bool covers_all(const std::vector<slot_range>& ranges) {
  uint32_t next = 0;
  for (auto& r : ranges) {
    if (r.first != next)
      return false;
    next = uint32_t{r.last} + 1;
  }
  return next == 16384;
}

bool alive(redis_server& node) {
  return node.pid() > 0;
}

} // namespace

std::string info_value(redis_server& server, const std::string& section, const std::string& field) {
  auto r =
    section == "cluster-info" ? server.run({"CLUSTER", "INFO"}) : server.run({"INFO", section});
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

redis_cluster::redis_cluster(std::vector<std::string> node_args) {
  if (!on_path("redis-cli"))
    throw std::runtime_error("redis-cli is not on PATH: the cluster tests need it to create the "
                             "cluster (Debian package redis-tools)");
  char dir[] = "/tmp/goring_cluster_XXXXXX";
  if (::mkdtemp(dir) == nullptr)
    throw std::runtime_error("mkdtemp() failed");
  dir_ = dir;
  try {
    create_cluster(node_args);
  } catch (...) {
    // No destructor runs for a constructor that throws: stop what started.
    nodes_.clear();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
    throw;
  }
}

void redis_cluster::create_cluster(const std::vector<std::string>& node_args) {
  for (std::size_t i = 0; i < node_count; ++i)
    nodes_.push_back(std::make_unique<redis_server>(cluster_node(node_args)));

  std::vector<std::string> argv{"redis-cli", "--cluster", "create"};
  for (auto& s : seeds())
    argv.push_back(s);
  for (const char* arg : {"--cluster-replicas", "1", "--cluster-yes"})
    argv.emplace_back(arg);
  auto log = dir_ + "/create.log";
  child_process create{argv, {}, log};
  bool exited = wait_until([&] { return !create.running(); }, 30s);
  int status = create.stop(SIGKILL, 2s);
  if (!exited || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw std::runtime_error(std::string{"redis-cli --cluster create "}
                             + (exited ? "failed" : "took over 30 s") + ":\n" + read_file(log));
  if (!wait_healthy(30s))
    throw std::runtime_error("the cluster did not reach cluster_state:ok with its replicas in "
                             "sync within 30 s");
}

redis_cluster::~redis_cluster() {
  // Each redis_server kills its own process (SIGKILL, by PID) and removes
  // its directory.
  nodes_.clear();
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

std::vector<redis_server*> redis_cluster::nodes() {
  std::vector<redis_server*> out;
  for (auto& n : nodes_)
    out.push_back(n.get());
  return out;
}

redis_server* redis_cluster::node_on(uint16_t port) {
  for (auto& n : nodes_)
    if (n->port() == port)
      return n.get();
  return nullptr;
}

std::vector<std::string> redis_cluster::seeds() const {
  std::vector<std::string> out;
  for (auto& n : nodes_)
    out.push_back(n->addr());
  return out;
}

std::string redis_cluster::seed_list() const {
  std::string out;
  for (auto& s : seeds())
    out += (out.empty() ? "" : ",") + s;
  return out;
}

redis::reply redis_cluster::run_on_any(const std::vector<std::string>& argv) {
  redis::reply last = redis::reply::make_error("no live node");
  for (auto& n : nodes_) {
    if (!alive(*n))
      continue;
    last = n->run(argv);
    if (!(last.is_error() && (last.str == "not connected" || last.str == "connection lost")))
      return last;
  }
  return last;
}

std::vector<slot_range> redis_cluster::slots() {
  return parse_slots(run_on_any({"CLUSTER", "SLOTS"}));
}

redis_server* redis_cluster::master_of(uint16_t slot) {
  for (auto& r : slots())
    if (r.first <= slot && slot <= r.last)
      return node_on(r.master_port);
  return nullptr;
}

std::vector<redis_server*> redis_cluster::masters() {
  std::vector<redis_server*> out;
  for (auto& r : slots())
    if (auto* n = node_on(r.master_port);
        n != nullptr && alive(*n) && std::find(out.begin(), out.end(), n) == out.end())
      out.push_back(n);
  std::sort(out.begin(), out.end(),
            [](redis_server* a, redis_server* b) { return a->port() < b->port(); });
  return out;
}

uint16_t redis_cluster::keyslot(const std::string& key) {
  auto r = run_on_any({"CLUSTER", "KEYSLOT", key});
  if (r.type != reply_kind::integer)
    throw std::runtime_error("CLUSTER KEYSLOT failed: " + r.str);
  return static_cast<uint16_t>(r.integer);
}

std::string redis_cluster::node_id(redis_server& node) {
  auto r = node.run({"CLUSTER", "MYID"});
  if (r.type != reply_kind::string)
    throw std::runtime_error("CLUSTER MYID failed on " + node.addr() + ": " + r.str);
  return r.str;
}

bool redis_cluster::wait_healthy(std::chrono::milliseconds timeout) {
  return wait_until(
    [&] {
      std::vector<slot_range> first;
      bool have_first = false;
      for (auto& n : nodes_) {
        if (!alive(*n))
          continue;
        if (info_value(*n, "cluster-info", "cluster_state") != "ok")
          return false;
        auto ranges = parse_slots(n->run({"CLUSTER", "SLOTS"}));
        if (!covers_all(ranges))
          return false;
        for (auto& r : ranges) {
          auto* m = node_on(r.master_port);
          if (m == nullptr || !alive(*m))
            return false;
        }
        if (!have_first) {
          first = ranges;
          have_first = true;
        } else if (ranges.size() != first.size()
                   || !std::equal(ranges.begin(), ranges.end(), first.begin(),
                                  [](const slot_range& a, const slot_range& b) {
                                    return a.first == b.first && a.last == b.last
                                           && a.master_port == b.master_port;
                                  })) {
          return false;
        }
        if (info_value(*n, "replication", "role") == "slave"
            && info_value(*n, "replication", "master_link_status") != "up")
          return false;
      }
      return have_first;
    },
    timeout);
}

redis_server* redis_cluster::kill_master(redis_server& master, std::chrono::milliseconds timeout) {
  std::vector<uint16_t> owned;
  for (auto& r : slots())
    if (r.master_port == master.port())
      owned.push_back(r.first);
  if (owned.empty())
    throw std::runtime_error(master.addr() + " owns no slots: not a master");
  master.kill();
  redis_server* successor = nullptr;
  bool taken = wait_until(
    [&] {
      successor = master_of(owned.front());
      return successor != nullptr && successor != &master && alive(*successor);
    },
    timeout);
  if (!taken || !wait_healthy(timeout))
    return nullptr;
  return successor;
}

void redis_cluster::begin_migration(uint16_t slot, redis_server& from, redis_server& to) {
  auto s = std::to_string(slot);
  auto r = to.run({"CLUSTER", "SETSLOT", s, "IMPORTING", node_id(from)});
  if (r.is_error())
    throw std::runtime_error("SETSLOT IMPORTING failed: " + r.str);
  r = from.run({"CLUSTER", "SETSLOT", s, "MIGRATING", node_id(to)});
  if (r.is_error())
    throw std::runtime_error("SETSLOT MIGRATING failed: " + r.str);
}

void redis_cluster::migrate_key(const std::string& key, redis_server& from, redis_server& to) {
  auto r = from.run({"MIGRATE", "127.0.0.1", std::to_string(to.port()), key, "0", "5000"});
  if (r.is_error())
    throw std::runtime_error("MIGRATE " + key + " failed: " + r.str);
}

void redis_cluster::finish_migration(uint16_t slot, redis_server& from, redis_server& to) {
  auto s = std::to_string(slot);
  for (;;) {
    auto keys = from.run({"CLUSTER", "GETKEYSINSLOT", s, "100"});
    if (keys.type != reply_kind::array || keys.elements.empty())
      break;
    std::vector<std::string> argv{"MIGRATE", "127.0.0.1", std::to_string(to.port()), "", "0",
                                  "5000",    "KEYS"};
    for (auto& k : keys.elements)
      argv.push_back(k.str);
    auto r = from.run(argv);
    if (r.is_error())
      throw std::runtime_error("MIGRATE of slot " + s + " failed: " + r.str);
  }
  auto to_id = node_id(to);
  // The target first, then the source, then everyone else (the order the
  // Cluster specification gives).
  std::vector<redis_server*> order{&to, &from};
  for (auto* m : masters())
    if (m != &to && m != &from)
      order.push_back(m);
  for (auto* m : order) {
    auto r = m->run({"CLUSTER", "SETSLOT", s, "NODE", to_id});
    if (r.is_error())
      throw std::runtime_error("SETSLOT NODE on " + m->addr() + " failed: " + r.str);
  }
  if (!wait_until([&] { return agreed_owner(slot, to.port()); }, 20s))
    throw std::runtime_error("the nodes did not agree on the new owner of slot " + s
                             + " within 20 s");
}

void redis_cluster::move_slot(uint16_t slot, redis_server& from, redis_server& to) {
  begin_migration(slot, from, to);
  finish_migration(slot, from, to);
}

bool redis_cluster::agreed_owner(uint16_t slot, uint16_t port) {
  for (auto& n : nodes_) {
    if (!alive(*n))
      continue;
    bool found = false;
    for (auto& r : parse_slots(n->run({"CLUSTER", "SLOTS"})))
      if (r.first <= slot && slot <= r.last)
        found = r.master_port == port;
    if (!found)
      return false;
  }
  return true;
}

} // namespace goring::test
