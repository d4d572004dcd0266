/// A deterministic CAF actor system for tests of actor logic: CAF's test
/// coordinator runs every actor on the test's own thread, one message at a
/// time and in the order sent, and time moves only when the test moves it.
/// Assertions are doctest's; CAF's test DSL (caf/test/dsl.hpp) is not used,
/// since it needs CAF's own unit-test engine.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <vector>

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <doctest/doctest.h>

namespace goring::test {

/// Whether and why an actor ended, as a monitor of it saw it.
struct ending {
  bool ended = false;
  caf::error reason;
};

/// No scenario comes near this many messages; more means actors that keep
/// each other busy for ever, and the test stops instead of hanging.
inline constexpr std::size_t max_messages_per_run = 100'000;

class actor_fixture {
public:
  actor_fixture()
    : sys(configure(cfg)), sched(dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler())) {
    // As CAF's test_coordinator_fixture: simulated time does not start at 0.
    sched.clock().current_time += std::chrono::hours(1);
  }

  actor_fixture(const actor_fixture&) = delete;
  actor_fixture& operator=(const actor_fixture&) = delete;

  /// Stops every actor the test started and lets the others finish; an
  /// actor still alive then is reported and not waited for, so a failing
  /// test ends instead of hanging in the actor system's destructor.
  virtual ~actor_fixture() {
    bool finished = deliver_all();
    for (auto& actor : started_)
      caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
    finished = deliver_all() && finished;
    if (!finished || sys.registry().running() != 0) {
      FAIL_CHECK(sys.registry().running() << " actors still run at the end of the test");
      sys.await_actors_before_shutdown(false);
    }
  }

  /// Spawns an actor that the fixture stops at the end of the test.
  template <class... Ts>
  caf::actor spawn(Ts&&... xs) {
    auto actor = sys.spawn(std::forward<Ts>(xs)...);
    started_.push_back(actor);
    return actor;
  }

  /// Stops `actor` at the end of the test (one spawned elsewhere).
  void stop_at_end(caf::actor actor) {
    started_.push_back(std::move(actor));
  }

  /// Watches `target`: the result tells once it ended, and why.
  std::shared_ptr<const ending> watch(const caf::actor& target) {
    auto seen = std::make_shared<ending>();
    // What the watcher needs are spawn arguments, not captures: CAF 0.17
    // dereferences a null argument tuple for an actor spawned with none.
    spawn([](caf::event_based_actor* self, caf::actor target,
             std::shared_ptr<ending> seen) -> caf::behavior {
      self->monitor(target);
      self->set_down_handler([self, seen](const caf::down_msg& dm) {
        seen->ended = true;
        seen->reason = dm.reason;
        self->quit();
      });
      return {
        [](caf::ok_atom) {
          // nop: a behaviour to wait with
        },
      };
    }, target, seen);
    return seen;
  }

  /// Delivers messages until no actor has one left. Timers do not fire:
  /// time stands still. Returns how many messages were handled.
  std::size_t run() {
    std::size_t handled = 0;
    if (!deliver_all(&handled))
      FAIL("actors still busy after " << max_messages_per_run << " messages");
    return handled;
  }

  /// Delivers exactly one message: the next one in `actor`'s mailbox. For
  /// scenarios that depend on the order two messages reach a third actor.
  void step(const caf::actor& actor) {
    REQUIRE_MESSAGE(sched.prioritize(actor), "the actor has no message waiting");
    sched.run_once();
  }

  /// Moves time forward by `by`. Every timer due on the way fires at its
  /// own time, in order, and the messages it causes are delivered before
  /// the next one fires, so a timer armed meanwhile that falls within `by`
  /// fires too (a periodic check ticks as often as it would for real).
  template <class Rep, class Period>
  void advance(std::chrono::duration<Rep, Period> by) {
    auto& clock = sched.clock();
    auto target = clock.current_time + std::chrono::duration_cast<caf::timespan>(by);
    run();
    while (!clock.schedule().empty() && clock.schedule().begin()->first <= target) {
      clock.trigger_timeout();
      run();
    }
    if (clock.current_time < target)
      clock.current_time = target;
  }

  caf::actor_system_config cfg;
  caf::actor_system sys;
  caf::scheduler::test_coordinator& sched;

protected:
  /// run() without failing (for destructors): false when the actors did not
  /// come to rest.
  bool deliver_all(std::size_t* handled = nullptr) {
    std::size_t n = 0;
    while (sched.try_run_once())
      if (++n > max_messages_per_run)
        return false;
    if (handled != nullptr)
      *handled = n;
    return true;
  }

private:
  static caf::actor_system_config& configure(caf::actor_system_config& cfg) {
    // What caf/test/dsl.hpp's test_coordinator_fixture sets, minus the
    // middleman, which goring does not load.
    cfg.set("scheduler.policy", caf::atom("testing"));
    cfg.set("logger.file-verbosity", caf::atom("quiet"));
    cfg.set("logger.console-verbosity", caf::atom("quiet"));
    cfg.set("logger.inline-output", true);
    return cfg;
  }

  std::vector<caf::actor> started_;
};

} // namespace goring::test
