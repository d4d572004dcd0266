#include "actors/connection_actor.hpp"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <optional>
#include <random>
#include <unordered_map>
#include <unordered_set>

#include "actors/alarm.hpp"
#include "actors/atoms.hpp"
#include "actors/call_actor.hpp"
#include "actors/ice_servers.hpp"
#include "codec/admin_json.hpp"
#include "config/log.hpp"
#include "metrics/instance_metrics.hpp"
#include "redis/scripts.hpp"

namespace goring {

namespace {

constexpr const char* component = "connection";

using protocol::client_message;
using protocol::client_type;
using protocol::signal_error;

/// Direct relays. When a participant of an accepted call relays through the
/// call actor, the call actor hands its connection a route to the peer
/// (route_atom): the peer's connection actor, or the peer's channel through
/// the bridge; a new one whenever the peer's connection changes. Relays of
/// that session then skip the call actor.
///
/// Order. Relays sent to the call actor before the route came may still
/// wait in its mailbox, so a new route starts with a flush: one request to
/// the call actor, answered after it forwarded everything this connection
/// sent it before (one sender's messages arrive in the order sent); relays
/// read meanwhile wait here, in order, and go out direct once the answer
/// came. Whatever the call actor forwarded is in the peer's mailbox before
/// it answers, so before any direct relay. The call actor hands routes
/// only in its accepted state, after it sent call.accepted, and a route to
/// a resuming connection only after it joined, which that connection
/// awaits before anything else (writing call.resumed): direct relays reach
/// a peer after those frames, as relays through the call actor did.
///
/// End. A route ends with the call for this connection (its call.end or
/// call.reject, the call's end event, the call actor's end): relays still
/// waiting go to the call actor, in order, which forwards, refuses or
/// drops them as before. Direct relays for a session the receiver does not
/// hold or is leaving are dropped, as the call actor dropped relays after
/// an end. Routes are a cache of the call actor's word and go with it.
struct peer_route {
  /// The call actor that handed it out: the flush goes there, and relays
  /// fall back to it.
  caf::actor call;
  /// The peer's connection actor here, or invalid: then `peer_user`'s
  /// channel (PUBLISH through the bridge).
  caf::actor peer_conn;
  std::string peer_user;
  /// Flushed: relays go direct.
  bool ready = false;
  /// Tells the answer of this route's flush from an older route's.
  uint64_t id = 0;
  /// Relays read while the flush is under way, with their read times.
  std::vector<std::pair<std::string, int64_t>> held;
};

struct connection_state {
  context_ptr ctx;
  std::weak_ptr<client_link> link;
  protocol::user_info me;
  std::string token;
  /// The calls this user takes part in, by session id (at most one live;
  /// briefly two while a new ring races a failed start).
  std::unordered_map<std::string, caf::actor> calls;
  /// Sessions whose end this client was already told: the same end can
  /// come twice (from the peer's instance and from a call check).
  std::unordered_set<std::string> told_over;
  /// Direct routes to the peers of accepted calls, by session id.
  std::unordered_map<std::string, peer_route> routes;
  uint64_t next_route_id = 1;
  /// Sessions this user ended or rejected (the answer is still to come):
  /// no route is taken for them and direct relays for them are dropped, as
  /// the call actor drops relays that come after an end.
  std::unordered_set<std::string> leaving;
  bool closing = false;
  bool registered = false;
  std::string remote_addr;
  long long connected_at = 0;
  uint64_t handled = 0;
  /// When the frame being handled was read (steady_ns), for relay timing.
  int64_t read_at = 0;
  /// The `exp` of the token in force (from the upgrade or the last
  /// auth.refresh); none when it has none.
  std::optional<std::chrono::system_clock::time_point> expires_at;
  /// Bumped at each refresh, so the timer of an older token does nothing.
  uint64_t expiry_generation = 0;

