#include "actors/alarm.hpp"

#include <map>
#include <optional>
#include <set>
#include <utility>

#include <caf/all.hpp>

namespace goring::alarm {
namespace {

using set_atom = caf::atom_constant<caf::atom("alarmset")>;
using drop_atom = caf::atom_constant<caf::atom("alarmdrop")>;
using tick_atom = caf::atom_constant<caf::atom("alarmtick")>;

/// CAF's actor clock, the one delayed_send counts on: the steady clock in a
/// running instance, the test coordinator's simulated time in actor tests.
using clock = caf::actor_clock;
/// One alarm per actor and slot.
using alarm_key = std::pair<caf::actor_id, caf::atom_value>;

struct alarm_entry {
  clock::time_point due;
  caf::actor_addr receiver;
  caf::message msg;
};

struct alarm_state {
  std::shared_ptr<std::atomic<std::size_t>> pending;
  std::map<alarm_key, alarm_entry> alarms;
  std::set<std::pair<clock::time_point, alarm_key>> by_due;
  /// When the latest wake-up the actor sent itself is due, if one is on its
  /// way.
  std::optional<clock::time_point> wake;
  static inline const char* name = "goring.alarm";
};

using alarm_actor = caf::stateful_actor<alarm_state>;

void publish_count(alarm_actor* self) {
  self->state.pending->store(self->state.alarms.size(), std::memory_order_relaxed);
}

void forget(alarm_actor* self, std::map<alarm_key, alarm_entry>::iterator it) {
  self->state.by_due.erase({it->second.due, it->first});
  self->state.alarms.erase(it);
}

/// The longest the actor sleeps. A wake-up cannot be taken back once sent:
/// when an earlier alarm comes, the later wake-up stays queued in CAF's
/// clock until it is due. Capping the sleep keeps those few and short-lived
/// (a 24 h token alarm would otherwise leave one per such event for a day).
constexpr auto longest_sleep = std::chrono::seconds{60};

/// One delayed message to itself, for the earliest alarm or within
/// longest_sleep: the only timers CAF holds, and they point at this actor,
/// which lives as long as the instance.
void schedule_wake(alarm_actor* self) {
  auto& st = self->state;
  if (st.by_due.empty())
    return;
  auto first = st.by_due.begin()->first;
  if (st.wake && *st.wake <= first)
    return; // a wake-up comes in time
  auto now = self->clock().now();
  auto at = std::max(now, std::min(first, now + longest_sleep));
  st.wake = at;
  self->delayed_send(self, at - now, tick_atom::value, at.time_since_epoch().count());
}

caf::behavior alarm_fn(alarm_actor* self, std::shared_ptr<std::atomic<std::size_t>> pending) {
  self->state.pending = std::move(pending);
  return {
    [self](set_atom, const caf::actor_addr& receiver, caf::atom_value slot, int64_t due_ticks,
           caf::message& msg) {
      auto& st = self->state;
      alarm_key key{receiver.id(), slot};
      if (auto old = st.alarms.find(key); old != st.alarms.end())
        forget(self, old);
      auto due = clock::time_point{clock::duration_type{due_ticks}};
      st.alarms.emplace(key, alarm_entry{due, receiver, std::move(msg)});
      st.by_due.emplace(due, key);
      publish_count(self);
      schedule_wake(self);
    },
    [self](drop_atom, caf::actor_id id) {
      auto& st = self->state;
      auto it = st.alarms.lower_bound({id, caf::atom_value{0}});
      while (it != st.alarms.end() && it->first.first == id)
        forget(self, it++);
      publish_count(self);
    },
    [self](tick_atom, int64_t wake_ticks) {
      auto& st = self->state;
      if (st.wake && st.wake->time_since_epoch().count() == wake_ticks)
        st.wake.reset();
      auto now = self->clock().now();
      while (!st.by_due.empty() && st.by_due.begin()->first <= now) {
        auto it = st.alarms.find(st.by_due.begin()->second);
        auto entry = std::move(it->second);
        forget(self, it);
        if (auto receiver = caf::actor_cast<caf::actor>(entry.receiver))
          caf::anon_send(receiver, std::move(entry.msg));
      }
      publish_count(self);
      schedule_wake(self);
    },
  };
}

} // namespace

caf::actor spawn(caf::actor_system& sys, std::shared_ptr<std::atomic<std::size_t>> pending) {
  return sys.spawn(alarm_fn, std::move(pending));
}

void set(const caf::actor& alarm, caf::local_actor* self, caf::atom_value slot,
         std::chrono::milliseconds delay, caf::message msg) {
  auto due = self->clock().now() + delay;
  caf::anon_send(alarm, set_atom::value, caf::actor_cast<caf::actor_addr>(self), slot,
                 static_cast<int64_t>(due.time_since_epoch().count()), std::move(msg));
}

void clear_on_exit(const caf::actor& alarm, caf::local_actor* self) {
  self->attach_functor([alarm, id = self->id()] { caf::anon_send(alarm, drop_atom::value, id); });
}

} // namespace goring::alarm
