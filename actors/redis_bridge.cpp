#include "actors/redis_bridge.hpp"

#include <cctype>
#include <functional>
#include <unordered_map>
#include <unordered_set>

#include <boost/asio/io_context.hpp>

#include "codec/admin_json.hpp"
#include "actors/atoms.hpp"
#include "actors/call_actor.hpp"
#include "metrics/instance_metrics.hpp"
#include "config/log.hpp"
#include "redis/async_connection.hpp"
#include "redis/keys.hpp"

namespace goring {

namespace {

constexpr const char* component = "redis_bridge";
/// Users per refresh_users call: bounds the time one script blocks Redis.
constexpr std::size_t refresh_batch = 500;

using continuation = std::function<void(redis::reply)>;

/// A command in flight: what to do with its reply, and what to time.
struct waiting_command {
  continuation k;
  metrics::histogram* timer;
  metrics::counter* errors;
  long long started_ns;
};

/// A connection actor that asked to register and what it registered with.
struct registered_conn {
  std::string user;
  std::string token;
};

/// The one connection that currently receives a user's messages here.
struct local_user {
  caf::actor conn;
  std::string token;
};

struct waiting_registration {
  caf::actor conn;
  std::string token;
  caf::response_promise promise;
};

struct bridge_state {
  context_ptr ctx;
  std::unique_ptr<redis::async_connection> commands;
  std::unique_ptr<redis::async_connection> subscriber;
  std::array<std::string, redis::script_count> shas;
  uint64_t next_id = 1;
  std::unordered_map<uint64_t, waiting_command> waiting;
  /// Per-command metrics, looked up once per command name.
  std::unordered_map<std::string, std::pair<metrics::histogram*, metrics::counter*>> timers;
  /// Users whose registered connection here receives their messages.
  std::unordered_map<std::string, local_user> users;
  /// Users with a registration in flight: the newest registering connection
  /// takes their messages until the registration completes (it holds them
  /// in its mailbox meanwhile), so nothing sent right after is lost.
  std::unordered_map<std::string, caf::actor> registering;
  /// Every live connection actor that registered, by address.
  std::unordered_map<caf::actor_addr, registered_conn> conns;
  /// How many entries of `conns` each user has: a channel stays subscribed
  /// while any connection of its user lives or registers here.
  std::unordered_map<std::string, int> conns_per_user;
  /// Users whose channel is subscribed or being subscribed.
  std::unordered_set<std::string> channels;
  /// Registrations waiting for their channel's SUBSCRIBE to be confirmed.
  std::unordered_map<std::string, std::vector<waiting_registration>> subscribing;
  /// This instance's call actors by session id, and back.
  std::unordered_map<std::string, caf::actor> calls;
  std::unordered_map<caf::actor_addr, std::string> call_ids;
  /// The pub/sub probe in flight, 0 when none.
  uint64_t probe_sent = 0;
  uint64_t probe_seq = 0;
  bool commands_were_up = false;
  bool draining = false;

  static inline const char* name = "redis_bridge";

