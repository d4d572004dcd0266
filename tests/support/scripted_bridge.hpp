/// A stand-in for the Redis bridge (actors/redis_bridge.cpp) in actor tests,
/// and the instance around the actors under test: context, bridge, alarm.
///
/// The bridge answers each call script by its id from a small in-memory
/// model of the keys the script reads and writes, following the return
/// values documented in redis/scripts/*.lua, so whatever order the actors
/// run their scripts in gets the answers Redis would give; a test may also
/// dictate a script's next answer. Like the real bridge it registers
/// connections, spawns and finds call actors (open_call) and hands events to
/// local connections (deliver); what would go to another instance over
/// pub/sub is recorded instead. The real-Redis tests (tests/*_redis_test.cpp)
/// check the scripts themselves.
#pragma once

#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <caf/all.hpp>
#include <doctest/doctest.h>

#include "actors/alarm.hpp"
#include "actors/atoms.hpp"
#include "actors/call_actor.hpp"
#include "actors/context.hpp"
#include "redis/keys.hpp"
#include "redis/reply.hpp"
#include "redis/scripts.hpp"
#include "tests/support/actor_fixture.hpp"

namespace goring::test {

/// One call:session hash, as the call scripts leave it.
struct fake_session {
  std::string caller_id;
  std::string callee_id;
  /// ringing, accepted, rejected or ended.
  std::string state;
  std::string ended_reason;
  std::string caller_info;
  std::string callee_info;
  /// The away:caller / away:callee fields: when a call_check first missed
  /// the user (simulated time, ms), by user id.
  std::map<std::string, long long> away_since;
  /// It rang a callee with no connection (the offline_ring field).
  bool offline_ring = false;
};

/// The bridge's side of a test, shared with the test body: both run on the
/// test's thread, one at a time.
struct bridge_record {
  // -- Redis, as the call scripts see it --

  std::map<std::string, fake_session> sessions;
  /// Users whose ws:user key names a live connection. A registration puts
  /// the user here; the end of the connection registered last takes them
  /// out again (release_user).
  std::set<std::string> present;
  /// Answers the next runs of a script give instead of the model's; the
  /// model does not run for them ("Redis said so").
  std::map<redis::script, std::deque<redis::reply>> canned;

  // -- What the actors asked of the bridge --

  /// Every script run (eval), in order.
  std::vector<redis::script_call> scripts;
  /// (user, tagged payload) for the user's pub/sub channel: a deliver to a
  /// user with no connection here, and every publish (a relay to a peer on
  /// another instance).
  std::vector<std::pair<std::string, std::string>> published;

  // -- The instance's registries --

  /// The connection registered last for each user.
  std::map<std::string, caf::actor> connections;
  /// Call actors by session id, while they live.
  std::map<std::string, caf::actor> calls;
  /// What register answers a user (claim_user's reply: previous owner, then
  /// the call to resume); {""} for a user not here.
  std::map<std::string, std::vector<std::string>> claims;
  /// Every call actor the bridge spawned.
  std::vector<caf::actor> spawned;

  /// Names of the scripts run, in order; without the periodic call_check
  /// unless asked for.
  std::vector<std::string> script_names(bool with_checks = false) const {
    std::vector<std::string> names;
    for (auto& call : scripts)
      if (with_checks || call.id != redis::script::call_check)
        names.emplace_back(redis::script_name(call.id));
    return names;
  }

  /// How often `id` ran.
  std::size_t runs(redis::script id) const {
    std::size_t n = 0;
    for (auto& call : scripts)
      n += call.id == id ? 1 : 0;
    return n;
  }

  /// The last run of `id`; the test stops when it never ran.
  const redis::script_call& last(redis::script id) const {
    for (auto it = scripts.rbegin(); it != scripts.rend(); ++it)
      if (it->id == id)
        return *it;
    FAIL("script " << redis::script_name(id) << " never ran");
    return scripts.front(); // not reached
  }

