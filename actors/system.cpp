#include "actors/system.hpp"

#include <cstring>
#include <random>
#include <thread>

#include "actors/alarm.hpp"
#include "actors/atoms.hpp"
#include "actors/connection_actor.hpp"
#include "actors/context.hpp"
#include "actors/redis_bridge.hpp"
#include "config/log.hpp"
#include "metrics/instance_metrics.hpp"
#include "metrics/metrics.hpp"

namespace goring {

long long unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

void watch_essential(const caf::actor& essential, const context_ptr& ctx, const char* name) {
  // A weak reference: ctx holds the actor's handle.
  essential->attach_functor(
    [weak = std::weak_ptr<instance_context>{ctx}, name](const caf::error& reason) {
      if (reason == caf::exit_reason::user_shutdown)
        return;
      auto ctx = weak.lock();
      if (!ctx)
        return;
      ctx->stopped_actor = name;
      GORING_LOG(error, "runtime",
                 "the " << name << " actor stopped (" << caf::to_string(reason)
                        << "); this instance is broken: /health and /ready now fail until "
                           "the process is restarted");
    });
}

namespace {

/// The essential actors' names, as watch_essential reports them.
constexpr const char* bridge_name = "Redis bridge";
constexpr const char* alarm_name = "alarm";

std::string random_nonce() {
  std::random_device rd;
  char buf[9];
  std::snprintf(buf, sizeof(buf), "%08x", static_cast<unsigned>(rd()));
  return buf;
}

/// The instance's metrics read at scrape time from its lock-free counts.
void register_metrics(const context_ptr& ctx) {
  auto& reg = metrics::global();
  reg.gauge_callback("goring_connections", "WebSocket connections open on this instance.",
                     [ctx] { return double(ctx->live_connections.load()); });
  reg.gauge_callback("goring_calls_active", "Call actors alive on this instance.",
                     [ctx] { return double(ctx->live_calls.load()); });
  reg.counter_callback("goring_pubsub_probe_failures_total",
                       "Pub/sub probes that did not come back in time.",
                       [ctx] { return double(ctx->probe_failures.load()); });
  reg.counter_callback("goring_redis_errors_total", "Redis connections lost or refused.",
                       [ctx] { return double(ctx->redis_errors.load()); });
  reg.counter_callback("goring_slow_consumer_disconnects_total",
                       "Clients closed (1013) for not reading their frames.",
                       [ctx] { return double(ctx->slow_consumers.load()); });
  reg.gauge_callback("goring_alarms_pending",
                     "Timers (token expiry, TURN refresh, ring timeout) waiting to fire.",
                     [pending = ctx->alarms_pending] { return double(pending->load()); });
  reg.gauge_callback("goring_ready", "1 while the instance takes traffic (see /ready).",
                     [ctx] { return ctx->ready() ? 1.0 : 0.0; });
  reg.gauge_callback("goring_actors", "Live actors by kind.", {"kind"}, [ctx] {
    auto* stopped = ctx->stopped_actor.load();
    auto live = [stopped](const char* name) {
      return stopped != nullptr && std::strcmp(stopped, name) == 0 ? 0.0 : 1.0;
    };
    return std::vector<metrics::labelled_value>{
      {{"connection"}, double(ctx->live_connections.load())},
      {{"call"}, double(ctx->live_calls.load())},
      {{"bridge"}, live(bridge_name)},
      {{"alarm"}, live(alarm_name)}};
  });
  goring_metrics(); // registers the rest, so every family shows from the start
}

caf::actor_system_config& configure(caf::actor_system_config& cfg, const settings& s) {
  cfg.set("scheduler.max-threads", static_cast<size_t>(s.actor_threads));
  // After its queue runs dry a worker polls 100 times, then 500 times with
  // 50 us sleeps, before it waits on a condition variable. Those sleeps
  // cost a context switch each, and every timer or Redis reply woke a
  // worker into 25 ms of them. Without the moderate phase a worker that
  // finds nothing after its short spin waits at once, and an enqueue wakes
  // it: less CPU per relay and per call cycle, and none when idle
  // (bench/RESULTS.md).
  cfg.set("work-stealing.moderate-poll-attempts", size_t{0});
  // A worker with nothing to do then waits on a condition variable, waking
  // every relaxed-sleep-duration (10 ms by default) to try to steal: 100
  // wake-ups a second per worker with nothing to do, 40 % of the CPU of
  // 15,000 idle connections (perf, bench/RESULTS.md). Work sent from outside
  // CAF (I/O threads, the clock) wakes a sleeping worker at once; a message
  // from one actor to another waits in the sender's worker queue, and the
  // timeout bounds how long an idle worker leaves that backlog alone (a
  // burst of pub/sub deliveries, say). 50 ms: a fifth of the wake-ups.
  cfg.set("work-stealing.relaxed-sleep-duration", caf::timespan{std::chrono::milliseconds{50}});
  cfg.set("logger.verbosity", caf::atom("quiet"));
  return cfg;
}

} // namespace

struct actor_runtime::impl {
  caf::actor_system_config cfg;
  caf::actor_system sys;
  context_ptr ctx;
  std::atomic<int> sessions{0};

