// The alarm actor: due messages arrive, and a quit actor is not kept alive.
#include "actors/alarm.hpp"
#include "tests/support/process.hpp"

#include <atomic>
#include <chrono>
#include <functional>
#include <thread>

#include <caf/all.hpp>
#include <doctest/doctest.h>

namespace {

using namespace std::chrono_literals;
using ping_atom = caf::atom_constant<caf::atom("ping")>;
using pong_atom = caf::atom_constant<caf::atom("pong")>;

struct fixture {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  std::shared_ptr<std::atomic<std::size_t>> pending = std::make_shared<std::atomic<std::size_t>>(0);
  caf::actor alarm = goring::alarm::spawn(sys, pending);

  ~fixture() {
    caf::anon_send_exit(alarm, caf::exit_reason::user_shutdown);
  }
};

bool eventually(const std::function<bool()>& pred) {
  return goring::test::wait_until(pred, 5s);
}

/// An actor that sets one alarm per (slot, delay) it is told about and
/// reports each message the alarm brings to `observer`.
caf::behavior sleeper(caf::event_based_actor* self, caf::actor alarm, caf::actor observer) {
  goring::alarm::clear_on_exit(alarm, self);
  return {
    [=](caf::atom_value slot, int delay_ms, int tag) {
      goring::alarm::set(alarm, self, slot, std::chrono::milliseconds{delay_ms},
                         caf::make_message(pong_atom::value, tag));
    },
    [=](pong_atom, int tag) { self->send(observer, pong_atom::value, tag); },
  };
}

std::vector<int> receive_tags(caf::scoped_actor& observer, std::size_t n) {
  std::vector<int> tags;
  for (std::size_t i = 0; i < n; ++i)
    observer->receive([&](pong_atom, int tag) { tags.push_back(tag); },
                      caf::after(5s) >> [&] { FAIL("an alarm did not arrive"); });
  return tags;
}

} // namespace

TEST_CASE("alarms arrive when due, earliest first") {
  fixture f;
  caf::scoped_actor observer{f.sys};
  auto a = f.sys.spawn(sleeper, f.alarm, caf::actor{observer});
  observer->send(a, caf::atom("slow"), 500, 2);
  observer->send(a, caf::atom("fast"), 10, 1);
  CHECK(receive_tags(observer, 2) == std::vector<int>{1, 2});
  CHECK(eventually([&] { return f.pending->load() == 0; }));
  caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
}

TEST_CASE("setting the same slot again replaces the alarm") {
  fixture f;
  caf::scoped_actor observer{f.sys};
  auto a = f.sys.spawn(sleeper, f.alarm, caf::actor{observer});
  observer->send(a, caf::atom("expiry"), 3'600'000, 1);
  observer->send(a, caf::atom("expiry"), 10, 2);
  CHECK(receive_tags(observer, 1) == std::vector<int>{2});
  CHECK(eventually([&] { return f.pending->load() == 0; }));
  observer->receive([](pong_atom, int) { FAIL("the replaced alarm went off"); },
                    caf::after(100ms) >> [] {});
  caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
}

TEST_CASE("an actor that quits is freed at once, its alarms forgotten") {
  fixture f;
  caf::scoped_actor observer{f.sys};
  caf::actor_addr addr;
  {
    auto a = f.sys.spawn(sleeper, f.alarm, caf::actor{observer});
    addr = a.address();
    observer->send(a, caf::atom("expiry"), 3'600'000, 1);
    observer->send(a, caf::atom("refresh"), 3'600'000, 2);
    CHECK(eventually([&] { return f.pending->load() == 2; }));
    caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  }
  CHECK(eventually([&] { return caf::actor_cast<caf::actor>(addr) == nullptr; }));
  CHECK(eventually([&] { return f.pending->load() == 0; }));
}

TEST_CASE("why the alarm exists: CAF 0.17's delayed_send keeps a quit actor alive") {
  // If this starts failing, CAF lets go of receivers by itself and
  // actors/alarm.hpp could go back to delayed_send.
  fixture f;
  caf::actor_addr addr;
  {
    // An argument, as everywhere: CAF 0.17 dereferences a null argument
    // tuple for a function actor spawned with none (UBSan reports it).
    auto a = f.sys.spawn(
      [](caf::event_based_actor* self, std::chrono::hours delay) -> caf::behavior {
        self->delayed_send(self, delay, ping_atom::value);
        return {[](ping_atom) {}};
      },
      std::chrono::hours{1});
    addr = a.address();
    caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  }
  std::this_thread::sleep_for(200ms);
  CHECK(caf::actor_cast<caf::actor>(addr) != nullptr);
}
