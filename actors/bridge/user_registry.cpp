// The bridge's user registry: which local connection takes each user's
// messages, the ws:user key claims behind it, and the fan-out of pub/sub
// messages on users' channels.
#include "actors/bridge/state.hpp"
#include "config/log.hpp"
#include "metrics/instance_metrics.hpp"
#include "redis/keys.hpp"

namespace goring::bridge {

namespace {

bool is_local_token(const state& st, const std::string& token) {
  auto& id = st.ctx->instance_id;
  return token.size() > id.size() && token.compare(0, id.size(), id) == 0
         && token[id.size()] == '/';
}

void unsubscribe_if_idle(actor* self, const std::string& user) {
  auto& reg = self->state.registry;
  if (reg.conns_per_user.count(user) != 0 || reg.subscribing.count(user) != 0)
    return;
  if (reg.channels.erase(user) != 0)
    self->state.topology->unsubscribe({redis::keys::signal(user)});
}

void release(actor* self, const std::string& user, const std::string& token) {
  self->state.commands->run(redis::release_user(user, token), [user](redis::reply r) {
    if (r.is_error())
      GORING_LOG(warn, component, "releasing ws:user:" << user << " failed: " << r.str);
  });
}

/// The connection that takes `user`'s messages here, if any.
caf::actor receiver_of(const user_registry& reg, const std::string& user) {
  auto it = reg.users.find(user);
  if (it != reg.users.end())
    return it->second.conn;
  auto registering = reg.registering.find(user);
  return registering != reg.registering.end() ? registering->second : caf::actor{};
}

/// Takes the ws:user key for a connection whose channel is subscribed.
/// Answers the connection with the claim's reply as strings: previous
/// owner, then the call to resume, if any.
void claim(actor* self, const std::string& user, waiting_registration waiting) {
  auto& st = self->state;
  st.commands->run(
    redis::claim_user(user, waiting.token, st.ctx->config.presence_ttl),
    [self, user, waiting](redis::reply r) mutable {
      auto& st = self->state;
      auto& reg = st.registry;
      auto done_registering = [&] {
        auto it = reg.registering.find(user);
        if (it != reg.registering.end() && it->second == waiting.conn)
          reg.registering.erase(it);
      };
      if (r.type != redis::reply::kind::array || r.elements.empty()) {
        GORING_LOG(warn, component, "claiming ws:user:" << user << " failed: " << r.str);
        done_registering();
        waiting.promise.deliver(signal_failure(protocol::signal_error::internal_error,
                                               "could not register the connection in Redis"));
        return;
      }
      done_registering();
      if (reg.conns.count(waiting.conn.address()) == 0) {
        // The connection closed while it registered: give the key back.
        release(self, user, waiting.token);
        return;
      }
      std::vector<std::string> answer;
      for (auto& e : r.elements)
        answer.push_back(e.str);
      auto& previous = answer[0];
      auto it = reg.users.find(user);
      if (it != reg.users.end() && it->second.conn != waiting.conn)
        self->send(it->second.conn, replaced_atom::value);
      reg.users[user] = local_user{waiting.conn, waiting.token};
      // The replaced connection is named, not the new one: a late message
      // can then never close a connection newer than the one it meant.
      if (!previous.empty())
        goring_metrics().count_connection("replaced");
      if (!previous.empty() && previous != waiting.token && !is_local_token(st, previous))
        publish(self, redis::keys::signal(user),
                protocol::tagged(protocol::signal_tag::replaced, previous));
      waiting.promise.deliver(std::move(answer));
    });
}

} // namespace

caf::response_promise register_connection(actor* self, const std::string& user,
                                          const std::string& token, const caf::actor& conn) {
  auto& st = self->state;
  auto& reg = st.registry;
  auto rp = self->make_response_promise();
  if (st.draining) {
    rp.deliver(signal_failure(protocol::signal_error::internal_error,
                              "the server is restarting; connect again"));
    return rp;
  }
  reg.conns[conn.address()] = registered_conn{user, token};
  ++reg.conns_per_user[user];
  st.ctx->registered_connections = static_cast<int>(reg.conns.size());
  reg.registering[user] = conn;
  self->monitor(conn);
  waiting_registration waiting{conn, token, rp};
  // The channel is subscribed before the key says the user is online,
  // so nothing published to them right after is lost.
  if (reg.channels.count(user) != 0 && reg.subscribing.count(user) == 0) {
    claim(self, user, std::move(waiting));
    return rp;
  }
  auto& queue = reg.subscribing[user];
  queue.push_back(std::move(waiting));
  if (queue.size() == 1) {
    reg.channels.insert(user);
    auto handle = caf::actor{self};
    st.topology->subscribe({redis::keys::signal(user)}, [handle, user](redis::reply r) {
      caf::anon_send(handle, subscribed_atom::value, user, !r.is_error());
    });
  }
  return rp;
}

void channel_subscribed(actor* self, const std::string& user, bool ok) {
  auto& reg = self->state.registry;
  auto it = reg.subscribing.find(user);
  if (it == reg.subscribing.end())
    return;
  auto waiting = std::move(it->second);
  reg.subscribing.erase(it);
  for (auto& w : waiting) {
    if (ok) {
      claim(self, user, std::move(w));
    } else {
      auto r = reg.registering.find(user);
      if (r != reg.registering.end() && r->second == w.conn)
        reg.registering.erase(r);
      w.promise.deliver(
        signal_failure(protocol::signal_error::internal_error, "could not subscribe to Redis"));
    }
  }
  if (!ok)
    unsubscribe_if_idle(self, user);
}

bool connection_down(actor* self, const caf::actor_addr& who) {
  auto& st = self->state;
  auto& reg = st.registry;
  auto it = reg.conns.find(who);
  if (it == reg.conns.end())
    return false;
  auto gone = std::move(it->second);
  reg.conns.erase(it);
  st.ctx->registered_connections = static_cast<int>(reg.conns.size());
  if (--reg.conns_per_user[gone.user] == 0)
    reg.conns_per_user.erase(gone.user);
  auto user_it = reg.users.find(gone.user);
  if (user_it != reg.users.end() && user_it->second.conn.address() == who)
    reg.users.erase(user_it);
  auto reg_it = reg.registering.find(gone.user);
  if (reg_it != reg.registering.end() && reg_it->second.address() == who)
    reg.registering.erase(reg_it);
  release(self, gone.user, gone.token);
  unsubscribe_if_idle(self, gone.user);
  return true;
}

void deliver(actor* self, const std::string& user, std::string payload, const caf::actor& hint) {
  auto conn = receiver_of(self->state.registry, user);
  if (conn)
    self->send(conn, signal_atom::value, std::move(payload), hint);
  else
    publish(self, redis::keys::signal(user), std::move(payload));
}

void channel_message(actor* self, const std::string& user, std::string payload) {
  auto& reg = self->state.registry;
  if (payload.empty())
    return;
  if (payload[0] == protocol::signal_tag::replaced) {
    auto it = reg.users.find(user);
    if (it != reg.users.end() && payload.compare(1, std::string::npos, it->second.token) == 0) {
      GORING_LOG(info, component, "user " << user << " connected elsewhere");
      self->send(it->second.conn, replaced_atom::value);
      reg.users.erase(it);
    }
    return;
  }
  auto conn = receiver_of(reg, user);
  if (conn)
    self->send(conn, signal_atom::value, std::move(payload), caf::actor{});
}

void resubscribe_all(actor* self) {
  auto& st = self->state;
  use_probe_channels(self, probe_channels(st));
  auto names = st.probe.channels;
  for (auto& user : st.registry.channels)
    names.push_back(redis::keys::signal(user));
  auto handle = caf::actor{self};
  st.topology->subscribe(std::move(names), [handle](redis::reply r) {
    if (r.is_error())
      GORING_LOG(warn, component, "resubscribing failed: " << r.str);
    else // probe as soon as the probe channels listen: readiness need not wait
      caf::anon_send(handle, probe_atom::value, true);
  });
}

std::vector<caf::actor> registered_connections(const state& st) {
  std::vector<caf::actor> out;
  for (auto& [addr, reg] : st.registry.conns)
    if (auto conn = caf::actor_cast<caf::actor>(addr))
      out.push_back(conn);
  return out;
}

} // namespace goring::bridge
