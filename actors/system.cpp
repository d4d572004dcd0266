#include "actors/system.hpp"

#include <random>
#include <thread>

#include "actors/atoms.hpp"
#include "actors/connection_actor.hpp"
#include "actors/context.hpp"
#include "actors/redis_bridge.hpp"
#include "config/log.hpp"

namespace goring {

long long unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

namespace {

std::string random_nonce() {
  std::random_device rd;
  char buf[9];
  std::snprintf(buf, sizeof(buf), "%08x", static_cast<unsigned>(rd()));
  return buf;
}

caf::actor_system_config& configure(caf::actor_system_config& cfg, const settings& s) {
  cfg.set("scheduler.max-threads", static_cast<size_t>(s.actor_threads));
  cfg.set("logger.verbosity", caf::atom("quiet"));
  return cfg;
}

} // namespace

struct actor_runtime::impl {
  caf::actor_system_config cfg;
  caf::actor_system sys;
  context_ptr ctx;

  impl(const settings& config, boost::asio::io_context& io)
    : sys(configure(cfg, config)), ctx(std::make_shared<instance_context>()) {
    ctx->config = config;
    ctx->instance_id = config.server_id + "/" + random_nonce();
    ctx->bridge = spawn_redis_bridge(sys, ctx, io);
  }
};

actor_runtime::actor_runtime(const settings& config, boost::asio::io_context& io)
  : impl_(std::make_unique<impl>(config, io)) {
  // nop
}

actor_runtime::~actor_runtime() {
  caf::anon_send_exit(impl_->ctx->bridge, caf::exit_reason::user_shutdown);
  impl_->ctx->bridge = nullptr;
}

std::shared_ptr<connection_port> actor_runtime::open_connection(std::weak_ptr<client_link> link,
                                                                const auth::claims& who) {
  return spawn_connection_actor(impl_->sys, impl_->ctx, std::move(link), who);
}

bool actor_runtime::redis_healthy() const {
  return impl_->ctx->redis_healthy.load();
}

void actor_runtime::drain(std::chrono::milliseconds grace) {
  auto& ctx = *impl_->ctx;
  ctx.draining = true;
  caf::anon_send(ctx.bridge, shutdown_atom::value);
  auto deadline = std::chrono::steady_clock::now() + grace;
  // Connections quit at once; their calls then end (peer_disconnected) and
  // the bridge releases their keys. Poll until all of that is done.
  while (std::chrono::steady_clock::now() < deadline
         && (ctx.live_connections.load() > 0 || ctx.live_calls.load() > 0
             || ctx.registered_connections.load() > 0))
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  // Let the bridge flush the releases it queued when the last actor went.
  auto self = caf::scoped_actor{impl_->sys};
  self
    ->request(ctx.bridge, std::chrono::seconds(2), command_atom::value,
              std::vector<std::string>{"PING"})
    .receive([](redis::reply&) {}, [](caf::error&) {});
  GORING_LOG(info, "shutdown",
             "drained: " << ctx.live_connections.load() << " connections and "
                         << ctx.live_calls.load() << " calls left");
}

} // namespace goring
