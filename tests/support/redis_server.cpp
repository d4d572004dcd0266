#include "tests/support/redis_server.hpp"

#include <csignal>
#include <stdexcept>

#include <hiredis/hiredis.h>

namespace goring::test {

redis::reply to_reply(const void* raw) {
  auto* r = static_cast<const redisReply*>(raw);
  redis::reply out;
  if (r == nullptr)
    return redis::reply::make_error("no reply");
  switch (r->type) {
    case REDIS_REPLY_INTEGER:
      out.type = redis::reply::kind::integer;
      out.integer = r->integer;
      break;
    case REDIS_REPLY_STRING:
      out.type = redis::reply::kind::string;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = redis::reply::kind::status;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = redis::reply::kind::error;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ARRAY:
      out.type = redis::reply::kind::array;
      for (size_t i = 0; i < r->elements; ++i)
        out.elements.push_back(to_reply(r->element[i]));
      break;
    default:
      break;
  }
  return out;
}

redis_server::redis_server() {
  port_ = free_port();
  proc_ = child_process({"redis-server", "--port", std::to_string(port_),
                         "--bind", "127.0.0.1", "--save", "", "--appendonly",
                         "no", "--loglevel", "warning"},
                        {}, "/dev/null");
  bool up = wait_until(
    [&] {
      if (!proc_.running())
        throw std::runtime_error("redis-server exited at start");
      connect();
      if (ctx_ == nullptr)
        return false;
      auto r = run({"PING"});
      return r.type == redis::reply::kind::status && r.str == "PONG";
    },
    std::chrono::seconds(5));
  if (!up)
    throw std::runtime_error("redis-server did not answer PING in 5 s");
}

redis_server::~redis_server() {
  if (ctx_ != nullptr)
    redisFree(ctx_);
}

std::string redis_server::addr() const {
  return "127.0.0.1:" + std::to_string(port_);
}

void redis_server::connect() {
  if (ctx_ != nullptr)
    return;
  timeval tv{2, 0};
  ctx_ = redisConnectWithTimeout("127.0.0.1", port_, tv);
  if (ctx_ != nullptr && ctx_->err != 0) {
    redisFree(ctx_);
    ctx_ = nullptr;
  }
}

redis::reply redis_server::run(const std::vector<std::string>& argv) {
  connect();
  if (ctx_ == nullptr)
    return redis::reply::make_error("not connected");
  std::vector<const char*> args;
  std::vector<size_t> lens;
  for (auto& a : argv) {
    args.push_back(a.data());
    lens.push_back(a.size());
  }
  auto* raw = redisCommandArgv(ctx_, static_cast<int>(args.size()), args.data(),
                               lens.data());
  if (raw == nullptr) {
    redisFree(ctx_);
    ctx_ = nullptr;
    return redis::reply::make_error("connection lost");
  }
  auto out = to_reply(raw);
  freeReplyObject(raw);
  return out;
}

void redis_server::stop() {
  if (ctx_ != nullptr) {
    redisFree(ctx_);
    ctx_ = nullptr;
  }
  proc_.stop(SIGTERM, std::chrono::seconds(5));
}

} // namespace goring::test