  ~bridge_state() {
    if (subscriber)
      subscriber->stop();
    if (commands)
      commands->stop();
  }
};

using bridge_actor = caf::stateful_actor<bridge_state>;

bool is_local_token(const bridge_state& st, const std::string& token) {
  auto& id = st.ctx->instance_id;
  return token.size() > id.size() && token.compare(0, id.size(), id) == 0
         && token[id.size()] == '/';
}

/// Sends a command; `k` runs later in the actor's context with the reply.
/// `label` names it in goring_redis_command_seconds (a script's name, or the
/// command in lower case).
void send_command(bridge_actor* self, std::vector<std::string> argv, continuation k,
                  std::string label = {}) {
  auto& st = self->state;
  auto id = st.next_id++;
  if (label.empty()) {
    label = argv.empty() ? "none" : argv[0];
    for (auto& c : label)
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  auto timer = st.timers.find(label);
  if (timer == st.timers.end()) {
    auto& m = goring_metrics();
    timer = st.timers
              .emplace(label, std::make_pair(&m.redis_command->with({label}),
                                             &m.redis_commands_failed->with({label})))
              .first;
  }
  st.waiting.emplace(
    id, waiting_command{std::move(k), timer->second.first, timer->second.second, steady_ns()});
  auto handle = caf::actor{self};
  self->state.commands->command(std::move(argv), [handle, id](redis::reply r) {
    caf::anon_send(handle, reply_atom::value, id, std::move(r));
  });
}

/// Runs a script by its SHA; on NOSCRIPT (Redis restarted or flushed its
/// script cache) sends the text once, which also caches it again under the
/// same SHA.
void run_script(bridge_actor* self, redis::script_call call, continuation k) {
  auto& sha = self->state.shas[static_cast<std::size_t>(call.id)];
  auto argv = redis::eval_argv(call, sha);
  auto label = std::string{redis::script_name(call.id)};
  if (sha.empty()) {
    send_command(self, std::move(argv), std::move(k), label);
    return;
  }
  send_command(
    self, std::move(argv),
    [self, call = std::move(call), k = std::move(k)](redis::reply r) {
      if (r.is_error() && r.str.rfind("NOSCRIPT", 0) == 0) {
        GORING_LOG(info, component,
                   "script " << redis::script_name(call.id)
                             << " missing in Redis, sending its text");
        send_command(self, redis::eval_argv(call, ""), k, std::string{redis::script_name(call.id)});
        return;
      }
      k(std::move(r));
    },
    label);
}

/// Fails the commands Redis has not answered within redis_command_timeout:
/// a connection can be up and still deliver nothing (a paused or stuck
/// server), and everyone waiting on the bridge relies on an answer. A late
/// reply finds no waiting command and is dropped.
void sweep_waiting(bridge_actor* self) {
  auto& st = self->state;
  auto oldest =
    steady_ns()
    - std::chrono::duration_cast<std::chrono::nanoseconds>(redis_command_timeout).count();
  std::vector<uint64_t> late;
  for (auto& [id, w] : st.waiting)
    if (w.started_ns < oldest)
      late.push_back(id);
  if (late.empty())
    return;
  GORING_LOG(warn, component,
             late.size() << " Redis commands got no answer within " << redis_command_timeout.count()
                         << " s; failing them");
  for (auto id : late) {
    auto it = st.waiting.find(id);
    if (it == st.waiting.end())
      continue; // answered by a continuation of an earlier one
    auto w = std::move(it->second);
    st.waiting.erase(it);
    w.errors->inc();
    w.k(redis::reply::make_error("Redis did not answer in time"));
  }
}

/// Publishes without waiting: only failures are worth a log line.
void publish(bridge_actor* self, const std::string& channel, std::string payload) {
  goring_metrics().pubsub_out->inc();
  self->state.commands->command(
    {"PUBLISH", channel, std::move(payload)}, [channel](redis::reply r) {
      if (r.is_error())
        GORING_LOG(warn, component, "PUBLISH to " << channel << " failed: " << r.str);
    });
}

void unsubscribe_if_idle(bridge_actor* self, const std::string& user) {
  auto& st = self->state;
  if (st.conns_per_user.count(user) != 0 || st.subscribing.count(user) != 0)
    return;
  if (st.channels.erase(user) != 0)
    st.subscriber->unsubscribe({redis::keys::signal(user)});
}

void release(bridge_actor* self, const std::string& user, const std::string& token) {
  run_script(self, redis::release_user(user, token), [user](redis::reply r) {
    if (r.is_error())
      GORING_LOG(warn, component, "releasing ws:user:" << user << " failed: " << r.str);
  });
}

/// The connection that takes `user`'s messages here, if any.
caf::actor receiver_of(bridge_state& st, const std::string& user) {
  auto it = st.users.find(user);
  if (it != st.users.end())
    return it->second.conn;
  auto reg = st.registering.find(user);
  return reg != st.registering.end() ? reg->second : caf::actor{};
}

/// Takes the ws:user key for a connection whose channel is subscribed.
/// Answers the connection with the claim's reply as strings: previous
/// owner, then the call to resume, if any.
void claim(bridge_actor* self, const std::string& user, waiting_registration reg) {
  run_script(self, redis::claim_user(user, reg.token, self->state.ctx->config.presence_ttl),
             [self, user, reg](redis::reply r) mutable {
               auto& st = self->state;
               auto done_registering = [&] {
                 auto it = st.registering.find(user);
                 if (it != st.registering.end() && it->second == reg.conn)
                   st.registering.erase(it);
               };
               if (r.type != redis::reply::kind::array || r.elements.empty()) {
                 GORING_LOG(warn, component, "claiming ws:user:" << user << " failed: " << r.str);
                 done_registering();
                 reg.promise.deliver(signal_failure(protocol::signal_error::internal_error,
                                                    "could not register the connection in Redis"));
                 return;
               }
               done_registering();
               if (st.conns.count(reg.conn.address()) == 0) {
                 // The connection closed while it registered: give the key back.
                 release(self, user, reg.token);
                 return;
               }
               std::vector<std::string> answer;
               for (auto& e : r.elements)
                 answer.push_back(e.str);
               auto& previous = answer[0];
               auto it = st.users.find(user);
               if (it != st.users.end() && it->second.conn != reg.conn)
                 self->send(it->second.conn, replaced_atom::value);
               st.users[user] = local_user{reg.conn, reg.token};
               // The replaced connection is named, not the new one: a late message
               // can then never close a connection newer than the one it meant.
               if (!previous.empty())
                 goring_metrics().count_connection("replaced");
               if (!previous.empty() && previous != reg.token && !is_local_token(st, previous))
                 publish(self, redis::keys::signal(user),
                         protocol::tagged(protocol::signal_tag::replaced, previous));
               reg.promise.deliver(std::move(answer));
             });
}

void load_scripts(bridge_actor* self) {
  for (std::size_t i = 0; i < redis::script_count; ++i) {
    auto id = static_cast<redis::script>(i);
    send_command(self, {"SCRIPT", "LOAD", redis::script_text(id)}, [self, i](redis::reply r) {
      if (r.type == redis::reply::kind::string)
        self->state.shas[i] = r.str;
      else
        GORING_LOG(warn, component, "SCRIPT LOAD failed: " << r.str);
    });
  }
}

void resubscribe_all(bridge_actor* self) {
  auto& st = self->state;
  std::vector<std::string> names{redis::keys::probe(st.ctx->instance_id)};
  for (auto& user : st.channels)
    names.push_back(redis::keys::signal(user));
  auto handle = caf::actor{self};
  st.subscriber->subscribe(std::move(names), [handle](redis::reply r) {
    if (r.is_error())
      GORING_LOG(warn, component, "resubscribing failed: " << r.str);
    else // probe as soon as the probe channel listens: readiness need not wait
      caf::anon_send(handle, probe_atom::value, true);
  });
}

void heartbeat(bridge_actor* self) {
  auto& ctx = *self->state.ctx;
  run_script(self,
             redis::heartbeat(ctx.config.server_id, ctx.instance_id, ctx.config.heartbeat_ttl,
                              GORING_VERSION, ctx.started_at, ctx.admin_addr),
             [](redis::reply r) {
               if (r.is_error())
                 GORING_LOG(warn, component, "heartbeat failed: " << r.str);
               else if (!r.str.empty())
                 GORING_LOG(warn, component,
                            "took over ws:server from run " << r.str
                                                            << " of the same SERVER_ID; its "
                                                               "connections count as gone");
             });
}

/// Extends the ws:user keys of all local users, a batch per script call,
/// writes back keys Redis lost, and closes those whose key another
/// connection took meanwhile.
void refresh_presence(bridge_actor* self) {
  auto& st = self->state;
  std::vector<std::string> users;
  std::vector<std::string> tokens;
  auto flush = [&] {
    if (users.empty())
      return;
    run_script(self, redis::refresh_users(users, tokens, st.ctx->config.presence_ttl),
               [self, users, tokens](redis::reply r) {
                 if (r.type != redis::reply::kind::array)
                   return;
                 for (auto& lost : r.elements) {
                   auto index = static_cast<std::size_t>(lost.integer) - 1;
                   if (index >= users.size())
                     continue;
                   auto it = self->state.users.find(users[index]);
                   if (it == self->state.users.end() || it->second.token != tokens[index])
                     continue;
                   GORING_LOG(info, component,
                              "user " << users[index] << " was taken over elsewhere");
                   self->send(it->second.conn, replaced_atom::value);
                   self->state.users.erase(it);
                 }
               });
    users.clear();
    tokens.clear();
  };
  for (auto& [user, local] : st.users) {
    users.push_back(user);
    tokens.push_back(local.token);
    if (users.size() == refresh_batch)
      flush();
  }
  flush();
}

/// Publishes to this instance's own probe channel; the answer must be back
/// before the next probe, or the subscriber connection is not trusted.
void probe(bridge_actor* self) {
  auto& st = self->state;
  if (!st.subscriber->connected()) {
    // Down already: the reconnect is under way, nothing to probe.
    st.probe_sent = 0;
    return;
  }
  if (st.probe_sent != 0) {
    GORING_LOG(warn, component,
               "pub/sub probe " << st.probe_sent
                                << " did not come back; reconnecting the "
                                   "subscriber");
    st.ctx->probe_ok = false;
    st.ctx->count_probe_failure();
    st.subscriber->restart("pub/sub probe lost");
  }
  st.probe_sent = ++st.probe_seq;
  publish(self, redis::keys::probe(st.ctx->instance_id), std::to_string(st.probe_sent));
}

/// Collects status rows from actors for one admin request.
struct status_gather {
  caf::response_promise promise;
  std::vector<std::string> rows;
  std::size_t pending = 0;
  bool single = false; // one object (404 without), not an array
};

void answer(status_gather& g) {
  if (!g.single)
    g.promise.deliver(uint16_t{200}, admin_array(g.rows));
  else if (g.rows.empty())
    g.promise.deliver(uint16_t{404}, std::string{R"({"error":"not found"})"});
  else
    g.promise.deliver(uint16_t{200}, g.rows.front());
}

/// Asks every target for its status row and answers when all did (or
/// timed out: a stuck actor is left out, not waited for).
caf::response_promise gather_status(bridge_actor* self, const std::vector<caf::actor>& targets,
                                    std::vector<std::string> rows, bool single) {
  auto g = std::make_shared<status_gather>();
  g->promise = self->make_response_promise();
  g->rows = std::move(rows);
  g->single = single;
  g->pending = targets.size();
  if (targets.empty()) {
    answer(*g);
    return g->promise;
  }
  for (auto& target : targets)
    self->request(target, std::chrono::seconds(1), status_atom::value)
      .then(
        [g](std::string& row) {
          g->rows.push_back(std::move(row));
          if (--g->pending == 0)
            answer(*g);
        },
        [g](caf::error&) {
          if (--g->pending == 0)
            answer(*g);
        });
  return g->promise;
}

std::string bridge_row(bridge_actor* self) {
  auto& st = self->state;
  return admin_row({{"kind", "bridge"},
                    {"id", static_cast<long long>(self->id())},
                    {"state", st.ctx->redis_healthy.load() ? "connected" : "disconnected"},
                    {"age_seconds", unix_now() - st.ctx->started_at},
                    {"mailbox", static_cast<long long>(self->mailbox().size())},
                    {"handled", static_cast<long long>(st.next_id - 1)},
                    {"users", static_cast<long long>(st.users.size())},
                    {"calls", static_cast<long long>(st.calls.size())},
                    {"instance", st.ctx->instance_id}});
}

std::string instance_row(bridge_actor* self) {
  auto& ctx = *self->state.ctx;
  return admin_row({{"server_id", ctx.config.server_id},
                    {"instance", ctx.instance_id},
                    {"version", GORING_VERSION},
                    {"admin", ctx.admin_addr},
                    {"connections", static_cast<long long>(ctx.live_connections.load())},
                    {"calls", static_cast<long long>(ctx.live_calls.load())},
                    {"uptime_seconds", unix_now() - ctx.started_at},
                    {"ready", ctx.ready()},
                    {"draining", ctx.draining.load()}});
}

/// The admin API: routes /admin/... to rows gathered from the actors.
caf::response_promise admin_request(bridge_actor* self, const std::string& method,
                                    const std::string& target) {
  auto& st = self->state;
  auto query_at = target.find('?');
  std::string path = target.substr(0, query_at);
  std::string query = query_at == std::string::npos ? "" : target.substr(query_at + 1);
  auto tail = [&](const std::string& prefix) {
    return path.size() > prefix.size() && path.compare(0, prefix.size(), prefix) == 0
             ? path.substr(prefix.size())
             : std::string{};
  };
  auto conns_of = [&](const std::string& only_user) {
    std::vector<caf::actor> out;
    for (auto& [user, local] : st.users)
      if (only_user.empty() || user == only_user)
        out.push_back(local.conn);
    return out;
  };
  auto calls_of = [&](const std::string& only_session) {
    std::vector<caf::actor> out;
    for (auto& [id, call] : st.calls)
      if (only_session.empty() || id == only_session)
        out.push_back(call);
    return out;
  };
  auto not_found = [&] {
    auto rp = self->make_response_promise();
    rp.deliver(uint16_t{404}, std::string{R"({"error":"not found"})"});
    return rp;
  };
  if (method == "GET" && path == "/admin/instance") {
    auto rp = self->make_response_promise();
    rp.deliver(uint16_t{200}, instance_row(self));
    return rp;
  }
  if (method == "GET" && path == "/admin/actors") {
    std::string kind;
    if (query.rfind("kind=", 0) == 0)
      kind = query.substr(5);
    std::vector<caf::actor> targets;
    if (kind.empty() || kind == "connection")
      for (auto& [addr, reg] : st.conns)
        if (auto conn = caf::actor_cast<caf::actor>(addr))
          targets.push_back(conn);
    if (kind.empty() || kind == "call")
      for (auto& call : calls_of(""))
        targets.push_back(call);
    std::vector<std::string> rows;
    if (kind.empty() || kind == "bridge")
      rows.push_back(bridge_row(self));
    return gather_status(self, targets, std::move(rows), false);
  }
  if (method == "GET" && path == "/admin/users")
    return gather_status(self, conns_of(""), {}, false);
  if (method == "GET" && !tail("/admin/users/").empty()) {
    auto targets = conns_of(tail("/admin/users/"));
    return targets.empty() ? not_found() : gather_status(self, targets, {}, true);
  }
  if (method == "GET" && path == "/admin/calls")
    return gather_status(self, calls_of(""), {}, false);
  if (method == "GET" && !tail("/admin/calls/").empty()) {
    auto targets = calls_of(tail("/admin/calls/"));
    return targets.empty() ? not_found() : gather_status(self, targets, {}, true);
  }
  if (method == "POST" && !tail("/admin/kick/").empty()) {
    auto it = st.users.find(tail("/admin/kick/"));
    if (it == st.users.end())
      return not_found();
    self->send(it->second.conn, kick_atom::value);
    auto rp = self->make_response_promise();
    rp.deliver(uint16_t{200}, std::string{R"({"kicked":true})"});
    return rp;
  }
  return not_found();
}

caf::behavior redis_bridge(bridge_actor* self, context_ptr ctx, boost::asio::io_context* io) {
  auto& st = self->state;
  st.ctx = ctx;
  redis::endpoint where{ctx->config.redis_host, ctx->config.redis_port, ctx->config.redis_password,
                        /*client_name=*/{}};
  auto handle = caf::actor{self};
  // Health is the conjunction of both links; the flags are only touched on
  // the connections' strands, the result read by /health.
  auto up = std::make_shared<std::array<std::atomic<bool>, 2>>();
  auto update_health = [ctx, up] { ctx->redis_healthy = (*up)[0].load() && (*up)[1].load(); };
  auto link_callbacks = [&](std::size_t which) {
    redis::async_connection::callbacks cbs;
    cbs.on_connected = [handle, up, which, update_health] {
      (*up)[which] = true;
      update_health();
      caf::anon_send(handle, link_up_atom::value, which == 1);
    };
    cbs.on_disconnected = [ctx, up, which, update_health](const std::string& why) {
      (*up)[which] = false;
      update_health();
      ctx->count_redis_error();
      GORING_LOG(warn, component,
                 (which == 0 ? "command" : "subscriber") << " connection down: " << why);
    };
    return cbs;
  };
  auto sub_cbs = link_callbacks(1);
  auto named = [&](const char* role) {
    auto named_where = where;
    named_where.client_name = "goring:" + ctx->config.server_id + ":" + role;
    return named_where;
  };
  sub_cbs.on_message = [handle](const std::string& channel, const std::string& payload) {
    caf::anon_send(handle, pubsub_atom::value, channel, payload);
  };
  st.commands =
    std::make_unique<redis::async_connection>(*io, named("commands"), link_callbacks(0));
  st.subscriber =
    std::make_unique<redis::async_connection>(*io, named("subscriber"), std::move(sub_cbs));
  st.commands->start();
  st.subscriber->start();
  self->delayed_send(self, ctx->config.presence_ttl / 3, refresh_atom::value);
  self->delayed_send(self, ctx->config.heartbeat_ttl / 3, heartbeat_atom::value);
  self->delayed_send(self, ctx->config.pubsub_probe_interval, probe_atom::value);
  self->delayed_send(self, std::chrono::seconds(1), sweep_atom::value);

  self->set_down_handler([self](const caf::down_msg& dm) {
    auto& st = self->state;
    if (auto call = st.call_ids.find(dm.source); call != st.call_ids.end()) {
      auto it = st.calls.find(call->second);
      if (it != st.calls.end() && it->second.address() == dm.source)
        st.calls.erase(it);
      st.call_ids.erase(call);
      return;
    }
    auto it = st.conns.find(dm.source);
    if (it == st.conns.end())
      return;
    auto reg = std::move(it->second);
    st.conns.erase(it);
    st.ctx->registered_connections = static_cast<int>(st.conns.size());
    if (--st.conns_per_user[reg.user] == 0)
      st.conns_per_user.erase(reg.user);
    auto user_it = st.users.find(reg.user);
    if (user_it != st.users.end() && user_it->second.conn.address() == dm.source)
      st.users.erase(user_it);
    auto reg_it = st.registering.find(reg.user);
    if (reg_it != st.registering.end() && reg_it->second.address() == dm.source)
      st.registering.erase(reg_it);
    release(self, reg.user, reg.token);
    unsubscribe_if_idle(self, reg.user);
  });

  return {
    [self](reply_atom, uint64_t id, redis::reply& r) {
      auto it = self->state.waiting.find(id);
      if (it == self->state.waiting.end())
        return;
      auto w = std::move(it->second);
      self->state.waiting.erase(it);
      w.timer->observe(seconds_since(w.started_ns));
      if (r.is_error())
        w.errors->inc();
      w.k(std::move(r));
    },
    [self](eval_atom, redis::script_call& call) {
      auto rp = self->make_response_promise();
      run_script(self, std::move(call), [rp](redis::reply r) mutable { rp.deliver(std::move(r)); });
      return rp;
    },
    [self](command_atom, std::vector<std::string>& argv) {
      auto rp = self->make_response_promise();
      send_command(self, std::move(argv),
                   [rp](redis::reply r) mutable { rp.deliver(std::move(r)); });
      return rp;
    },
    [self](register_atom, const std::string& user, const std::string& token,
           const caf::actor& conn) {
      auto& st = self->state;
      auto rp = self->make_response_promise();
      if (st.draining) {
        rp.deliver(signal_failure(protocol::signal_error::internal_error,
                                  "the server is restarting; connect again"));
        return rp;
      }
      st.conns[conn.address()] = registered_conn{user, token};
      ++st.conns_per_user[user];
      st.ctx->registered_connections = static_cast<int>(st.conns.size());
      st.registering[user] = conn;
      self->monitor(conn);
      waiting_registration reg{conn, token, rp};
      // The channel is subscribed before the key says the user is online,
      // so nothing published to them right after is lost.
      if (st.channels.count(user) != 0 && st.subscribing.count(user) == 0) {
        claim(self, user, std::move(reg));
        return rp;
      }
      auto& queue = st.subscribing[user];
      queue.push_back(std::move(reg));
      if (queue.size() == 1) {
        st.channels.insert(user);
        auto handle = caf::actor{self};
        st.subscriber->subscribe({redis::keys::signal(user)}, [handle, user](redis::reply r) {
          caf::anon_send(handle, subscribed_atom::value, user, !r.is_error());
        });
      }
      return rp;
    },
    [self](subscribed_atom, const std::string& user, bool ok) {
      auto& st = self->state;
      auto it = st.subscribing.find(user);
      if (it == st.subscribing.end())
        return;
      auto regs = std::move(it->second);
      st.subscribing.erase(it);
      for (auto& reg : regs) {
        if (ok) {
          claim(self, user, std::move(reg));
        } else {
          auto r = st.registering.find(user);
          if (r != st.registering.end() && r->second == reg.conn)
            st.registering.erase(r);
          reg.promise.deliver(
            signal_failure(protocol::signal_error::internal_error, "could not subscribe to Redis"));
        }
      }
      if (!ok)
        unsubscribe_if_idle(self, user);
    },
    [self](open_call_atom, call_setup& setup, const std::string& user, const caf::actor& conn) {
      auto& st = self->state;
      auto it = st.calls.find(setup.session_id);
      if (it != st.calls.end()) {
        auto& info = user == setup.caller_id ? setup.caller_info : setup.callee_info;
        self->send(it->second, join_atom::value, user, conn, protocol::to_json(info));
        return it->second;
      }
      auto id = setup.session_id;
      auto call = spawn_call_actor(self->home_system(), st.ctx, std::move(setup), user, conn);
      st.calls[id] = call;
      st.call_ids[call.address()] = id;
      self->monitor(call);
      return call;
    },
    [self](deliver_atom, const std::string& user, std::string& payload, const caf::actor& hint) {
      auto conn = receiver_of(self->state, user);
      if (conn)
        self->send(conn, signal_atom::value, std::move(payload), hint);
      else
        publish(self, redis::keys::signal(user), std::move(payload));
    },
    [self](publish_atom, const std::string& user, std::string& payload, int64_t read_at) {
      // A relay to a peer on another instance: one PUBLISH, nothing else.
      publish(self, redis::keys::signal(user), std::move(payload));
      goring_metrics().relay->observe(seconds_since(read_at));
    },
    [self](pubsub_atom, const std::string& channel, std::string& payload) {
      auto& st = self->state;
      goring_metrics().pubsub_in->inc();
      if (channel.compare(0, redis::keys::probe_prefix.size(), redis::keys::probe_prefix) == 0) {
        if (payload == std::to_string(st.probe_sent)) {
          st.probe_sent = 0;
          st.ctx->probe_ok = true;
        }
        return;
      }
      if (channel.compare(0, redis::keys::signal_prefix.size(), redis::keys::signal_prefix) != 0
          || payload.empty())
        return;
      auto user = channel.substr(redis::keys::signal_prefix.size());
      if (payload[0] == protocol::signal_tag::replaced) {
        auto it = st.users.find(user);
        if (it != st.users.end() && payload.compare(1, std::string::npos, it->second.token) == 0) {
          GORING_LOG(info, component, "user " << user << " connected elsewhere");
          self->send(it->second.conn, replaced_atom::value);
          st.users.erase(it);
        }
        return;
      }
      auto conn = receiver_of(st, user);
      if (conn)
        self->send(conn, signal_atom::value, std::move(payload), caf::actor{});
    },
    [self](link_up_atom, bool is_subscriber) {
      auto& st = self->state;
      GORING_LOG(info, component, (is_subscriber ? "subscriber" : "command") << " connection up");
      if (is_subscriber) {
        resubscribe_all(self);
        return;
      }
      load_scripts(self);
      heartbeat(self);
      if (st.commands_were_up) {
        goring_metrics().redis_reconnects->inc();
        // Redis came back: write back what it may have lost (presence keys),
        // and let every call see at once whether its state survived.
        refresh_presence(self);
        for (auto& [id, call] : st.calls)
          self->send(call, check_atom::value);
      }
      st.commands_were_up = true;
    },
    [self](refresh_atom) {
      refresh_presence(self);
      self->delayed_send(self, self->state.ctx->config.presence_ttl / 3, refresh_atom::value);
    },
    [self](sweep_atom) {
      sweep_waiting(self);
      self->delayed_send(self, std::chrono::seconds(1), sweep_atom::value);
    },
    [self](heartbeat_atom) {
      if (self->state.draining)
        return;
      heartbeat(self);
      self->delayed_send(self, self->state.ctx->config.heartbeat_ttl / 3, heartbeat_atom::value);
    },
    [self](probe_atom, bool) {
      // The subscription is confirmed: a fresh probe, nothing outstanding.
      self->state.probe_sent = 0;
      probe(self);
    },
    [self](probe_atom) {
      probe(self);
      self->delayed_send(self, self->state.ctx->config.pubsub_probe_interval, probe_atom::value);
    },
    [self](shutdown_atom) {
      self->state.draining = true;
      for (auto& [addr, reg] : self->state.conns) {
        auto conn = caf::actor_cast<caf::actor>(addr);
        if (conn)
          self->send(conn, shutdown_atom::value);
      }
      for (auto& [id, call] : self->state.calls)
        self->send(call, shutdown_atom::value);
    },
    [self](admin_atom, const std::string& method, const std::string& target) {
      return admin_request(self, method, target);
    },
    [self](leave_atom) {
      auto rp = self->make_response_promise();
      auto& ctx = *self->state.ctx;
      run_script(self, redis::server_leave(ctx.config.server_id, ctx.instance_id),
                 [rp](redis::reply) mutable { rp.deliver(true); });
      return rp;
    },
  };
}

} // namespace

caf::actor spawn_redis_bridge(caf::actor_system& sys, context_ptr ctx,
                              boost::asio::io_context& io) {
  return sys.spawn(redis_bridge, std::move(ctx), &io);
}

} // namespace goring
