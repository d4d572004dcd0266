// watch_essential: an essential actor that stops, other than at shutdown,
// marks the instance broken, so /health and /ready fail.
#include "actors/context.hpp"
#include "tests/support/process.hpp"

#include <chrono>
#include <cstring>
#include <stdexcept>

#include <caf/all.hpp>
#include <doctest/doctest.h>

namespace {

using namespace std::chrono_literals;
using boom_atom = caf::atom_constant<caf::atom("boom")>;

/// Stands in for the bridge or the alarm: throws when told "boom". Spawned
/// with an argument (CAF 0.17 dereferences a null argument tuple otherwise).
caf::behavior essential(caf::event_based_actor*, int) {
  return {
    [](boom_atom) { throw std::runtime_error("boom"); },
  };
}

struct fixture {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  goring::context_ptr ctx = std::make_shared<goring::instance_context>();

  fixture() {
    // Ready but for the watched actors.
    ctx->redis_healthy = true;
    ctx->probe_ok = true;
  }

  caf::actor watched(const char* name) {
    auto a = sys.spawn(essential, 0);
    goring::watch_essential(a, ctx, name);
    return a;
  }
};

bool eventually_stopped(const goring::context_ptr& ctx) {
  return goring::test::wait_until([&] { return ctx->stopped_actor.load() != nullptr; }, 5s);
}

} // namespace

TEST_CASE("an essential actor stopped by the runtime's shutdown is not a failure") {
  fixture f;
  auto a = f.sys.spawn(essential, 0);
  caf::scoped_actor self{f.sys};
  // CAF runs attached handlers newest first: monitored before it is
  // watched, the down message comes after the watch has run.
  self->monitor(a);
  goring::watch_essential(a, f.ctx, "alarm");
  caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  self->receive([](const caf::down_msg&) {});
  CHECK(f.ctx->stopped_actor.load() == nullptr);
  CHECK(f.ctx->ready());
}

TEST_CASE("an essential actor that is killed marks the instance broken and not ready") {
  fixture f;
  auto bridge = f.watched("Redis bridge");
  auto alarm = f.watched("alarm");
  REQUIRE(f.ctx->ready());
  caf::anon_send_exit(bridge, caf::exit_reason::kill);
  REQUIRE(eventually_stopped(f.ctx));
  CHECK(std::strcmp(f.ctx->stopped_actor.load(), "Redis bridge") == 0);
  CHECK_FALSE(f.ctx->ready());
  caf::anon_send_exit(alarm, caf::exit_reason::user_shutdown);
}

TEST_CASE("an essential actor that throws marks the instance broken") {
  fixture f;
  auto alarm = f.watched("alarm");
  caf::anon_send(alarm, boom_atom::value);
  REQUIRE(eventually_stopped(f.ctx));
  CHECK(std::strcmp(f.ctx->stopped_actor.load(), "alarm") == 0);
  CHECK_FALSE(f.ctx->ready());
}

TEST_CASE("the watch holds no reference to the instance: a context freed first is no failure") {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  auto ctx = std::make_shared<goring::instance_context>();
  std::weak_ptr<goring::instance_context> weak = ctx;
  auto a = sys.spawn(essential, 0);
  goring::watch_essential(a, ctx, "alarm");
  ctx.reset();
  CHECK(weak.expired());
  caf::scoped_actor self{sys};
  self->monitor(a);
  caf::anon_send_exit(a, caf::exit_reason::kill);
  self->receive([](const caf::down_msg&) {});
}
