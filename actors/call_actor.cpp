#include "actors/call_actor.hpp"

#include <unordered_map>
#include <unordered_set>

#include "actors/alarm.hpp"
#include "actors/atoms.hpp"
#include "codec/admin_json.hpp"
#include "config/log.hpp"
#include "metrics/instance_metrics.hpp"
#include "redis/keys.hpp"
#include "redis/scripts.hpp"

namespace goring {

namespace {

constexpr const char* component = "call_actor";
/// How long a state change may wait for Redis before the client hears
/// internal_error.

using protocol::signal_error;
using redis::outcome_status;
using redis::session_state;

/// A participant whose connection went without hanging up.
struct departed_participant {
  /// The connection's owner token: its ws:user key, until released, is no
  /// presence (see call_check.lua).
  std::string token;
  long long since_ms = 0;
};

struct call_state {
  context_ptr ctx;
  call_setup call;
  /// Connection actors of the participants on this instance.
  std::unordered_map<std::string, caf::actor> locals;
  /// Local participants whose connection holds a route to its peer.
  std::unordered_set<std::string> routed;
  /// Participants whose connection here went without hanging up and who
  /// are not back here yet, with that connection's owner token and when
  /// it went (Unix ms): their grace end is armed.
  std::unordered_map<std::string, departed_participant> away;
  bool over = false;
  long long created_at = 0;
  long long created_ns = 0;  // steady_ns, for call setup time
  long long accepted_ns = 0; // steady_ns once accepted here, for duration
  long long accepted_at = 0; // Unix seconds once accepted, for call_restore
  /// ctx->redis_failovers when this call last wrote itself back (or began).
  uint64_t failovers_seen = 0;
  uint64_t handled = 0;

  static inline const char* name = "call_actor";

