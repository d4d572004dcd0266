#include "tools/goringctl/redis_directory.hpp"

#include <algorithm>
#include <cstdlib>

#include <hiredis/hiredis.h>

#include "redis/keys.hpp"
#include "tools/goringctl/admin_client.hpp"
#include "tools/goringctl/error.hpp"

namespace goringctl {

namespace keys = goring::redis::keys;

namespace {

timeval command_timeout() {
  return timeval{static_cast<time_t>(request_timeout.count()), 0};
}

std::string reply_text(const redisReply* reply) {
  return std::string{reply->str, reply->len};
}

} // namespace

void redis_directory::reply_deleter::operator()(redisReply* reply) const {
  freeReplyObject(reply);
}

redis_directory::redis_directory(const std::string& addr) : addr_(addr) {
  std::string host = addr;
  int port = 6379;
  if (auto colon = addr.rfind(':'); colon != std::string::npos) {
    host = addr.substr(0, colon);
    auto port_text = addr.substr(colon + 1);
    if (port_text.empty() || port_text.size() > 5
        || port_text.find_first_not_of("0123456789") != std::string::npos
        || std::stoi(port_text) == 0 || std::stoi(port_text) > 65535)
      throw usage_error("Redis address '" + addr + "' has an invalid port");
    port = std::stoi(port_text);
  }
  if (host.empty())
    throw usage_error("Redis address '" + addr + "' must be HOST:PORT");
  ctx_ = redisConnectWithTimeout(host.c_str(), port, command_timeout());
  if (ctx_ == nullptr)
    throw error{"cannot reach Redis at " + addr + ": out of memory"};
  // A constructor that throws runs no destructor: the context is freed here
  // (LeakSanitizer found it leaking when Redis was unreachable).
  try {
    if (ctx_->err != 0)
      throw error{"cannot reach Redis at " + addr + ": " + ctx_->errstr};
    redisSetTimeout(ctx_, command_timeout());
    if (const char* password = std::getenv("REDIS_PASSWORD"); password && *password)
      run({"AUTH", password});
  } catch (...) {
    redisFree(ctx_);
    ctx_ = nullptr;
    throw;
  }
}

redis_directory::~redis_directory() {
  if (ctx_ != nullptr)
    redisFree(ctx_);
}

redis_directory::reply_ptr redis_directory::run(const std::vector<std::string>& argv) {
  std::vector<const char*> args;
  std::vector<size_t> lengths;
  for (const auto& arg : argv) {
    args.push_back(arg.data());
    lengths.push_back(arg.size());
  }
  reply_ptr reply{static_cast<redisReply*>(
    redisCommandArgv(ctx_, static_cast<int>(args.size()), args.data(), lengths.data()))};
  if (!reply)
    throw error{"Redis at " + addr_ + " failed on " + argv.front() + ": " + ctx_->errstr};
  if (reply->type == REDIS_REPLY_ERROR)
    throw error{"Redis at " + addr_ + " refused " + argv.front() + ": " + reply_text(reply.get())};
  return reply;
}

hash_fields redis_directory::hgetall(const std::string& key) {
  auto reply = run({"HGETALL", key});
  hash_fields fields;
  if (reply->type != REDIS_REPLY_ARRAY)
    return fields;
  for (size_t i = 0; i + 1 < reply->elements; i += 2)
    fields.emplace_back(reply_text(reply->element[i]), reply_text(reply->element[i + 1]));
  return fields;
}

std::vector<instance_entry> redis_directory::instances() {
  std::vector<std::string> server_ids;
  std::string cursor = "0";
  auto pattern = keys::server("*");
  do {
    auto reply = run({"SCAN", cursor, "MATCH", pattern, "COUNT", "1000"});
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2)
      throw error{"Redis at " + addr_ + " answered SCAN with an unexpected reply"};
    cursor = reply_text(reply->element[0]);
    const auto* found = reply->element[1];
    for (size_t i = 0; i < found->elements; ++i)
      server_ids.push_back(reply_text(found->element[i]).substr(keys::server_prefix.size()));
  } while (cursor != "0");
  // SCAN may return a key twice.
  std::sort(server_ids.begin(), server_ids.end());
  server_ids.erase(std::unique(server_ids.begin(), server_ids.end()), server_ids.end());
  std::vector<instance_entry> out;
  for (const auto& id : server_ids)
    // A heartbeat may expire between SCAN and HGETALL: that instance is gone.
    if (auto entry = instance(id))
      out.push_back(std::move(*entry));
  return out;
}

std::optional<instance_entry> redis_directory::instance(const std::string& server_id) {
  auto fields = hgetall(keys::server(server_id));
  if (fields.empty())
    return std::nullopt;
  instance_entry entry;
  entry.server_id = server_id;
  for (const auto& [name, value] : fields) {
    if (name == "instance")
      entry.instance = value;
    else if (name == "version")
      entry.version = value;
    else if (name == "started_at")
      entry.started_at = value;
    else if (name == "admin")
      entry.admin = value;
  }
  return entry;
}

std::optional<std::string> redis_directory::owner_server(const std::string& user_id) {
  auto reply = run({"GET", keys::user(user_id)});
  if (reply->type != REDIS_REPLY_STRING)
    return std::nullopt;
  // The owner token is "server_id/run-nonce/connection-number".
  auto owner = reply_text(reply.get());
  return owner.substr(0, owner.find('/'));
}

hash_fields redis_directory::session(const std::string& session_id) {
  return hgetall(keys::session(session_id));
}

} // namespace goringctl
