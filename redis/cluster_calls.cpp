#include "redis/cluster_calls.hpp"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "redis/cluster_keys.hpp"
#include "redis/command_runner.hpp"
#include "redis/keys.hpp"

namespace goring::redis::cluster_calls {

namespace {

using continuation = std::function<void(reply)>;
using strings = std::vector<std::string>;

reply text(std::string s) {
  reply r;
  r.type = reply::kind::string;
  r.str = std::move(s);
  return r;
}

reply array_of(const strings& xs) {
  reply r;
  r.type = reply::kind::array;
  for (auto& x : xs)
    r.elements.push_back(text(x));
  return r;
}

/// Element i of an array reply as text ("" when absent or nil).
std::string element(const reply& r, std::size_t i) {
  return r.type == reply::kind::array && i < r.elements.size() ? r.elements[i].str : std::string{};
}

/// What the builders of scripts.cpp put after a key prefix.
std::string after(std::string_view key, std::string_view prefix) {
  return std::string{key.substr(std::min(prefix.size(), key.size()))};
}

/// A script built for one session (KEYS: the session, then the webhook
/// stream when events are on) with both keys in the Cluster layout: the
/// session's partition tag, the stream of that partition.
script_call in_session_slot(script_call call, const std::string& sid) {
  if (!call.keys.empty())
    call.keys[0] = keys::tagged_session(sid);
  if (call.keys.size() > 1)
    call.keys[1] = keys::tagged_webhook_stream(sid);
  return call;
}

void step(command_runner& r, script id, strings keys, strings args, continuation k) {
  r.run_script({id, std::move(keys), std::move(args)}, std::move(k));
}

/// Compare-and-delete ("clear") or compare-and-extend (a TTL) of each
/// user's call key naming `sid`; once all have answered, `k(answer)`.
/// Their replies do not matter: a key they miss is stale and harmless
/// (redis/scripts/user_call_follow.lua).
void follow(command_runner& r, const std::string& sid, const strings& users,
            const std::string& action, reply answer, continuation k) {
  if (users.empty())
    return k(std::move(answer));
  auto out = std::make_shared<reply>(std::move(answer));
  auto left = std::make_shared<std::size_t>(users.size());
  for (auto& u : users)
    step(r, script::user_call_follow, {keys::tagged_user_call(u)}, {sid, action},
         [out, left, k](reply) {
           if (--*left == 0)
             k(std::move(*out));
         });
}

/// The run ("server_id/nonce") and the server id in an owner token
/// ("server_id/nonce/conn"), as call_start.lua reads them; false when the
/// token has not that shape.
bool split_owner(const std::string& owner, std::string& instance, std::string& server) {
  auto conn = owner.rfind('/');
  if (conn == std::string::npos)
    return false;
  instance = owner.substr(0, conn);
  auto run = instance.rfind('/');
  if (run == std::string::npos)
    return false;
  server = instance.substr(0, run);
  return true;
}

/// A user's presence as call_check.lua counts it: "present" (a key naming
/// a live run), "key" (a key naming a run without heartbeat) or "none"
/// (no key, or the departed connection's own). An error reply on failure.
void presence_of(command_runner& r, const std::string& user, const std::string& departed_user,
                 const std::string& departed_token, continuation k) {
  r.send({"GET", keys::tagged_user(user)},
         [&r, user, departed_user, departed_token, k = std::move(k)](reply owner) {
           if (owner.is_error()) {
             k(std::move(owner));
             return;
           }
           if (owner.is_nil() || (user == departed_user && owner.str == departed_token)) {
             k(text("none"));
             return;
           }
           std::string instance;
           std::string server;
           if (!split_owner(owner.str, instance, server)) {
             k(text("key"));
             return;
           }
           r.send({"HGET", keys::server(server), "instance"}, [instance, k](reply beat) {
             if (beat.is_error())
               k(std::move(beat));
             else
               k(text(beat.type == reply::kind::string && beat.str == instance ? "present"
                                                                                : "key"));
           });
         });
}

/// session_abandon 'judge': "live" or "over" of the session a user's call
/// key names (an error reply on failure).
void judge(command_runner& r, const std::string& sid, continuation k) {
  step(r, script::session_abandon, {keys::tagged_session(sid)},
       {"judge", std::to_string(pending_timeout.count())}, std::move(k));
}

// -- claim_user, release_user, refresh_users ---------------------------------

/// claim_user in S(user) answers {previous, sid}; the session is read in
/// its own slot, and the answer completed as claim_user.lua does.
void claim(command_runner& r, script_call call, continuation k) {
  // KEYS: ws:user:<u>, call:user:<u>; ARGV: token, ttl, session prefix, user.
  auto user = call.args.at(3);
  step(r, script::claim_user, {keys::tagged_user(user), keys::tagged_user_call(user)},
       {call.args.at(0), call.args.at(1), "", user},
       [&r, user, k = std::move(k)](reply claimed) {
         auto sid = element(claimed, 1);
         if (claimed.is_error() || sid.empty()) {
           k(std::move(claimed));
           return;
         }
         auto previous = element(claimed, 0);
         r.send({"HMGET", keys::tagged_session(sid), "caller_id", "callee_id", "state",
                 "caller_info", "callee_info", "offline_ring", "ring_expires_at"},
                [user, sid, previous, k](reply f) {
                  if (f.is_error()) {
                    k(std::move(f));
                    return;
                  }
                  auto state = element(f, 2);
                  bool live = state == "ringing" || state == "accepted";
                  bool theirs = element(f, 0) == user || element(f, 1) == user;
                  if (!live || !theirs) {
                    k(array_of({previous}));
                    return;
                  }
                  strings out{previous, sid};
                  for (std::size_t i = 0; i < 7; ++i)
                    out.push_back(element(f, i));
                  k(array_of(out));
                });
       });
}

void release(command_runner& r, script_call call, continuation k) {
  auto user = after(call.keys.at(0), keys::user_prefix);
  step(r, script::release_user, {keys::tagged_user(user)}, std::move(call.args), std::move(k));
}

/// One refresh_users per group of users whose keys share a slot; the
/// indexes of the users taken over are merged back into one answer.
void refresh(command_runner& r, script_call call, continuation k) {
  // KEYS: ws:user:<u_i>; ARGV: ttl, token_i.
  struct group {
    strings keys;
    strings args;
    std::vector<long long> index; // 1-based, into the caller's list
  };
  std::vector<group> groups;
  std::vector<std::pair<uint16_t, std::size_t>> where; // slot -> index into groups
  for (std::size_t i = 0; i < call.keys.size(); ++i) {
    auto key = keys::tagged_user(after(call.keys[i], keys::user_prefix));
    auto slot = cluster::key_slot(key);
    auto it = std::find_if(where.begin(), where.end(), [slot](auto& w) { return w.first == slot; });
    if (it == where.end()) {
      where.emplace_back(slot, groups.size());
      groups.push_back(group{{}, {call.args.at(0)}, {}});
      it = where.end() - 1;
    }
    auto& g = groups[it->second];
    g.keys.push_back(std::move(key));
    g.args.push_back(call.args.at(i + 1));
    g.index.push_back(static_cast<long long>(i + 1));
  }
  if (groups.empty()) {
    reply none;
    none.type = reply::kind::array;
    k(std::move(none));
    return;
  }
  struct merged {
    std::size_t left;
    reply out;
    continuation k;
  };
  auto m = std::make_shared<merged>();
  m->left = groups.size();
  m->out.type = reply::kind::array;
  m->k = std::move(k);
  for (auto& g : groups) {
    auto index = g.index;
    step(r, script::refresh_users, std::move(g.keys), std::move(g.args),
         [m, index = std::move(index)](reply lost) {
           if (lost.is_error() && !m->out.is_error())
             m->out = std::move(lost);
           else if (!m->out.is_error())
             for (auto& e : lost.elements)
               if (e.integer >= 1 && static_cast<std::size_t>(e.integer) <= index.size()) {
                 reply i;
                 i.type = reply::kind::integer;
                 i.integer = index[static_cast<std::size_t>(e.integer) - 1];
                 m->out.elements.push_back(std::move(i));
               }
           if (--m->left == 0) {
             if (!m->out.is_error())
               std::sort(m->out.elements.begin(), m->out.elements.end(),
                         [](auto& a, auto& b) { return a.integer < b.integer; });
             m->k(std::move(m->out));
           }
         });
  }
}

// -- call_start ------------------------------------------------------------

/// One call_start in steps (docs/redis-cluster.md, "call_start in steps"):
/// 0. reads: the callee's presence and heartbeat, the caller's call key;
/// 1. session_open (S(sid)); 2., 3. user_reserve of both users in (slot,
/// tag) order; 4. session_commit (S(sid)). A failure after 1 drops the
/// pending session and gives back what was reserved.
struct start_op : std::enable_shared_from_this<start_op> {
  command_runner& r;
  std::string caller;
  std::string callee;
  std::string sid;
  std::string created_at;
  std::string ttl;
  std::string caller_info;
  std::string now_ms;     // the events' created_at
  bool events;            // the webhook stream was given: write the events
  long long offline_ring; // ms a callee with no connection rings; 0: 'offline'
  continuation k;
  bool callee_offline = false;
  std::string owner;    // the callee's connection found online
  strings order;        // both users, in reservation order
  std::size_t next = 0; // index into order
  strings reserved;

