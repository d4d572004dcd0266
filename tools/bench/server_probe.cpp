#include "tools/bench/server_probe.hpp"

#include <fstream>
#include <sstream>
#include <stdexcept>

#include <hiredis/hiredis.h>
#include <unistd.h>

namespace goring::bench {

namespace {

/// The text of an INFO section, "" when Redis does not answer.
std::string info(redisContext* ctx, const char* section) {
  auto* reply = static_cast<redisReply*>(redisCommand(ctx, "INFO %s", section));
  if (reply == nullptr)
    return {};
  std::string text;
  if (reply->type == REDIS_REPLY_STRING)
    text.assign(reply->str, reply->len);
  freeReplyObject(reply);
  return text;
}

} // namespace

std::optional<process_sample> read_process(pid_t pid) {
  process_sample sample;
  sample.pid = pid;
  std::ifstream stat_file{"/proc/" + std::to_string(pid) + "/stat"};
  std::string stat;
  if (!std::getline(stat_file, stat))
    return std::nullopt;
  // The command name may hold spaces and parentheses: fields are counted
  // from the last ')', after which comes field 3 (state).
  auto close = stat.rfind(')');
  if (close == std::string::npos)
    return std::nullopt;
  std::istringstream fields{stat.substr(close + 1)};
  std::string field;
  uint64_t utime = 0;
  uint64_t stime = 0;
  for (int index = 3; index <= 15 && fields >> field; ++index) {
    if (index == 14)
      utime = std::stoull(field);
    else if (index == 15)
      stime = std::stoull(field);
  }
  sample.cpu_seconds =
    static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
  std::ifstream status_file{"/proc/" + std::to_string(pid) + "/status"};
  std::string line;
  while (std::getline(status_file, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      sample.rss_kib = std::stoull(line.substr(6));
      break;
    }
  }
  return sample;
}

server_probe::server_probe(std::vector<pid_t> pids, const std::string& redis_addr,
                           const std::string& redis_password)
  : pids_(std::move(pids)) {
  for (auto pid : pids_)
    if (!read_process(pid))
      throw std::runtime_error("cannot read /proc/" + std::to_string(pid)
                               + "/stat: no such process, or not ours to read");
  if (redis_addr.empty())
    return;
  auto colon = redis_addr.rfind(':');
  if (colon == std::string::npos)
    throw std::runtime_error("--redis wants HOST:PORT, not " + redis_addr);
  auto host = redis_addr.substr(0, colon);
  int port = std::stoi(redis_addr.substr(colon + 1));
  timeval timeout{2, 0};
  redis_ = redisConnectWithTimeout(host.c_str(), port, timeout);
  if (redis_ == nullptr || redis_->err) {
    std::string why = redis_ ? redis_->errstr : "out of memory";
    if (redis_)
      redisFree(redis_);
    redis_ = nullptr;
    throw std::runtime_error("cannot connect to Redis at " + redis_addr + ": " + why);
  }
  redisSetTimeout(redis_, timeout);
  if (!redis_password.empty()) {
    auto* reply = static_cast<redisReply*>(redisCommand(redis_, "AUTH %s", redis_password.c_str()));
    bool ok = reply != nullptr && reply->type != REDIS_REPLY_ERROR;
    if (reply)
      freeReplyObject(reply);
    if (!ok) {
      redisFree(redis_);
      redis_ = nullptr;
      throw std::runtime_error("Redis at " + redis_addr + " refused the password");
    }
  }
  if (!read_redis()) {
    redisFree(redis_);
    redis_ = nullptr;
    throw std::runtime_error("Redis at " + redis_addr + " does not answer INFO");
  }
}

server_probe::~server_probe() {
  if (redis_)
    redisFree(redis_);
}

server_snapshot server_probe::take() {
  server_snapshot snap;
  snap.at = std::chrono::steady_clock::now();
  for (auto pid : pids_) {
    auto sample = read_process(pid);
    snap.processes.push_back(sample ? *sample : process_sample{pid, 0, 0});
  }
  if (redis_)
    snap.redis = read_redis();
  return snap;
}

std::optional<redis_sample> server_probe::read_redis() {
  auto stats = info(redis_, "commandstats");
  auto clients = info(redis_, "clients");
  if (stats.empty() && clients.empty())
    return std::nullopt;
  redis_sample sample;
  std::istringstream lines{stats};
  std::string line;
  // cmdstat_evalsha:calls=12,usec=345,usec_per_call=28.75,...
  while (std::getline(lines, line)) {
    if (line.rfind("cmdstat_", 0) != 0)
      continue;
    auto colon = line.find(':');
    auto calls = line.find("calls=", colon);
    if (colon == std::string::npos || calls == std::string::npos)
      continue;
    sample.calls[line.substr(8, colon - 8)] = std::stoull(line.substr(calls + 6));
  }
  std::istringstream client_lines{clients};
  while (std::getline(client_lines, line))
    if (line.rfind("connected_clients:", 0) == 0)
      sample.connected_clients = std::stoull(line.substr(18));
  return sample;
}

server_delta operator-(const server_snapshot& after, const server_snapshot& before) {
  server_delta d;
  d.seconds = std::chrono::duration<double>(after.at - before.at).count();
  for (std::size_t i = 0; i < after.processes.size() && i < before.processes.size(); ++i) {
    process_sample p = after.processes[i];
    p.cpu_seconds -= before.processes[i].cpu_seconds;
    d.cpu_seconds += p.cpu_seconds;
    d.processes.push_back(p);
  }
  if (after.redis && before.redis) {
    d.has_redis = true;
    for (const auto& [command, calls] : after.redis->calls) {
      // INFO is what the bench itself sends to take these snapshots.
      if (command == "info")
        continue;
      auto it = before.redis->calls.find(command);
      auto delta = calls - (it == before.redis->calls.end() ? 0 : it->second);
      if (delta == 0)
        continue;
      d.redis_by_command[command] = delta;
      d.redis_commands += delta;
    }
    d.redis_clients = after.redis->connected_clients > 0 ? after.redis->connected_clients - 1 : 0;
  }
  return d;
}

} // namespace goring::bench