  static inline const char* name = "connection_actor";
};

using connection_actor = caf::stateful_actor<connection_state>;

/// A random version 4 UUID.
std::string new_session_id() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  uint64_t hi = rng();
  uint64_t lo = rng();
  hi = (hi & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;
  lo = (lo & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;
  char buf[37];
  std::snprintf(buf, sizeof(buf), "%08x-%04x-%04x-%04x-%012llx", static_cast<unsigned>(hi >> 32),
                static_cast<unsigned>((hi >> 16) & 0xffff), static_cast<unsigned>(hi & 0xffff),
                static_cast<unsigned>(lo >> 48),
                static_cast<unsigned long long>(lo & 0xffffffffffffULL));
  return buf;
}

void write(connection_actor* self, std::string frame) {
  goring_metrics().sent_of(frame_type(frame)).inc();
  if (auto link = self->state.link.lock())
    link->send(std::move(frame));
}

void send_error(connection_actor* self, signal_error code, const std::string& message) {
  goring_metrics().count_error(code);
  GORING_LOG_WITH(info, component, ({{"user_id", self->state.me.user_id}}),
                  "user " << self->state.me.user_id << ": " << protocol::wire_code(code) << ": "
                          << message);
  write(self, protocol::encode_error(code, message));
}

void send_error(connection_actor* self, const caf::error& err) {
  auto [code, message] = read_failure(err);
  send_error(self, code, message);
}

/// Ends the actor: `why`, with this connection's owner token, so its call
/// actors can tell its ws:user key, not yet released, from a successor's.
void leave(connection_actor* self, departure why) {
  self->quit(caf::make_error(why, self->state.token));
}

void close(connection_actor* self, uint16_t code, const std::string& reason, departure why) {
  self->state.closing = true;
  if (auto link = self->state.link.lock())
    link->close(code, reason);
  leave(self, why);
}

/// Arms the close for when the token lapses: at exp + JWT_LEEWAY, the moment
/// the upgrade would refuse the same token.
void arm_expiry(connection_actor* self) {
  using namespace std::chrono;
  auto& st = self->state;
  ++st.expiry_generation;
  if (!st.expires_at)
    return;
  auto left =
    duration_cast<milliseconds>(*st.expires_at + st.ctx->config.jwt_leeway - system_clock::now());
  // A far-off exp is looked at again daily rather than armed in one go.
  auto wait = std::clamp(left, milliseconds{0}, milliseconds{hours{24}});
  alarm::set(st.ctx->alarm, self, token_expired_atom::value, wait,
             caf::make_message(token_expired_atom::value, st.expiry_generation));
}

/// auth.refresh: a valid token of the same user replaces the one in force;
/// anything else is refused and the old expiry still applies.
void refresh_token(connection_actor* self, const std::string& token) {
  auto& st = self->state;
  auto check = st.ctx->verifier ? st.ctx->verifier->verify(token)
                                : auth::token_check{std::nullopt, "no token check configured",
                                                    auth::refusal_reason::no_keys};
  if (!check.valid) {
    goring_metrics().count_refused_token(auth::reason_name(check.reason));
    // The client may send the token again; the key set may hold its kid by
    // then (the fetch is rate-limited, and nobody waits for it here).
    if (check.reason == auth::refusal_reason::unknown_kid && st.ctx->verifier)
      st.ctx->verifier->refresh_keys({});
    send_error(self, signal_error::unauthorized,
               "token refused: " + check.refusal + "; the current token still applies");
    return;
  }
  if (check.valid->user_id != st.me.user_id) {
    send_error(self, signal_error::unauthorized,
               "the token is for another user; the current token still applies");
    return;
  }
  st.expires_at = check.valid->expires_at;
  arm_expiry(self);
  std::optional<long long> exp;
  if (st.expires_at)
    exp =
      std::chrono::duration_cast<std::chrono::seconds>(st.expires_at->time_since_epoch()).count();
  GORING_LOG_WITH(info, component, ({{"user_id", st.me.user_id}}),
                  "user " << st.me.user_id << " refreshed its token (exp "
                          << (exp ? std::to_string(*exp) : std::string{"none"}) << ")");
  write(self, protocol::encode_refreshed(exp));
}

/// ice.servers: the STUN/TURN servers for the client's RTCPeerConnection.
/// With TURN, fresh credentials follow at 80 % of TURN_TTL.
void send_ice_servers(connection_actor* self) {
  auto& config = self->state.ctx->config;
  write(self, ice::encode_ice_servers(config, self->state.me.user_id, unix_now()));
  if (ice::refreshes(config))
    alarm::set(self->state.ctx->alarm, self, ice_refresh_atom::value, ice::refresh_interval(config),
               caf::make_message(ice_refresh_atom::value));
}

void track_call(connection_actor* self, const std::string& session_id, const caf::actor& call) {
  self->state.calls[session_id] = call;
  self->monitor(call);
}

void dispatch(connection_actor* self, client_message msg, std::string frame);

/// A relay along an established route.
void relay_direct(connection_actor* self, const std::string& session_id, const peer_route& route,
                  std::string frame, int64_t read_at) {
  if (route.peer_conn) {
    self->send(route.peer_conn, relay_atom::value, session_id, std::move(frame), read_at);
    return;
  }
  self->send(self->state.ctx->bridge, publish_atom::value, route.peer_user,
             protocol::tagged(protocol::signal_tag::relay, frame), read_at);
}

/// Ends the route of a session, if any: relays waiting for its flush go to
/// the call actor, after everything sent there before.
void drop_route(connection_actor* self, const std::string& session_id) {
  auto& st = self->state;
  auto it = st.routes.find(session_id);
  if (it == st.routes.end())
    return;
  auto call = std::move(it->second.call);
  auto held = std::move(it->second.held);
  st.routes.erase(it);
  for (auto& [frame, read_at] : held)
    self->send(call, relay_atom::value, st.me.user_id, std::move(frame), read_at);
}

/// Drops the routes that go through a call actor that is gone.
void drop_routes_of(connection_actor* self, const caf::actor_addr& call) {
  std::vector<std::string> gone;
  for (auto& [session_id, route] : self->state.routes)
    if (route.call.address() == call)
      gone.push_back(session_id);
  for (auto& session_id : gone)
    drop_route(self, session_id);
}

/// A route from the call actor of `session_id` (the sender).
void take_route(connection_actor* self, const std::string& session_id, caf::actor peer_conn,
                std::string peer_user) {
  auto& st = self->state;
  auto call_it = st.calls.find(session_id);
  // Only from the call actor this connection works with, for a call it has
  // not left: anything else keeps the relays on the call actor.
  if (call_it == st.calls.end() || call_it->second.address() != self->current_sender()
      || st.leaving.count(session_id) != 0)
    return;
  auto it = st.routes.find(session_id);
  if (it != st.routes.end()) {
    // A new way to the peer (it reconnected, moved or left): relays already
    // go past the call actor, so no flush is needed to keep their order.
    it->second.peer_conn = std::move(peer_conn);
    it->second.peer_user = std::move(peer_user);
    return;
  }
  auto& route = st.routes[session_id];
  route.call = call_it->second;
  route.peer_conn = std::move(peer_conn);
  route.peer_user = std::move(peer_user);
  route.id = st.next_route_id++;
  self->request(route.call, no_request_timeout, flush_atom::value)
    .then(
      [self, session_id, id = route.id](bool) {
        auto it = self->state.routes.find(session_id);
        if (it == self->state.routes.end() || it->second.id != id)
          return;
        auto& route = it->second;
        route.ready = true;
        auto held = std::move(route.held);
        for (auto& [frame, read_at] : held)
          relay_direct(self, session_id, route, std::move(frame), read_at);
      },
      [self, session_id, id = route.id](caf::error&) {
        // The call actor ended: whatever waited goes where relays went.
        auto it = self->state.routes.find(session_id);
        if (it != self->state.routes.end() && it->second.id == id)
          drop_route(self, session_id);
      });
}

/// A relay of this user: along its route, or through the call actor.
void relay(connection_actor* self, const caf::actor& call, const std::string& session_id,
           std::string frame) {
  auto& st = self->state;
  auto it = st.routes.find(session_id);
  if (it == st.routes.end()) {
    self->send(call, relay_atom::value, st.me.user_id, std::move(frame), st.read_at);
    return;
  }
  if (!it->second.ready) {
    it->second.held.emplace_back(std::move(frame), st.read_at);
    return;
  }
  relay_direct(self, session_id, it->second, std::move(frame), st.read_at);
}

/// Gets the instance's call actor for a session from the bridge, which
/// joins this connection to it or spawns it, tracks it, then runs `joined`
/// with it; `failed` gets the bridge's error. Awaited: once joined, the
/// call actor may hand the peer a route here, and the peer's direct relays
/// must find the session tracked (they are dropped for a session this
/// connection does not hold).
template <class Joined, class Failed>
void open_call(connection_actor* self, call_setup setup, Joined joined, Failed failed) {
  auto& st = self->state;
  auto& own = st.me.user_id == setup.caller_id ? setup.caller_info : setup.callee_info;
  own = st.me;
  auto session_id = setup.session_id;
  self
    ->request(st.ctx->bridge, no_request_timeout, open_call_atom::value, std::move(setup),
              st.me.user_id, caf::actor{self})
    .await(
      [self, session_id, joined](caf::actor& call) mutable {
        track_call(self, session_id, call);
        joined(call);
      },
      [failed](caf::error& err) mutable { failed(err); });
}

/// open_call for a request of the client's: a failure is its error.
template <class Joined>
void open_call(connection_actor* self, call_setup setup, Joined joined) {
  open_call(self, std::move(setup), std::move(joined), [self](const caf::error& err) {
    GORING_LOG(warn, component, "opening a call actor failed: " << caf::to_string(err));
    send_error(self, signal_error::internal_error, "the server could not open the call");
  });
}

/// The phase a call actor takes up a live session in.
call_phase phase_of(redis::session_state state) {
  return state == redis::session_state::accepted ? call_phase::accepted : call_phase::ringing;
}

/// A request about a session this connection holds no call actor for: ask
/// Redis what the session is, answer the right error, or (a participant
/// whose call lives on, e.g. after a reconnect) adopt it and go on.
void adopt_or_refuse(connection_actor* self, client_message msg, std::string frame) {
  auto& st = self->state;
  self
    ->request(st.ctx->bridge, no_request_timeout, eval_atom::value,
              redis::session_lookup(msg.session_id))
    .then(
      [self, msg, frame](redis::reply& r) mutable {
        using redis::session_state;
        auto& st = self->state;
        auto session = redis::parse_session_lookup(r);
        if (session.status == redis::session_record::kind::error) {
          send_error(self, signal_error::internal_error,
                     "the server could not reach its database; try again");
          return;
        }
        if (session.status == redis::session_record::kind::missing) {
          send_error(self, signal_error::session_not_found,
                     "no call with session_id " + msg.session_id);
          return;
        }
        auto& caller = session.caller_id;
        auto& callee = session.callee_id;
        auto state = session.state;
        auto& me = st.me.user_id;
        if (me != caller && me != callee) {
          send_error(self, signal_error::unauthorized, "you are not a participant of this call");
          return;
        }
        bool callee_only =
          msg.type == client_type::call_accept || msg.type == client_type::call_reject;
        if (callee_only && me != callee) {
          send_error(self, signal_error::unauthorized,
                     std::string{"only the callee can "}
                       + (msg.type == client_type::call_accept ? "accept" : "reject")
                       + " this call");
          return;
        }
        if (!redis::is_live(state) || (callee_only && state != session_state::ringing)
            || (protocol::is_relay(msg.type) && state != session_state::accepted)) {
          send_error(self, signal_error::invalid_state,
                     state == session_state::ringing
                       ? "the call has not been accepted yet"
                       : "the call is " + std::string{redis::state_name(state)});
          return;
        }
        if (st.calls.count(msg.session_id) != 0) {
          dispatch(self, std::move(msg), std::move(frame));
          return;
        }
        call_setup setup{msg.session_id,
                         caller,
                         callee,
                         protocol::user_info_from_json(session.caller_info, caller),
                         protocol::user_info_from_json(session.callee_info, callee),
                         phase_of(state)};
        open_call(self, std::move(setup), [self, msg, frame](const caf::actor&) mutable {
          dispatch(self, std::move(msg), std::move(frame));
        });
      },
      [self](caf::error& err) {
        GORING_LOG(warn, component, "session lookup failed: " << caf::to_string(err));
        send_error(self, signal_error::internal_error,
                   "the server could not reach its database; try again");
      });
}

/// Sends a call operation and reports its failure to the client. A call
/// actor that ended meanwhile (the peer hung up first) cannot answer; then
/// Redis tells what became of the session.
template <class... Ts>
void call_operation(connection_actor* self, const caf::actor& call, client_message msg,
                    std::string frame, bool ends_call, Ts&&... xs) {
  self->request(call, no_request_timeout, std::forward<Ts>(xs)...)
    .then(
      [self, session_id = msg.session_id, ends_call](bool) {
        if (ends_call) {
          self->state.calls.erase(session_id);
          self->state.leaving.erase(session_id);
        }
      },
      [self, call, msg, frame, ends_call](caf::error& err) mutable {
        if (ends_call)
          self->state.leaving.erase(msg.session_id);
        if (err.category() == caf::atom("goring")) {
          send_error(self, err);
          return;
        }
        auto it = self->state.calls.find(msg.session_id);
        if (it != self->state.calls.end() && it->second == call) {
          self->state.calls.erase(it);
          drop_route(self, msg.session_id);
        }
        adopt_or_refuse(self, std::move(msg), std::move(frame));
      });
}

void start_call(connection_actor* self, const std::string& callee) {
  auto& st = self->state;
  if (callee == st.me.user_id) {
    send_error(self, signal_error::invalid_message, "you cannot call yourself");
    return;
  }
  if (!st.calls.empty()) {
    // user_busy, as the reference answers: clients branch on the code.
    send_error(self, signal_error::user_busy, "you are already in a call");
    return;
  }
  auto session_id = new_session_id();
  call_setup setup{session_id, st.me.user_id,    callee,
                   st.me,      {callee, {}, {}}, call_phase::starting};
  // Awaited: a second call.start must see this call, not race it.
  open_call(self, std::move(setup), [self, session_id](const caf::actor& call) {
    self->request(call, no_request_timeout, start_atom::value)
      .then([](bool) { /* call.ringing was written by the call actor */ },
            [self, session_id](caf::error& err) {
              self->state.calls.erase(session_id);
              send_error(self, err);
            });
  });
}

void dispatch(connection_actor* self, client_message msg, std::string frame) {
  auto& st = self->state;
  if (msg.type == client_type::call_start) {
    start_call(self, msg.callee_id);
    return;
  }
  if (msg.type == client_type::auth_refresh) {
    refresh_token(self, msg.token);
    return;
  }
  auto it = st.calls.find(msg.session_id);
  if (it == st.calls.end()) {
    adopt_or_refuse(self, std::move(msg), std::move(frame));
    return;
  }
  auto call = it->second;
  auto me = st.me.user_id;
  switch (msg.type) {
    case client_type::call_accept:
      call_operation(self, call, std::move(msg), std::move(frame), false, accept_atom::value, me,
                     protocol::to_json(st.me));
      break;
    case client_type::call_reject:
      drop_route(self, msg.session_id);
      st.leaving.insert(msg.session_id);
      call_operation(self, call, std::move(msg), std::move(frame), true, reject_atom::value, me);
      break;
    case client_type::call_end:
      drop_route(self, msg.session_id);
      st.leaving.insert(msg.session_id);
      call_operation(self, call, std::move(msg), std::move(frame), true, end_atom::value, me);
      break;
    default: // webrtc.*: to the peer, unchanged
      relay(self, call, msg.session_id, std::move(frame));
      break;
  }
}

/// A call event for this user, from a local call actor (`hint`) or from
/// another instance over pub/sub (no hint).
void on_event(connection_actor* self, std::string frame, const caf::actor& hint) {
  auto& st = self->state;
  auto ev = protocol::parse_server_event(frame);
  if (!ev) {
    write(self, std::move(frame));
    return;
  }
  auto it = st.calls.find(ev->session_id);
  if (ev->type == protocol::event_type::ring) {
    if (it == st.calls.end() && hint) {
      self->send(hint, join_atom::value, st.me.user_id, caf::actor{self}, protocol::to_json(st.me));
      track_call(self, ev->session_id, hint);
    } else if (it == st.calls.end()) {
      call_setup setup{ev->session_id, ev->caller_id, st.me.user_id,
                       ev->peer,       st.me,         call_phase::ringing};
      if (setup.caller_info.user_id.empty())
        setup.caller_info.user_id = ev->caller_id;
      // Awaited: the client may accept the instant it sees the ring.
      open_call(
        self, std::move(setup), [](const caf::actor&) {},
        [](const caf::error& err) {
          GORING_LOG(warn, component, "opening a call actor failed: " << caf::to_string(err));
        });
    }
    write(self, std::move(frame));
    return;
  }
  bool ends = ev->type != protocol::event_type::accepted;
  if (ends && st.told_over.count(ev->session_id) != 0)
    return;
  if (it != st.calls.end()) {
    if (it->second != hint)
      self->send(it->second, remote_atom::value, static_cast<uint8_t>(ev->type), ev->reason,
                 protocol::to_json(ev->peer));
    if (ends) {
      st.calls.erase(it);
      st.leaving.erase(ev->session_id);
      drop_route(self, ev->session_id);
    }
  }
  if (ends) {
    if (st.told_over.size() >= 16)
      st.told_over.clear();
    st.told_over.insert(ev->session_id);
  }
  write(self, std::move(frame));
}

/// The user reconnected while a call of theirs went on: take it up here
/// and tell the client. `claim` is claim_user's answer: previous owner,
/// session_id, caller_id, callee_id, state, caller_info, callee_info,
/// offline_ring. The callee of a call that rang while they had no
/// connection (an offline ring) hears call.ring, as if it had been online:
/// read from Redis, so no pub/sub message it could have missed is needed.
void resume(connection_actor* self, const std::vector<std::string>& claim) {
  auto& st = self->state;
  auto state = redis::parse_session_state(claim[4]);
  call_setup setup{claim[1],
                   claim[2],
                   claim[3],
                   protocol::user_info_from_json(claim[5], claim[2]),
                   protocol::user_info_from_json(claim[6], claim[3]),
                   phase_of(state)};
  bool caller = st.me.user_id == setup.caller_id;
  bool offline_ring =
    state == redis::session_state::ringing && claim.size() >= 9 && claim[7] == "1";
  bool rung_offline = offline_ring && !caller;
  if (offline_ring && caller)
    setup.ring_expires_at = std::strtoll(claim[8].c_str(), nullptr, 10);
  auto frame =
    rung_offline
      ? protocol::encode_ring(setup.session_id, setup.caller_info)
      : protocol::encode_resumed(setup.session_id, caller ? setup.callee_id : setup.caller_id,
                                 redis::state_name(state), caller ? "caller" : "callee");
  GORING_LOG_WITH(info, component, ({{"user_id", st.me.user_id}}),
                  "user " << st.me.user_id
                          << (rung_offline ? " is rung for call " : " resumes call ")
                          << setup.session_id);
  open_call(
    self, std::move(setup), [self, frame](const caf::actor&) { write(self, frame); },
    [](const caf::error& err) {
      GORING_LOG(warn, component, "resuming failed: " << caf::to_string(err));
    });
}

/// One row of the admin API's /admin/actors and /admin/users.
std::string status_json(connection_actor* self) {
  auto& st = self->state;
  std::string session_id;
  if (!st.calls.empty())
    session_id = st.calls.begin()->first;
  return admin_row({{"kind", "connection"},
                    {"id", static_cast<long long>(self->id())},
                    {"user_id", st.me.user_id},
                    {"state", st.closing      ? "closing"
                              : st.registered ? "registered"
                                              : "registering"},
                    {"age_seconds", unix_now() - st.connected_at},
                    {"mailbox", static_cast<long long>(self->mailbox().size())},
                    {"handled", static_cast<long long>(st.handled)},
                    {"instance", st.ctx->instance_id},
                    {"connected_at", st.connected_at},
                    {"remote_addr", st.remote_addr},
                    {"session_id", session_id}});
}

caf::behavior connection_actor_fn(connection_actor* self, context_ptr ctx,
                                  std::weak_ptr<client_link> link, auth::claims who,
                                  std::string remote_addr) {
  auto& st = self->state;
  st.ctx = ctx;
  st.remote_addr = std::move(remote_addr);
  st.connected_at = unix_now();
  st.link = std::move(link);
  st.me = protocol::user_info{who.user_id, who.name, who.username};
  st.expires_at = who.expires_at;
  arm_expiry(self);
  // The first frame on the connection, before call.resumed or anything else.
  if (ice::enabled(ctx->config))
    send_ice_servers(self);
  st.token = ctx->instance_id + "/" + std::to_string(ctx->next_connection_id++);
  ++ctx->live_connections;
  self->attach_functor([ctx] { --ctx->live_connections; });
  alarm::clear_on_exit(ctx->alarm, self);
  self->set_down_handler([self](const caf::down_msg& dm) {
    auto& st = self->state;
    for (auto it = st.calls.begin(); it != st.calls.end();) {
      if (it->second.address() == dm.source) {
        st.leaving.erase(it->first);
        it = st.calls.erase(it);
      } else {
        ++it;
      }
    }
    drop_routes_of(self, dm.source);
  });
  // Frames wait in the mailbox until the user is registered: subscribed to
  // its channel and owner of its ws:user key.
  self
    ->request(ctx->bridge, no_request_timeout, register_atom::value, st.me.user_id, st.token,
              caf::actor{self})
    .await(
      [self](std::vector<std::string>& claim) {
        auto& st = self->state;
        st.registered = true;
        GORING_LOG_WITH(info, component, ({{"user_id", st.me.user_id}}),
                        "user " << st.me.user_id << " connected"
                                << (claim[0].empty() ? "" : " (took over)"));
        if (claim.size() >= 7)
          resume(self, claim);
      },
      [self](caf::error& err) {
        GORING_LOG_WITH(warn, component, ({{"user_id", self->state.me.user_id}}),
                        "user " << self->state.me.user_id
                                << " could not register: " << caf::to_string(err));
        send_error(self, signal_error::internal_error,
                   "the server could not register the connection; reconnect later");
        close(self, close_code::internal_error, "registration failed", departure::hung_up);
      });
  return {
    [self](text_atom, std::string& frame, int64_t read_at) {
      ++self->state.handled;
      if (self->state.closing)
        return;
      auto& config = self->state.ctx->config;
      auto parsed = protocol::parse_client_frame(
        frame, protocol::frame_limits{config.max_sdp_bytes, config.max_candidate_bytes});
      goring_metrics().count_received(parsed);
      self->state.read_at = read_at;
      if (!parsed.message) {
        send_error(self, parsed.error, parsed.error_message);
        return;
      }
      dispatch(self, std::move(*parsed.message), std::move(frame));
    },
    [self](binary_atom) {
      send_error(self, signal_error::invalid_message,
                 "binary frames are not supported; send JSON text frames");
    },
    [self](closed_atom, uint8_t kind) {
      auto why = static_cast<close_kind>(kind);
      bool away = why == close_kind::connection_lost;
      GORING_LOG_WITH(info, component, ({{"user_id", self->state.me.user_id}}),
                      "user " << self->state.me.user_id
                              << (away ? " lost its connection" : " disconnected"));
      leave(self, away ? departure::away : departure::hung_up);
    },
    [self](signal_atom, std::string& payload, const caf::actor& hint) {
      ++self->state.handled;
      if (payload.empty())
        return;
      char tag = payload[0];
      payload.erase(0, 1);
      if (tag == protocol::signal_tag::event) {
        on_event(self, std::move(payload), hint);
      } else if (tag == protocol::signal_tag::relay) {
        // A relay for a call this connection is not in: sent to the user's
        // channel just before the call ended (the peer's route pointed at
        // this user while it was away), reaching its next connection. Not
        // for this client, as the call actor drops relays after an end.
        if (self->state.calls.empty())
          return;
        write(self, std::move(payload));
      }
    },
    [self](write_atom, std::string& frame) {
      ++self->state.handled;
      write(self, std::move(frame));
    },
    [self](relay_atom, std::string& frame, int64_t read_at) {
      ++self->state.handled;
      write(self, std::move(frame));
      goring_metrics().relay->observe(seconds_since(read_at));
    },
    [self](relay_atom, const std::string& session_id, std::string& frame, int64_t read_at) {
      // Straight from the peer's connection (see peer_route).
      auto& st = self->state;
      ++st.handled;
      if (st.closing || st.calls.count(session_id) == 0 || st.leaving.count(session_id) != 0)
        return;
      write(self, std::move(frame));
      goring_metrics().relay->observe(seconds_since(read_at));
    },
    [self](route_atom, const std::string& session_id, caf::actor& peer_conn,
           std::string& peer_user) {
      ++self->state.handled;
      take_route(self, session_id, std::move(peer_conn), std::move(peer_user));
    },
    [self](status_atom) { return status_json(self); },
    [self](token_expired_atom, uint64_t generation) {
      auto& st = self->state;
      if (generation != st.expiry_generation || st.closing || !st.expires_at)
        return;
      if (std::chrono::system_clock::now() < *st.expires_at + st.ctx->config.jwt_leeway) {
        arm_expiry(self); // woke early: a daily re-check of a far-off exp
        return;
      }
      GORING_LOG_WITH(info, component, ({{"user_id", st.me.user_id}}),
                      "user " << st.me.user_id << ": token expired; closing with 4001");
      // Like a kick: the user is gone until it connects with a new token.
      close(self, close_code::token_expired, "token expired", departure::hung_up);
    },
    [self](ice_refresh_atom) {
      if (!self->state.closing)
        send_ice_servers(self);
    },
    [self](kick_atom) {
      GORING_LOG_WITH(info, component, ({{"user_id", self->state.me.user_id}}),
                      "user " << self->state.me.user_id << " kicked by an operator");
      close(self, close_code::kicked, "kicked by operator", departure::hung_up);
    },
    [self](replaced_atom) {
      GORING_LOG_WITH(info, component, ({{"user_id", self->state.me.user_id}}),
                      "user " << self->state.me.user_id << " replaced by a newer connection");
      close(self, close_code::replaced, "replaced", departure::away);
    },
    [self](shutdown_atom) {
      // The instance restarts; its calls go on and resume elsewhere.
      close(self, close_code::service_restart, "service restart", departure::away);
    },
  };
}

/// Forwards what the WebSocket session reports into the actor's mailbox.
class actor_port : public connection_port {
public:
  explicit actor_port(caf::actor actor) : actor_(std::move(actor)) {
    // nop
  }
  ~actor_port() override {
    closed(close_kind::connection_lost);
  }
  void text_frame(std::string frame) override {
    caf::anon_send(actor_, text_atom::value, std::move(frame), static_cast<int64_t>(steady_ns()));
  }
  void binary_frame() override {
    caf::anon_send(actor_, binary_atom::value);
  }
  void closed(close_kind why) override {
    if (!actor_)
      return;
    caf::anon_send(actor_, closed_atom::value, static_cast<uint8_t>(why));
    actor_ = nullptr;
  }

private:
  caf::actor actor_;
};

} // namespace

std::shared_ptr<connection_port> spawn_connection_actor(caf::actor_system& sys, context_ptr ctx,
                                                        std::weak_ptr<client_link> link,
                                                        const auth::claims& who,
                                                        const std::string& remote_addr) {
  auto actor = sys.spawn(connection_actor_fn, std::move(ctx), std::move(link), who, remote_addr);
  return std::make_shared<actor_port>(std::move(actor));
}

} // namespace goring