  impl(const settings& config, boost::asio::io_context& io)
    : sys(configure(cfg, config)), ctx(std::make_shared<instance_context>()) {
    ctx->config = config;
    ctx->instance_id = config.server_id + "/" + random_nonce();
    ctx->started_at = unix_now();
    // Actors that outlive a drain's grace must not hold the process.
    sys.await_actors_before_shutdown(false);
    register_metrics(ctx);
    ctx->alarm = alarm::spawn(sys, ctx->alarms_pending);
    watch_essential(ctx->alarm, ctx, alarm_name);
    ctx->bridge = spawn_redis_bridge(sys, ctx, io);
    watch_essential(ctx->bridge, ctx, bridge_name);
  }
};

actor_runtime::actor_runtime(const settings& config, boost::asio::io_context& io)
  : impl_(std::make_unique<impl>(config, io)) {
  // nop
}

actor_runtime::~actor_runtime() {
  caf::anon_send_exit(impl_->ctx->bridge, caf::exit_reason::user_shutdown);
  impl_->ctx->bridge = nullptr;
  // The handle stays: actors still running read it.
  caf::anon_send_exit(impl_->ctx->alarm, caf::exit_reason::user_shutdown);
}

std::shared_ptr<connection_port> actor_runtime::open_connection(std::weak_ptr<client_link> link,
                                                                const auth::claims& who,
                                                                const std::string& remote_addr) {
  return spawn_connection_actor(impl_->sys, impl_->ctx, std::move(link), who, remote_addr);
}

void actor_runtime::admin(std::string method, std::string target,
                          std::function<void(unsigned status, std::string body)> done) {
  using done_fn = std::function<void(unsigned, std::string)>;
  // A one-shot actor waits for the bridge, so no I/O thread ever blocks. What
  // it needs are spawn arguments, not captures: CAF 0.17 dereferences a null
  // argument tuple when an actor is spawned with none (UBSan reports it).
  impl_->sys.spawn(
    [](caf::event_based_actor* self, caf::actor bridge, std::string method, std::string target,
       done_fn done) {
      self->request(bridge, std::chrono::seconds(3), admin_atom::value, method, target)
        .then([=](uint16_t status, std::string& body) { done(status, std::move(body)); },
              [=](caf::error& err) { done(503, "{\"error\":\"" + caf::to_string(err) + "\"}"); });
    },
    impl_->ctx->bridge, std::move(method), std::move(target), done_fn{std::move(done)});
}

void actor_runtime::redis_command(std::vector<std::string> argv,
                                  std::function<void(redis::reply)> done) {
  using done_fn = std::function<void(redis::reply)>;
  // As admin() above: a one-shot actor, its needs as spawn arguments. The
  // bridge answers every command (redis::command_timeout), so no timeout.
  impl_->sys.spawn(
    [](caf::event_based_actor* self, caf::actor bridge, std::vector<std::string> argv,
       done_fn done) {
      self->request(bridge, no_request_timeout, command_atom::value, std::move(argv))
        .then([=](redis::reply& r) { done(std::move(r)); },
              [=](caf::error& err) { done(redis::reply::make_error(caf::to_string(err))); });
    },
    impl_->ctx->bridge, std::move(argv), done_fn{std::move(done)});
}

const std::string& actor_runtime::instance_id() const {
  return impl_->ctx->instance_id;
}

bool actor_runtime::redis_healthy() const {
  return impl_->ctx->redis_healthy.load();
}

const char* actor_runtime::stopped_actor() const {
  return impl_->ctx->stopped_actor.load();
}

bool actor_runtime::ready() const {
  return impl_->ctx->ready();
}

bool actor_runtime::draining() const {
  return impl_->ctx->draining.load();
}

void actor_runtime::set_verifier(std::shared_ptr<const auth::jwt_verifier> verifier) {
  impl_->ctx->verifier = std::move(verifier);
}

void actor_runtime::set_admin_addr(std::string addr) {
  impl_->ctx->admin_addr = std::move(addr);
}

void actor_runtime::count_slow_consumer() {
  impl_->ctx->slow_consumers.fetch_add(1, std::memory_order_relaxed);
}

void actor_runtime::session_opened() {
  ++impl_->sessions;
}

void actor_runtime::session_closed() {
  --impl_->sessions;
}

int actor_runtime::live_sessions() const {
  return impl_->sessions.load();
}

void actor_runtime::start_drain() {
  auto& ctx = *impl_->ctx;
  if (ctx.draining.exchange(true))
    return;
  GORING_LOG(info, "shutdown", "draining: closing every WebSocket with 1012");
  caf::anon_send(ctx.bridge, shutdown_atom::value);
}

void actor_runtime::drain(std::chrono::milliseconds grace) {
  auto& ctx = *impl_->ctx;
  start_drain();
  auto deadline = std::chrono::steady_clock::now() + grace;
  // Connections quit at once (1012); their call actors let go of the calls,
  // which wait in Redis for the users to come back elsewhere, and the
  // bridge releases their keys. Poll until all of that is done.
  while (std::chrono::steady_clock::now() < deadline
         && (ctx.live_connections.load() > 0 || ctx.live_calls.load() > 0
             || ctx.registered_connections.load() > 0))
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  // Removes the heartbeat; as the bridge's last command it also flushes the
  // key releases queued before it.
  auto self = caf::scoped_actor{impl_->sys};
  self->request(ctx.bridge, std::chrono::seconds(2), leave_atom::value)
    .receive([](bool) {}, [](caf::error&) {});
  GORING_LOG(info, "shutdown",
             "drained: " << ctx.live_connections.load() << " connections and "
                         << ctx.live_calls.load() << " calls left");
}

} // namespace goring