  const std::string& peer_of(const std::string& user) const {
    return user == call.caller_id ? call.callee_id : call.caller_id;
  }
  const protocol::user_info& info_of(const std::string& user) const {
    return user == call.caller_id ? call.caller_info : call.callee_info;
  }
  bool is_participant(const std::string& user) const {
    return user == call.caller_id || user == call.callee_id;
  }
};

using call_actor = caf::stateful_actor<call_state>;

/// Sends a call event to a participant: straight to its connection when it
/// is here, through the bridge (local registry or PUBLISH) otherwise.
void notify(call_actor* self, const std::string& user, const std::string& frame) {
  auto payload = protocol::tagged(protocol::signal_tag::event, frame);
  auto it = self->state.locals.find(user);
  if (it != self->state.locals.end())
    self->send(it->second, signal_atom::value, std::move(payload), caf::actor{self});
  else
    self->send(self->state.ctx->bridge, deliver_atom::value, user, std::move(payload),
               caf::actor{self});
}

/// Hands `user`'s connection the way to its peer: the peer's connection
/// when it is here, its channel otherwise (see connection_actor.cpp, "Direct
/// relays"). Only in the accepted state, so after call.accepted went out;
/// and only once a participant relays, so calls that never relay (or not
/// yet) cost nothing.
void hand_route(call_actor* self, const std::string& user) {
  auto& st = self->state;
  auto conn = st.locals.find(user);
  if (conn == st.locals.end())
    return;
  st.routed.insert(user);
  auto& peer = st.peer_of(user);
  auto it = st.locals.find(peer);
  if (it != st.locals.end())
    self->send(conn->second, route_atom::value, st.call.session_id, it->second, std::string{});
  else
    self->send(conn->second, route_atom::value, st.call.session_id, caf::actor{}, peer);
}

/// `user`'s connection changed (joined or left): its old route went with
/// the old connection, and the peer's route, if any, points elsewhere now.
void reroute(call_actor* self, const std::string& user) {
  auto& st = self->state;
  st.routed.erase(user);
  if (st.call.state == call_phase::accepted && st.routed.count(st.peer_of(user)) != 0)
    hand_route(self, st.peer_of(user));
}

/// Checks come often enough to extend the keys before they expire.
std::chrono::milliseconds check_period(const settings& s) {
  return std::min(s.call_check_interval, s.session_ttl / 3);
}

/// Counts an end decided here: its outcome, and how long the call talked.
void count_end(call_actor* self, const std::string& reason) {
  auto& st = self->state;
  auto& m = goring_metrics();
  m.count_call(reason == "cancelled" ? "cancelled" : "ended");
  if (st.call.state == call_phase::accepted)
    m.call_duration->observe(seconds_since(st.accepted_ns != 0 ? st.accepted_ns : st.created_ns));
}

void finish(call_actor* self) {
  self->state.over = true;
  self->quit();
}

/// Runs a call script, holding back every other message of this session
/// until Redis answers: the session's operations happen one at a time.
template <class OnReply>
void run_script(call_actor* self, redis::script_call call, OnReply on_reply) {
  self->request(self->state.ctx->bridge, no_request_timeout, eval_atom::value, std::move(call))
    .await([on_reply](redis::reply& r) mutable { on_reply(r); },
           [on_reply](caf::error& err) mutable {
             on_reply(redis::reply::make_error(caf::to_string(err)));
           });
}

long long unix_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

/// Where the scripts write their webhook events: the event stream while
/// WEBHOOK_URL is set, nowhere otherwise (docs/webhooks.md).
redis::event_log events(const call_actor* self) {
  if (self->state.ctx->config.webhook_url.empty())
    return {{}, unix_now_ms()};
  return {std::string{redis::keys::webhook_stream}, unix_now_ms()};
}

caf::error redis_failure(const redis::reply& r) {
  GORING_LOG(warn, component, "Redis failed: " << r.str);
  return signal_failure(signal_error::internal_error,
                        "the server could not reach its database; try again");
}

/// Maps a refused transition (not_found, unauthorized, invalid_state) to the
/// client's error.
caf::error refusal(const redis::call_outcome& out, const char* action) {
  if (out.status == outcome_status::not_found)
    return signal_failure(signal_error::session_not_found, "no such call session");
  if (out.status == outcome_status::unauthorized)
    return signal_failure(signal_error::unauthorized,
                          std::string{"you are not allowed to "} + action + " this call");
  if (out.status == outcome_status::invalid_state)
    return signal_failure(signal_error::invalid_state,
                          std::string{"cannot "} + action + ": the call is " + out.detail);
  return signal_failure(signal_error::internal_error, "unexpected answer from the database");
}

/// A refused transition means this actor's copy is stale when the session
/// is gone or over; then there is nothing left to serialize here.
void quit_if_stale(call_actor* self, const redis::call_outcome& out) {
  if (out.status == outcome_status::not_found
      || (out.status == outcome_status::invalid_state && !redis::is_live(out.state)))
    finish(self);
}

caf::behavior accepted_behavior(call_actor* self);

/// The ring timer goes through the alarm: a delayed_send would keep an
/// ended call's actor in memory for the rest of RING_TIMEOUT.
void arm_ring_timeout(call_actor* self, std::chrono::milliseconds after) {
  alarm::set(self->state.ctx->alarm, self, ring_timeout_atom::value, after,
             caf::make_message(ring_timeout_atom::value));
}

void arm_ring_timeout(call_actor* self) {
  arm_ring_timeout(self, self->state.ctx->config.ring_timeout);
}

/// call.end by a participant, or their connection closing.
void end_call(call_actor* self, const std::string& user, bool disconnect,
              caf::response_promise rp) {
  auto& st = self->state;
  run_script(self,
             redis::call_end(st.call.session_id, user, ended_ttl(st.ctx->config), unix_now(),
                             disconnect, events(self)),
             [self, user, rp](const redis::reply& r) mutable {
               auto out = redis::parse_call_outcome(r);
               if (out.status == outcome_status::ok) {
                 auto& st = self->state;
                 GORING_LOG_WITH(info, component, ({{"session_id", st.call.session_id}}),
                                 "call " << st.call.session_id << " ended by " << user << ": "
                                         << out.detail);
                 count_end(self, out.detail);
                 notify(self, st.peer_of(user),
                        protocol::encode_ended(st.call.session_id, out.detail, st.info_of(user)));
                 if (rp.pending())
                   rp.deliver(true);
                 finish(self);
                 return;
               }
               if (rp.pending())
                 rp.deliver(out.status == outcome_status::error ? redis_failure(r)
                                                                : refusal(out, "end"));
               else if (self->state.locals.empty())
                 finish(self);
               quit_if_stale(self, out);
             });
}

void check_call(call_actor* self, long long now_ms, const std::string& departed_user = {},
                const std::string& departed_token = {});

/// The owner token a connection actor leaves in its exit reason.
std::string token_of(const caf::error& reason) {
  if (reason.context().match_elements<std::string>())
    return reason.context().get_as<std::string>(0);
  return {};
}

/// One alarm slot per participant, so both may be away at once.
caf::atom_value grace_slot(const call_state& st, const std::string& user) {
  return user == st.call.caller_id ? caf::atom("gracecalr") : caf::atom("gracecale");
}

/// A local participant's connection went without hanging up (no close
/// frame, taken over, instance draining). A check at once notes since when
/// they are away, and ends the call unless their next connection is there
/// already (a takeover) when there is no RECONNECT_GRACE; otherwise the
/// grace end checks again. Until then the actor stays even with nobody
/// local: the user's new connection may be about to join it.
void on_away(call_actor* self, const std::string& user, const caf::error& reason) {
  auto& st = self->state;
  auto grace = st.ctx->config.reconnect_grace;
  auto now_ms = unix_now_ms();
  auto token = token_of(reason);
  GORING_LOG_WITH(info, component, ({{"session_id", st.call.session_id}}),
                  "call " << st.call.session_id << ": " << user
                          << (grace.count() > 0 ? " is away; the call waits for them"
                                                : " is away; no reconnect grace"));
  check_call(self, now_ms, user, token);
  if (grace.count() == 0)
    return; // that check ends it, unless the user is back already
  st.away[user] = departed_participant{std::move(token), now_ms};
  alarm::set(st.ctx->alarm, self, grace_slot(st, user), grace,
             caf::make_message(grace_end_atom::value, user));
  // Unless this instance is draining: it takes no new connections, so
  // nobody can join here any more, and waiting here would hold the drain
  // open. The check above noted the time; the instances that hold the
  // peer end the call once the grace is up.
  if (st.locals.empty() && st.ctx->draining.load())
    finish(self);
}

/// A local participant's connection terminated. Hung up: the call ends
/// now. Away: see on_away; an actor left without local participants leaves
/// the end to the instances that still hold one, once its own grace ends
/// are done.
void on_participant_down(call_actor* self, const caf::down_msg& dm) {
  auto& st = self->state;
  std::string user;
  for (auto it = st.locals.begin(); it != st.locals.end(); ++it) {
    if (it->second.address() == dm.source) {
      user = it->first;
      st.locals.erase(it);
      break;
    }
  }
  // While starting, the start script's answer sees the caller gone.
  if (user.empty() || st.over || st.call.state == call_phase::starting)
    return;
  // The peer's relays go to the user's channel now.
  reroute(self, user);
  if (is_away(dm.reason)) {
    on_away(self, user, dm.reason);
    return;
  }
  end_call(self, user, true, caf::response_promise{});
}

/// Tells the local participants how a call that ended elsewhere ended, in
/// case its event was lost on the way (pub/sub delivers at most once). A
/// connection that already heard of the end drops the repeat.
void catch_up(call_actor* self, session_state state, const std::string& reason) {
  auto& st = self->state;
  for (auto& [user, conn] : st.locals) {
    std::string frame;
    if (state == session_state::none)
      frame =
        protocol::encode_ended(st.call.session_id, "session_lost", st.info_of(st.peer_of(user)));
    else if (state == session_state::rejected && user == st.call.caller_id)
      frame = protocol::encode_rejected(st.call.session_id, st.call.callee_info);
    else if (state == session_state::ended)
      frame = protocol::encode_ended(st.call.session_id, reason, st.info_of(st.peer_of(user)));
    if (!frame.empty())
      self->send(conn, signal_atom::value, protocol::tagged(protocol::signal_tag::event, frame),
                 caf::actor{self});
  }
}

void restore_call(call_actor* self);

/// call_check, periodic or for a participant who went (`departed_user`,
/// whose connection had `departed_token`): extends the call's keys and
/// ends it for a participant who is gone.
void check_call(call_actor* self, long long now_ms, const std::string& departed_user,
                const std::string& departed_token) {
  auto& st = self->state;
  run_script(
    self,
    redis::call_check(st.call.session_id, st.ctx->config.session_ttl, now_ms,
                      st.ctx->config.reconnect_grace, ended_ttl(st.ctx->config), departed_user,
                      departed_token, events(self).stream),
    [self](const redis::reply& r) {
      using kind = redis::check_outcome::kind;
      auto& st = self->state;
      auto out = redis::parse_check_outcome(r);
      // unavailable: Redis is away, the next tick tries again.
      if (out.status == kind::gone && out.state == session_state::none
          && st.ctx->redis_failovers.load() != st.failovers_seen) {
        // Vanished, and commands went to a new master since this call last
        // wrote itself back: lost in the move, not over. A check queued
        // before the (restore) message gets here first.
        restore_call(self);
        return;
      }
      if (out.status == kind::gone) {
        GORING_LOG_WITH(info, component, ({{"session_id", st.call.session_id}}),
                        "call " << st.call.session_id << " is over ("
                                << (out.state == session_state::none
                                      ? std::string_view{"vanished from Redis"}
                                      : redis::state_name(out.state))
                                << ")");
        catch_up(self, out.state, out.ended_reason);
        finish(self);
      } else if (out.status == kind::ended) {
        auto& gone = out.gone_user;
        GORING_LOG_WITH(info, component, ({{"session_id", st.call.session_id}}),
                        "call " << st.call.session_id << ": " << gone
                                << " did not come back; ended");
        notify(self, st.peer_of(gone),
               protocol::encode_ended(st.call.session_id, "peer_disconnected", st.info_of(gone)));
        finish(self);
      } else if (out.status == kind::live && out.state == session_state::accepted
                 && st.call.state == call_phase::ringing) {
        st.call.state = call_phase::accepted;
        self->become(accepted_behavior(self));
      }
      // Nobody can join a draining instance: without a local participant
      // there is nothing left to wait for here (a check at a drop while
      // draining, with no grace, found the user back elsewhere).
      if (!st.over && st.locals.empty() && st.ctx->draining.load())
        finish(self);
    });
}

/// After a failover: writes the call back where the new master lacks it
/// (call_restore only writes what is absent), then checks it as usual. A
/// call that another one replaced is left to the check, which ends it.
void restore_call(call_actor* self) {
  auto& st = self->state;
  auto& c = st.call;
  if (c.state == call_phase::starting)
    return; // call_start is still running: its answer says where the call is
  st.failovers_seen = st.ctx->redis_failovers.load();
  bool accepted = c.state == call_phase::accepted;
  auto callee_info = accepted ? protocol::to_json(c.callee_info) : std::string{};
  auto accepted_at = !accepted ? 0 : st.accepted_at != 0 ? st.accepted_at : st.created_at;
  run_script(self,
             redis::call_restore(c.session_id, c.caller_id, c.callee_id, phase_name(c.state),
                                 st.created_at, protocol::to_json(c.caller_info), callee_info,
                                 accepted_at, st.ctx->config.session_ttl),
             [self](const redis::reply& r) {
               auto& st = self->state;
               if (r.type == redis::reply::kind::string && r.str == "restored")
                 GORING_LOG_WITH(info, component, ({{"session_id", st.call.session_id}}),
                                 "call " << st.call.session_id
                                         << " was missing on the new Redis master; written back");
               else if (r.type != redis::reply::kind::string)
                 GORING_LOG_WITH(warn, component, ({{"session_id", st.call.session_id}}),
                                 "call " << st.call.session_id
                                         << ": restoring on the new master failed: " << r.str);
               check_call(self, unix_now_ms());
             });
}

/// One row of the admin API's /admin/actors and /admin/calls.
std::string status_json(call_actor* self) {
  auto& st = self->state;
  std::vector<std::string> local_users;
  for (auto& [user, conn] : st.locals)
    local_users.push_back(user);
  return admin_row({{"kind", "call"},
                    {"id", static_cast<long long>(self->id())},
                    {"session_id", st.call.session_id},
                    {"state", std::string{phase_name(st.call.state)}},
                    {"caller_id", st.call.caller_id},
                    {"callee_id", st.call.callee_id},
                    {"local_users", local_users},
                    {"age_seconds", unix_now() - st.created_at},
                    {"mailbox", static_cast<long long>(self->mailbox().size())},
                    {"handled", static_cast<long long>(st.handled)},
                    {"instance", st.ctx->instance_id}});
}

/// Handlers every phase shares.
caf::message_handler common_handlers(call_actor* self) {
  return {
    [self](status_atom) { return status_json(self); },
    [self](join_atom, const std::string& user, const caf::actor& conn, const std::string& info) {
      ++self->state.handled;
      auto& st = self->state;
      if (!st.is_participant(user))
        return;
      st.locals[user] = conn;
      st.away.erase(user); // back: its grace end finds nothing to do
      self->monitor(conn);
      auto& known = user == st.call.caller_id ? st.call.caller_info : st.call.callee_info;
      known = protocol::user_info_from_json(info, user);
      reroute(self, user);
    },
    [self](flush_atom) {
      // Everything this connection sent before is forwarded by now.
      return true;
    },
    [self](end_atom, const std::string& user) {
      ++self->state.handled;
      auto rp = self->make_response_promise();
      end_call(self, user, false, rp);
      return rp;
    },
    [self](remote_atom, uint8_t type, const std::string&, const std::string& info) {
      ++self->state.handled;
      auto& st = self->state;
      auto ev = static_cast<protocol::event_type>(type);
      if (ev == protocol::event_type::accepted) {
        st.accepted_ns = steady_ns();
        st.accepted_at = unix_now();
        st.call.state = call_phase::accepted;
        st.call.callee_info = protocol::user_info_from_json(info, st.call.callee_id);
        self->become(accepted_behavior(self));
      } else if (ev == protocol::event_type::rejected || ev == protocol::event_type::ended) {
        finish(self);
      }
    },
    [self](shutdown_atom) {
      // The instance drains: an actor nobody here holds any more (its
      // users went away before) need not wait for its check.
      if (self->state.locals.empty())
        finish(self);
    },
    [self](restore_atom) {
      ++self->state.handled;
      if (self->state.locals.empty()) {
        finish(self); // as check_atom: the instances holding a participant restore it
        return;
      }
      restore_call(self);
    },
    [self](check_atom) {
      ++self->state.handled;
      if (self->state.locals.empty() && self->state.away.empty()) {
        // Nobody here any more: the instances that hold a participant
        // (or the user's next connection) keep the call.
        finish(self);
        return;
      }
      check_call(self, unix_now_ms());
      self->delayed_send(self, check_period(self->state.ctx->config), check_atom::value);
    },
    [self](grace_end_atom, const std::string& user) {
      ++self->state.handled;
      auto& st = self->state;
      auto it = st.away.find(user);
      if (it == st.away.end())
        return; // back here meanwhile
      auto departed = std::move(it->second);
      st.away.erase(it);
      // Due by this actor's clock: a wall clock a little behind must not
      // leave the end to the next periodic check.
      auto due = departed.since_ms + st.ctx->config.reconnect_grace.count();
      check_call(self, std::max(unix_now_ms(), due), user, departed.token);
    },
  };
}

void refuse_relay(call_actor* self, const std::string& user, const char* why) {
  auto it = self->state.locals.find(user);
  if (it != self->state.locals.end())
    self->send(it->second, write_atom::value,
               protocol::encode_error(signal_error::invalid_state, why));
}

caf::behavior accepted_behavior(call_actor* self) {
  return caf::message_handler{
    [self](relay_atom, const std::string& user, std::string& frame, int64_t read_at) {
      auto& st = self->state;
      ++st.handled;
      auto& peer = st.peer_of(user);
      auto it = st.locals.find(peer);
      if (it != st.locals.end())
        self->send(it->second, relay_atom::value, std::move(frame), read_at);
      else
        self->send(st.ctx->bridge, publish_atom::value, peer,
                   protocol::tagged(protocol::signal_tag::relay, frame), read_at);
      // The next relays may skip this actor.
      if (st.routed.count(user) == 0)
        hand_route(self, user);
    },
    [self](accept_atom, const std::string& user, const std::string&) -> caf::error {
      ++self->state.handled;
      if (user != self->state.call.callee_id)
        return signal_failure(signal_error::unauthorized, "only the callee can accept this call");
      return signal_failure(signal_error::invalid_state, "the call is already accepted");
    },
    [self](reject_atom, const std::string& user) -> caf::error {
      ++self->state.handled;
      if (user != self->state.call.callee_id)
        return signal_failure(signal_error::unauthorized, "only the callee can reject this call");
      return signal_failure(signal_error::invalid_state,
                            "the call is already accepted; end it with call.end");
    },
    [](ring_timeout_atom) {
      // Answered in time: nothing to do.
    },
  }
    .or_else(common_handlers(self));
}

caf::behavior ringing_behavior(call_actor* self) {
  return caf::message_handler{
    [self](relay_atom, const std::string& user, const std::string&, int64_t) {
      refuse_relay(self, user, "the call has not been accepted yet");
    },
    [self](accept_atom, const std::string& user, const std::string& info) {
      ++self->state.handled;
      auto& st = self->state;
      auto rp = self->make_response_promise();
      if (user != st.call.callee_id) {
        rp.deliver(
          signal_failure(signal_error::unauthorized, "only the callee can accept this call"));
        return rp;
      }
      run_script(self,
                 redis::call_accept(st.call.session_id, user, st.ctx->config.session_ttl, info,
                                    unix_now(), events(self)),
                 [self, rp, info](const redis::reply& r) mutable {
                   auto out = redis::parse_call_outcome(r);
                   auto& st = self->state;
                   // Accepted already by this callee: an earlier accept whose answer
                   // timed out went through after all. Same outcome, told again.
                   if (out.status == outcome_status::ok
                       || (out.status == outcome_status::invalid_state
                           && out.state == session_state::accepted)) {
                     if (out.status == outcome_status::ok) {
                       goring_metrics().count_call("accepted");
                       goring_metrics().call_setup->observe(seconds_since(st.created_ns));
                     }
                     st.accepted_ns = steady_ns();
                     st.accepted_at = unix_now();
                     st.call.state = call_phase::accepted;
                     st.call.callee_info = protocol::user_info_from_json(info, st.call.callee_id);
                     notify(self, st.call.caller_id,
                            protocol::encode_accepted(st.call.session_id, st.call.callee_info));
                     self->become(accepted_behavior(self));
                     rp.deliver(true);
                     return;
                   }
                   rp.deliver(out.status == outcome_status::error ? redis_failure(r)
                                                                  : refusal(out, "accept"));
                   quit_if_stale(self, out);
                 });
      return rp;
    },
    [self](reject_atom, const std::string& user) {
      ++self->state.handled;
      auto& st = self->state;
      auto rp = self->make_response_promise();
      if (user != st.call.callee_id) {
        rp.deliver(
          signal_failure(signal_error::unauthorized, "only the callee can reject this call"));
        return rp;
      }
      run_script(self,
                 redis::call_reject(st.call.session_id, user, ended_ttl(st.ctx->config), unix_now(),
                                    events(self)),
                 [self, rp](const redis::reply& r) mutable {
                   auto out = redis::parse_call_outcome(r);
                   auto& st = self->state;
                   if (out.status == outcome_status::ok) {
                     goring_metrics().count_call("rejected");
                     notify(self, st.call.caller_id,
                            protocol::encode_rejected(st.call.session_id, st.call.callee_info));
                     rp.deliver(true);
                     finish(self);
                     return;
                   }
                   rp.deliver(out.status == outcome_status::error ? redis_failure(r)
                                                                  : refusal(out, "reject"));
                   quit_if_stale(self, out);
                 });
      return rp;
    },
    [self](ring_timeout_atom) {
      ++self->state.handled;
      auto& st = self->state;
      run_script(self,
                 redis::call_timeout(st.call.session_id, ended_ttl(st.ctx->config), unix_now(),
                                     events(self)),
                 [self](const redis::reply& r) {
                   auto out = redis::parse_call_outcome(r);
                   auto& st = self->state;
                   if (out.status == outcome_status::ok
                       || out.status == outcome_status::not_found) {
                     // Unanswered: both sides hear no_answer. A session that
                     // vanished meanwhile ends the same way here.
                     if (out.status == outcome_status::ok)
                       goring_metrics().count_call("no_answer");
                     for (auto* user : {&st.call.caller_id, &st.call.callee_id}) {
                       if (out.status == outcome_status::ok || st.locals.count(*user) != 0)
                         notify(self, *user,
                                protocol::encode_ended(st.call.session_id, "no_answer",
                                                       st.info_of(st.peer_of(*user))));
                     }
                     finish(self);
                     return;
                   }
                   quit_if_stale(self, out);
                 });
    },
  }
    .or_else(common_handlers(self));
}

caf::behavior starting_behavior(call_actor* self) {
  return {
    [self](start_atom) {
      ++self->state.handled;
      auto& st = self->state;
      auto rp = self->make_response_promise();
      run_script(
        self,
        redis::call_start(st.call.caller_id, st.call.callee_id, st.call.session_id, unix_now(),
                          st.ctx->config.session_ttl, protocol::to_json(st.call.caller_info),
                          events(self), st.ctx->config.offline_ring_timeout),
        [self, rp](const redis::reply& r) mutable {
          auto& st = self->state;
          auto& callee = st.call.callee_id;
          auto result = redis::parse_start_result(r);
          if (result == redis::start_result::failed) {
            // Timed out or failed; the script may still run. Undo it, so
            // neither user stays busy with a call nobody holds.
            caf::anon_send(st.ctx->bridge, eval_atom::value,
                           redis::call_end(st.call.session_id, st.call.caller_id,
                                           ended_ttl(st.ctx->config), unix_now(), true,
                                           events(self)));
            goring_metrics().count_call("failed");
            rp.deliver(redis_failure(r));
            finish(self);
            return;
          }
          bool offline_ring = result == redis::start_result::offline_ring;
          if (result != redis::start_result::ok && !offline_ring) {
            switch (result) {
              case redis::start_result::offline:
                goring_metrics().count_call("offline");
                rp.deliver(signal_failure(signal_error::user_offline,
                                          "user " + callee + " is not connected"));
                break;
              case redis::start_result::callee_busy:
                goring_metrics().count_call("busy");
                rp.deliver(signal_failure(signal_error::user_busy, "user " + callee + " is busy"));
                break;
              case redis::start_result::caller_busy:
                goring_metrics().count_call("failed");
                // Redis has the caller in a live call this connection does not hold.
                rp.deliver(signal_failure(signal_error::user_busy, "you are already in a call"));
                break;
              default:
                goring_metrics().count_call("failed");
                rp.deliver(signal_failure(signal_error::internal_error,
                                          "could not create the call session"));
                break;
            }
            finish(self);
            return;
          }
          if (st.locals.empty()) {
            // The caller left while Redis created the session.
            end_call(self, st.call.caller_id, true, caf::response_promise{});
            return;
          }
          GORING_LOG_WITH(info, component, ({{"session_id", st.call.session_id}}),
                          "call " << st.call.session_id << ": " << st.call.caller_id << " rings "
                                  << callee
                                  << (offline_ring ? " (offline: callee.offline posted)" : ""));
          st.call.state = call_phase::ringing;
          auto& caller_conn = st.locals.begin()->second;
          self->send(caller_conn, write_atom::value,
                     protocol::encode_ringing(st.call.session_id, callee, offline_ring));
          if (offline_ring) {
            // Nobody to tell: the callee's next connection reads the ring
            // from Redis (claim_user) and gets call.ring then.
            goring_metrics().count_call("offline_ring");
            arm_ring_timeout(self, st.ctx->config.offline_ring_timeout);
          } else {
            notify(self, callee, protocol::encode_ring(st.call.session_id, st.call.caller_info));
            arm_ring_timeout(self);
          }
          self->delayed_send(self, check_period(st.ctx->config), check_atom::value);
          self->become(ringing_behavior(self));
          rp.deliver(true);
        });
      return rp;
    },
    [self](join_atom, const std::string& user, const caf::actor& conn, const std::string&) {
      ++self->state.handled;
      self->state.locals[user] = conn;
      self->monitor(conn);
    },
    [self](status_atom) { return status_json(self); },
    // The start script's answer sees a caller who left.
    [](shutdown_atom) {},
    // A call not started yet has nothing to write back: call_start is
    // either answered by the new master or fails and is undone.
    [](restore_atom) {},
  };
}

caf::behavior call_actor_fn(call_actor* self, context_ptr ctx, call_setup setup,
                            std::string local_user, caf::actor conn) {
  auto& st = self->state;
  st.ctx = ctx;
  st.call = std::move(setup);
  st.created_at = unix_now();
  st.created_ns = steady_ns();
  st.failovers_seen = ctx->redis_failovers.load();
  ++ctx->live_calls;
  self->attach_functor([ctx] { --ctx->live_calls; });
  alarm::clear_on_exit(ctx->alarm, self);
  st.locals[local_user] = conn;
  self->monitor(conn);
  self->set_down_handler([self](const caf::down_msg& dm) { on_participant_down(self, dm); });
  if (st.call.state == call_phase::starting)
    return starting_behavior(self);
  self->delayed_send(self, check_period(ctx->config), check_atom::value);
  if (st.call.state == call_phase::accepted)
    return accepted_behavior(self);
  // One ring timer per call: the caller's instance owns it (a crashed one
  // is covered by call_check).
  if (local_user == st.call.caller_id && st.call.ring_expires_at > 0)
    arm_ring_timeout(self,
                     std::max(std::chrono::milliseconds{0},
                              std::chrono::milliseconds{st.call.ring_expires_at - unix_now_ms()}));
  else if (local_user == st.call.caller_id)
    arm_ring_timeout(self);
  return ringing_behavior(self);
}

} // namespace

std::string_view phase_name(call_phase phase) {
  switch (phase) {
    case call_phase::starting:
      return "starting";
    case call_phase::ringing:
      return "ringing";
    case call_phase::accepted:
      break;
  }
  return "accepted";
}

caf::actor spawn_call_actor(caf::actor_system& sys, context_ptr ctx, call_setup setup,
                            const std::string& local_user, const caf::actor& conn) {
  return sys.spawn(call_actor_fn, std::move(ctx), std::move(setup), local_user, conn);
}

} // namespace goring