  start_op(command_runner& runner, const script_call& call, continuation done)
    : r(runner),
      caller(call.args.at(0)),
      callee(call.args.at(1)),
      sid(call.args.at(2)),
      created_at(call.args.at(3)),
      ttl(call.args.at(4)),
      caller_info(call.args.at(5)),
      now_ms(call.args.at(8)),
      events(call.keys.size() > 4),
      offline_ring(events ? std::strtoll(call.args.at(9).c_str(), nullptr, 10) : 0),
      k(std::move(done)) {
    // The same order for every start: two crossing calls (A calls B while
    // B calls A) reserve the same user first, so one wins, not neither.
    auto rank = [](const std::string& u) {
      return std::make_tuple(cluster::key_slot(keys::tagged_user_call(u)), cluster::user_tag(u));
    };
    order = rank(caller) <= rank(callee) ? strings{caller, callee} : strings{callee, caller};
  }

  void begin() {
    auto self = shared_from_this();
    r.send({"GET", keys::tagged_user(callee)}, [self](reply owner) {
      if (owner.is_error())
        return self->k(std::move(owner));
      if (owner.is_nil())
        return self->offline();
      std::string instance;
      std::string server;
      if (!split_owner(owner.str, instance, server))
        return self->offline();
      self->owner = owner.str;
      self->r.send({"HGET", keys::server(server), "instance"}, [self, instance](reply beat) {
        if (beat.is_error())
          return self->k(std::move(beat));
        if (beat.type != reply::kind::string || beat.str != instance)
          return self->offline();
        self->check_caller();
      });
    });
  }