  /// The session `session_id`; the test stops when there is none.
  const fake_session& session(const std::string& session_id) const {
    auto it = sessions.find(session_id);
    REQUIRE_MESSAGE(it != sessions.end(), "no session " << session_id << " in Redis");
    return it->second;
  }
};

// -- Replies as hiredis would hand them over --

inline redis::reply string_reply(std::string text) {
  redis::reply r;
  r.type = redis::reply::kind::string;
  r.str = std::move(text);
  return r;
}

inline redis::reply nil_reply() {
  return redis::reply{};
}

inline redis::reply array_reply(const std::vector<std::string>& elements) {
  redis::reply r;
  r.type = redis::reply::kind::array;
  for (auto& x : elements)
    r.elements.push_back(string_reply(x));
  return r;
}

namespace detail {

inline std::string session_id_of_key(const std::string& key) {
  auto prefix = std::string{redis::keys::session_prefix};
  REQUIRE_MESSAGE(key.compare(0, prefix.size(), prefix) == 0, "not a session key: " << key);
  return key.substr(prefix.size());
}

inline bool is_live(const std::string& state) {
  return state == "ringing" || state == "accepted";
}

inline bool in_live_call(const bridge_record& rec, const std::string& user) {
  for (auto& [id, s] : rec.sessions)
    if (is_live(s.state) && (s.caller_id == user || s.callee_id == user))
      return true;
  return false;
}

/// {status, caller_id, callee_id, detail}, the shape of the transition
/// scripts' answers.
inline redis::reply outcome(const char* status, const fake_session& s, const std::string& detail) {
  return array_reply({status, s.caller_id, s.callee_id, detail});
}

/// What the call script `call` answers (redis/scripts/*.lua), run at
/// `now_ms`. Presence is `rec.present`; a ws:user key left behind by a
/// crashed instance is not modelled.
inline redis::reply run_call_script(bridge_record& rec, const redis::script_call& call,
                                    long long now_ms) {
  using redis::script;
  auto& a = call.args;
  if (call.id == script::call_start) {
    // KEYS: ws:user:callee, call:user:caller, call:user:callee, session,
    // and the event stream while webhooks are on; ARGV[10]: the offline
    // ring in ms.
    auto id = session_id_of_key(call.keys.at(3));
    auto& caller = a.at(0);
    auto& callee = a.at(1);
    bool offline_ring = false;
    if (rec.present.count(callee) == 0) {
      if (call.keys.size() < 5 || a.size() < 10 || std::stoll(a.at(9)) <= 0)
        return string_reply("offline");
      offline_ring = true;
    }
    if (in_live_call(rec, caller))
      return string_reply("caller_busy");
    if (in_live_call(rec, callee))
      return string_reply("callee_busy");
    if (rec.sessions.count(id) != 0)
      return string_reply("exists");
    rec.sessions[id] = fake_session{caller, callee, "ringing", "", a.at(5), "", {}, offline_ring};
    return string_reply(offline_ring ? "offline_ring" : "ok");
  }
  auto id = session_id_of_key(call.keys.at(0));
  auto it = rec.sessions.find(id);
  if (call.id == script::call_check) {
    if (it == rec.sessions.end())
      return array_reply({"gone", "", ""});
    auto& s = it->second;
    if (!is_live(s.state))
      return array_reply({"gone", s.state, s.ended_reason});
    auto grace = std::stoll(a.at(4));
    std::string gone;
    for (auto* user : {&s.caller_id, &s.callee_id}) {
      bool woken = s.offline_ring && s.state == "ringing" && user == &s.callee_id;
      if (rec.present.count(*user) != 0 || woken) {
        s.away_since.erase(*user);
        continue;
      }
      auto since = s.away_since.find(*user);
      if (since == s.away_since.end())
        s.away_since[*user] = now_ms;
      else if (now_ms - since->second >= grace && gone.empty())
        gone = *user;
    }
    if (!gone.empty()) {
      s.state = "ended";
      s.ended_reason = "peer_disconnected";
      return array_reply({"ended", s.caller_id, s.callee_id, gone});
    }
    return array_reply({"live", s.state});
  }
  if (it == rec.sessions.end())
    return array_reply({"not_found"});
  auto& s = it->second;
  switch (call.id) {
    case script::call_accept: {
      if (a.at(0) != s.callee_id)
        return outcome("unauthorized", s, s.state);
      if (s.state != "ringing")
        return outcome("invalid_state", s, s.state);
      s.state = "accepted";
      s.callee_info = a.at(4);
      return outcome("ok", s, "accepted");
    }
    case script::call_reject: {
      if (a.at(0) != s.callee_id)
        return outcome("unauthorized", s, s.state);
      if (s.state != "ringing")
        return outcome("invalid_state", s, s.state);
      s.state = "rejected";
      s.ended_reason = "rejected";
      return outcome("ok", s, "rejected");
    }
    case script::call_end: {
      auto& user = a.at(0);
      if (user != s.caller_id && user != s.callee_id)
        return outcome("unauthorized", s, s.state);
      if (!is_live(s.state))
        return outcome("invalid_state", s, s.state);
      std::string reason = "ended_by_user";
      if (a.at(5) == "disconnect")
        reason = "peer_disconnected";
      else if (s.state == "ringing" && user == s.caller_id)
        reason = "cancelled";
      s.state = "ended";
      s.ended_reason = reason;
      return outcome("ok", s, reason);
    }
    case script::call_timeout: {
      if (s.state != "ringing")
        return outcome("invalid_state", s, s.state);
      s.state = "ended";
      s.ended_reason = "no_answer";
      return outcome("ok", s, "ended");
    }
    default:
      break;
  }
  return redis::reply::make_error("ERR script not modelled in the test bridge");
}

/// HMGET call:session:{id} caller_id callee_id state caller_info callee_info
/// (what session_read runs).
inline redis::reply run_command(const bridge_record& rec, const std::vector<std::string>& argv) {
  if (argv.size() != 7 || argv[0] != "HMGET")
    return redis::reply::make_error("ERR command not modelled in the test bridge");
  redis::reply r;
  r.type = redis::reply::kind::array;
  auto it = rec.sessions.find(session_id_of_key(argv[1]));
  for (std::size_t i = 2; i < argv.size(); ++i) {
    if (it == rec.sessions.end()) {
      r.elements.push_back(nil_reply());
      continue;
    }
    auto& s = it->second;
    auto& field = argv[i];
    std::string value = field == "caller_id"     ? s.caller_id
                        : field == "callee_id"   ? s.callee_id
                        : field == "state"       ? s.state
                        : field == "caller_info" ? s.caller_info
                        : field == "callee_info" ? s.callee_info
                                                 : std::string{};
    r.elements.push_back(value.empty() ? nil_reply() : string_reply(value));
  }
  return r;
}

} // namespace detail

/// The scripted bridge's behaviour. The scripts' `now` arguments come from
/// the system clock, which does not move in these tests; the model reads
/// the simulated clock instead.
inline caf::behavior scripted_bridge(caf::event_based_actor* self, context_ptr ctx,
                                     std::shared_ptr<bridge_record> rec) {
  self->set_down_handler([rec](const caf::down_msg& dm) {
    for (auto it = rec->connections.begin(); it != rec->connections.end(); ++it) {
      if (it->second.address() == dm.source) {
        rec->present.erase(it->first);
        rec->connections.erase(it);
        break;
      }
    }
    for (auto it = rec->calls.begin(); it != rec->calls.end(); ++it) {
      if (it->second.address() == dm.source) {
        rec->calls.erase(it);
        break;
      }
    }
  });
  return {
    [self, rec](eval_atom, redis::script_call& call) -> redis::reply {
      if (call.id == redis::script::session_read) {
        // A read, not a transition: modelled as the HMGET it runs.
        std::vector<std::string> argv{"HMGET", call.keys.at(0)};
        argv.insert(argv.end(), call.args.begin(), call.args.end());
        return detail::run_command(*rec, argv);
      }
      rec->scripts.push_back(call);
      auto& queue = rec->canned[call.id];
      if (!queue.empty()) {
        auto r = std::move(queue.front());
        queue.pop_front();
        return r;
      }
      auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
        self->clock().now().time_since_epoch());
      return detail::run_call_script(*rec, call, now.count());
    },
    [rec](command_atom, const std::vector<std::string>& argv) -> redis::reply {
      return detail::run_command(*rec, argv);
    },
    [self, rec](register_atom, const std::string& user, const std::string&,
                const caf::actor& conn) -> std::vector<std::string> {
      rec->connections[user] = conn;
      rec->present.insert(user);
      self->monitor(conn);
      auto it = rec->claims.find(user);
      return it != rec->claims.end() ? it->second : std::vector<std::string>{""};
    },
    [self, ctx, rec](open_call_atom, call_setup& setup, const std::string& user,
                     const caf::actor& conn) -> caf::actor {
      auto it = rec->calls.find(setup.session_id);
      if (it != rec->calls.end()) {
        auto& info = user == setup.caller_id ? setup.caller_info : setup.callee_info;
        self->send(it->second, join_atom::value, user, conn, protocol::to_json(info));
        return it->second;
      }
      auto id = setup.session_id;
      auto call = spawn_call_actor(self->home_system(), ctx, std::move(setup), user, conn);
      rec->calls[id] = call;
      rec->spawned.push_back(call);
      self->monitor(call);
      return call;
    },
    [self, rec](deliver_atom, const std::string& user, std::string& payload,
                const caf::actor& hint) {
      auto it = rec->connections.find(user);
      if (it != rec->connections.end())
        self->send(it->second, signal_atom::value, std::move(payload), hint);
      else
        rec->published.emplace_back(user, std::move(payload));
    },
    [rec](publish_atom, const std::string& user, std::string& payload, int64_t) {
      rec->published.emplace_back(user, std::move(payload));
    },
  };
}

/// One goring instance's actors, minus Redis and sockets: a context with
/// default settings, the scripted bridge and the real alarm, on the
/// deterministic system. Settings may be changed before the actors under
/// test are spawned.
class instance_fixture : public actor_fixture {
public:
  instance_fixture() {
    ctx->instance_id = "test/1";
    ctx->alarm = alarm::spawn(sys, ctx->alarms_pending);
    stop_at_end(ctx->alarm);
    ctx->bridge = spawn(scripted_bridge, ctx, redis);
  }

  ~instance_fixture() override {
    // The call actors first, while the bridge still answers their scripts.
    deliver_all();
    for (auto& call : redis->spawned)
      caf::anon_send_exit(call, caf::exit_reason::user_shutdown);
    deliver_all();
  }

  settings& config() {
    return ctx->config;
  }

  context_ptr ctx = std::make_shared<instance_context>();
  std::shared_ptr<bridge_record> redis = std::make_shared<bridge_record>();
};

} // namespace goring::test