  /// The callee has no live connection: 'offline', or with the offline
  /// ring on, a call that rings while callee.offline wakes their phone
  /// (the callee is then reserved without a presence to match).
  void offline() {
    if (offline_ring <= 0)
      return k(text("offline"));
    callee_offline = true;
    owner.clear();
    check_caller();
  }

  /// The caller's own call first, so a busy caller hears caller_busy as
  /// from call_start.lua, whatever the reservation order.
  void check_caller() {
    auto self = shared_from_this();
    r.send({"GET", keys::tagged_user_call(caller)}, [self](reply current) {
      if (current.is_error())
        return self->k(std::move(current));
      if (current.is_nil())
        return self->open();
      judge(self->r, current.str, [self](reply verdict) {
        if (verdict.is_error())
          return self->k(std::move(verdict));
        if (verdict.str == "live")
          return self->k(text("caller_busy"));
        self->open();
      });
    });
  }

  void open() {
    auto self = shared_from_this();
    step(r, script::session_open, {keys::tagged_session(sid)},
         {caller, callee, created_at, ttl, caller_info},
         [self](reply opened) {
           if (opened.is_error() || opened.str != "ok")
             return self->k(std::move(opened)); // 'exists', or an error
           self->reserve_next({});
         });
  }

  void reserve_next(std::string stale) {
    if (next == order.size())
      return commit();
    auto self = shared_from_this();
    const auto& user = order[next];
    strings ks{keys::tagged_user_call(user)};
    if (user == callee && !callee_offline)
      ks.push_back(keys::tagged_user(user));
    step(r, script::user_reserve, std::move(ks), {sid, ttl, stale, owner},
         [self, stale](reply got) {
           const auto& user = self->order[self->next];
           auto busy = user == self->caller ? "caller_busy" : "callee_busy";
           auto status = element(got, 0);
           if (got.is_error())
             return self->give_back(std::move(got));
           if (status == "ok") {
             self->reserved.push_back(user);
             ++self->next;
             return self->reserve_next({});
           }
           if (status == "offline")
             return self->give_back(text("offline"));
           auto other = element(got, 1);
           if (status != "taken" || !stale.empty())
             return self->give_back(text(busy));
           // The key names another session: a dead start's or an ended
           // call's key is stale and may be replaced, a live call's not.
           judge(self->r, other, [self, other, busy](reply verdict) {
             if (verdict.is_error())
               return self->give_back(std::move(verdict));
             if (verdict.str != "over")
               return self->give_back(text(busy));
             self->reserve_next(other);
           });
         });
  }

  void commit() {
    auto self = shared_from_this();
    strings ks{keys::tagged_session(sid)};
    if (events)
      ks.push_back(keys::tagged_webhook_stream(sid));
    auto ring = callee_offline ? std::to_string(offline_ring) : std::string{"0"};
    step(r, script::session_commit, std::move(ks), {sid, now_ms, ring}, [self](reply done) {
      if (!done.is_error() && (done.str == "ok" || done.str == "offline_ring"))
        return self->k(std::move(done));
      if (done.is_error())
        return self->give_back(std::move(done));
      self->give_back(reply::make_error("call_start outlived the pending timeout of "
                                        + std::to_string(pending_timeout.count()) + " ms"));
    });
  }

  /// The compensation: the pending session is dropped first (so no commit
  /// can follow and every reservation naming it is stale), then each
  /// reservation is given back; then the answer.
  void give_back(reply answer) {
    auto self = shared_from_this();
    auto out = std::make_shared<reply>(std::move(answer));
    step(r, script::session_abandon, {keys::tagged_session(sid)}, {"drop", "0"},
         [self, out](reply) {
           follow(self->r, self->sid, self->reserved, "clear", std::move(*out), self->k);
         });
  }
};

// -- accept, reject, end, timeout, check -----------------------------------

/// Where the builders put the users' call-key prefix and the session id.
struct session_args {
  std::size_t prefix;
  std::size_t sid;
};

session_args args_of(script id) {
  switch (id) {
    case script::call_timeout:
    case script::call_check:
      return {1, 2};
    default:
      return {2, 3};
  }
}

/// The transition runs in S(sid) with the users' call-key lines left out
/// (an empty prefix); a decided one then extends (accept) or clears
/// (reject, end, timeout) both users' call keys.
void decide(command_runner& r, script_call call, continuation k) {
  auto where = args_of(call.id);
  auto sid = call.args.at(where.sid);
  call.args.at(where.prefix).clear();
  auto action = call.id == script::call_accept ? call.args.at(1) : std::string{"clear"};
  auto in_slot = in_session_slot(std::move(call), sid);
  r.run_script(std::move(in_slot), [&r, sid, action, k = std::move(k)](reply out) {
    if (element(out, 0) != "ok")
      return k(std::move(out));
    strings users{element(out, 1), element(out, 2)};
    follow(r, sid, users, action, std::move(out), k);
  });
}

/// call_check: the participants' presence is read in their slots and
/// handed to the decision in S(sid), which then answers as always; the
/// users' call keys follow ('live' extends, 'ended' clears).
void check(command_runner& r, script_call call, continuation k) {
  // ARGV: ttl, prefix, sid, now, grace, ended ttl, user prefix, server
  // prefix, departed user, departed token.
  auto sid = call.args.at(2);
  r.send(
    {"HMGET", keys::tagged_session(sid), "caller_id", "callee_id", "state"},
    [&r, call = std::move(call), sid, k = std::move(k)](reply f) mutable {
      if (f.is_error())
        return k(std::move(f));
      auto caller = element(f, 0);
      auto callee = element(f, 1);
      auto state = element(f, 2);
      auto run = [&r, sid](script_call c, std::string caller_fact, std::string callee_fact,
                           strings users, continuation k) {
        auto ttl = c.args.at(0);
        c.args.at(1).clear();
        c.args.at(6).clear();
        c.args.push_back(std::move(caller_fact));
        c.args.push_back(std::move(callee_fact));
        r.run_script(in_session_slot(std::move(c), sid),
                     [&r, sid, ttl, users, k = std::move(k)](reply out) {
          auto status = element(out, 0);
          if (users.empty() || (status != "live" && status != "ended"))
            return k(std::move(out));
          follow(r, sid, users, status == "live" ? ttl : "clear", std::move(out), k);
        });
      };
      if (state != "ringing" && state != "accepted")
        return run(std::move(call), "none", "none", {}, std::move(k));
      auto departed_user = call.args.at(8);
      auto departed_token = call.args.at(9);
      auto shared_call = std::make_shared<script_call>(std::move(call));
      presence_of(
        r, caller, departed_user, departed_token,
        [&r, shared_call, run, caller, callee, departed_user, departed_token,
         k = std::move(k)](reply caller_fact) {
          if (caller_fact.is_error())
            return k(std::move(caller_fact));
          presence_of(r, callee, departed_user, departed_token,
                      [shared_call, run, caller, callee, caller_fact, k](reply callee_fact) {
                        if (callee_fact.is_error())
                          return k(std::move(callee_fact));
                        run(std::move(*shared_call), caller_fact.str, callee_fact.str,
                            {caller, callee}, k);
                      });
        });
    });
}

// -- call_restore ----------------------------------------------------------

/// After a failover: each user's call key is read in its slot (a live
/// other call there means 'taken', as call_restore.lua decides), the
/// session written back in S(sid) where absent, and the users' keys set
/// where absent. Should a newer call take a user between the read and the
/// write, the restored session is ended again (peer_disconnected: the
/// participant is in that other call) and the answer is 'taken'.
struct restore_op : std::enable_shared_from_this<restore_op> {
  command_runner& r;
  script_call call;
  std::string caller;
  std::string callee;
  std::string sid;
  std::string ttl;
  continuation k;
  strings stale{"", ""}; // per user: a session judged over that its key names
  std::size_t at = 0;

  restore_op(command_runner& runner, script_call c, continuation done)
    : r(runner),
      call(std::move(c)),
      caller(call.args.at(0)),
      callee(call.args.at(1)),
      sid(call.args.at(2)),
      ttl(call.args.at(8)),
      k(std::move(done)) {}

  const std::string& user(std::size_t i) const {
    return i == 0 ? caller : callee;
  }

  void look(std::size_t i) {
    if (i == 2)
      return write();
    auto self = shared_from_this();
    r.send({"GET", keys::tagged_user_call(user(i))}, [self, i](reply current) {
      if (current.is_error())
        return self->k(std::move(current));
      if (current.is_nil() || current.str == self->sid)
        return self->look(i + 1);
      judge(self->r, current.str, [self, i, other = current.str](reply verdict) {
        if (verdict.is_error())
          return self->k(std::move(verdict));
        if (verdict.str == "live")
          return self->k(text("taken"));
        self->stale[i] = other;
        self->look(i + 1);
      });
    });
  }

  void write() {
    auto self = shared_from_this();
    script_call session_only{script::call_restore, {keys::tagged_session(sid)}, call.args};
    r.run_script(std::move(session_only), [self](reply out) {
      if (out.is_error())
        return self->k(std::move(out));
      if (out.str == "restored")
        return self->reserve(0, out.str);
      // 'kept': a live session gets back the users' keys it lacks.
      self->r.send({"HGET", keys::tagged_session(self->sid), "state"}, [self, out](reply state) {
        if (state.str == "ringing" || state.str == "accepted")
          return self->reserve(0, out.str);
        self->k(out);
      });
    });
  }

  void reserve(std::size_t i, std::string answer) {
    if (i == 2)
      return k(text(answer));
    auto self = shared_from_this();
    step(r, script::user_reserve, {keys::tagged_user_call(user(i))}, {sid, ttl, stale[i], ""},
         [self, i, answer](reply got) {
           if (element(got, 0) == "ok" || got.is_error() || answer != "restored")
             return self->reserve(i + 1, answer);
           self->undo();
         });
  }

  void undo() {
    auto self = shared_from_this();
    // call_end, ARGV: user, ended ttl, prefix ('': keys below), sid, ended
    // at (s), mode, now (ms).
    auto now = std::chrono::system_clock::now().time_since_epoch();
    auto now_s = std::to_string(std::chrono::duration_cast<std::chrono::seconds>(now).count());
    r.run_script({script::call_end,
                  {keys::tagged_session(sid)},
                  {caller, ttl, "", sid, now_s, "disconnect", "0"}},
                 [self](reply) {
                   follow(self->r, self->sid, {self->caller, self->callee}, "clear",
                          text("taken"), self->k);
                 });
  }
};

} // namespace

bool runs_in_steps(script id) {
  switch (id) {
    case script::claim_user:
    case script::release_user:
    case script::refresh_users:
    case script::call_start:
    case script::call_accept:
    case script::call_reject:
    case script::call_end:
    case script::call_timeout:
    case script::call_check:
    case script::call_restore:
    case script::session_read:
      return true;
    default:
      return false;
  }
}

void run(command_runner& runner, script_call call, std::function<void(reply)> k) {
  switch (call.id) {
    case script::claim_user:
      return claim(runner, std::move(call), std::move(k));
    case script::release_user:
      return release(runner, std::move(call), std::move(k));
    case script::refresh_users:
      return refresh(runner, std::move(call), std::move(k));
    case script::call_start:
      return std::make_shared<start_op>(runner, call, std::move(k))->begin();
    case script::call_accept:
    case script::call_reject:
    case script::call_end:
    case script::call_timeout:
      return decide(runner, std::move(call), std::move(k));
    case script::call_check:
      return check(runner, std::move(call), std::move(k));
    case script::call_restore: {
      auto op = std::make_shared<restore_op>(runner, std::move(call), std::move(k));
      return op->look(0);
    }
    case script::session_read: {
      auto sid = after(call.keys.at(0), keys::session_prefix);
      return runner.run_script(in_session_slot(std::move(call), sid), std::move(k));
    }
    default:
      return runner.run_script(std::move(call), std::move(k));
  }
}

} // namespace goring::redis::cluster_calls
