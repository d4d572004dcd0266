#include "actors/redis_bridge.hpp"

#include <boost/asio/io_context.hpp>

#include "actors/bridge/state.hpp"
#include "config/log.hpp"
#include "metrics/instance_metrics.hpp"
#include "redis/keys.hpp"

namespace goring {

namespace bridge {

void publish(actor* self, const std::string& channel, std::string payload) {
  goring_metrics().pubsub_out->inc();
  self->state.topology->command(
    {"PUBLISH", channel, std::move(payload)}, [channel](redis::reply r) {
      if (r.is_error())
        GORING_LOG(warn, component, "PUBLISH to " << channel << " failed: " << r.str);
    });
}

namespace {

/// Connects the topology's events to the actor: health flags on the Redis
/// strands (read by /health), everything else as messages.
redis::topology_events events_for(actor* self, const context_ptr& ctx) {
  auto handle = caf::actor{self};
  // Health is the conjunction of both paths; the flags are only touched on
  // the Redis strands, the result read by /health.
  auto up = std::make_shared<std::array<std::atomic<bool>, 2>>();
  auto set_up = [ctx, up](redis::link_role role, bool is_up) {
    (*up)[static_cast<std::size_t>(role)] = is_up;
    ctx->redis_healthy = (*up)[0].load() && (*up)[1].load();
  };
  redis::topology_events events;
  events.on_up = [handle, set_up](redis::link_role role, bool moved) {
    set_up(role, true);
    caf::anon_send(handle, link_up_atom::value, role == redis::link_role::subscriber, moved);
  };
  events.on_down = [ctx, set_up](redis::link_role role, const std::string& why) {
    set_up(role, false);
    // Ready again only once the channels are subscribed again and a probe
    // came back through them, not as soon as the connection is.
    if (role == redis::link_role::subscriber)
      ctx->probe_ok = false;
    ctx->count_redis_error();
    GORING_LOG(warn, component, redis::to_string(role) << " connection down: " << why);
  };
  events.on_failover = [ctx] { ctx->redis_failovers.fetch_add(1); };
  events.on_message = [handle](const std::string& channel, const std::string& payload) {
    caf::anon_send(handle, pubsub_atom::value, channel, payload);
  };
  return events;
}

void link_up(actor* self, bool is_subscriber, bool moved) {
  auto& st = self->state;
  GORING_LOG(info, component,
             (is_subscriber ? "subscriber" : "command")
               << " connection up" << (moved ? " on a new master " + st.topology->describe() : ""));
  if (is_subscriber) {
    resubscribe_all(self);
    return;
  }
  st.commands->load_scripts();
  heartbeat(self);
  if (st.commands_were_up) {
    goring_metrics().redis_reconnects->inc();
    // Redis came back: write back what it may have lost (presence keys),
    // and let every call see at once whether its state survived. On a new
    // master (a failover) the calls first write back their own keys: the
    // old master may have acknowledged writes that never reached this one,
    // and a call is not over because its keys were lost in the move.
    refresh_presence(self);
    for (auto& [id, call] : st.directory.calls) {
      if (moved)
        self->send(call, restore_atom::value);
      else
        self->send(call, check_atom::value);
    }
  }
  st.commands_were_up = true;
}

void pubsub_message(actor* self, const std::string& channel, std::string payload) {
  goring_metrics().pubsub_in->inc();
  if (channel.compare(0, redis::keys::probe_prefix.size(), redis::keys::probe_prefix) == 0) {
    probe_returned(self, channel, payload);
    return;
  }
  if (channel.compare(0, redis::keys::signal_prefix.size(), redis::keys::signal_prefix) != 0)
    return;
  channel_message(self, channel.substr(redis::keys::signal_prefix.size()), std::move(payload));
}

void shutdown(actor* self) {
  auto& st = self->state;
  st.draining = true;
  for (auto& conn : registered_connections(st))
    self->send(conn, shutdown_atom::value);
  for (auto& [id, call] : st.directory.calls)
    self->send(call, shutdown_atom::value);
}

/// The bridge's behaviour: each message goes to the job it belongs to.
caf::behavior redis_bridge(actor* self, context_ptr ctx, boost::asio::io_context* io) {
  auto& st = self->state;
  st.ctx = ctx;
  st.topology = redis::make_topology(*io, ctx->config, events_for(self, ctx));
  auto handle = caf::actor{self};
  st.commands = std::make_unique<redis::command_runner>(
    *st.topology, [handle](uint64_t id, redis::reply r) {
      caf::anon_send(handle, reply_atom::value, id, std::move(r));
    });
  st.topology->start();
  self->delayed_send(self, ctx->config.presence_ttl / 3, refresh_atom::value);
  self->delayed_send(self, ctx->config.heartbeat_ttl / 3, heartbeat_atom::value);
  self->delayed_send(self, ctx->config.pubsub_probe_interval, probe_atom::value);
  self->delayed_send(self, std::chrono::seconds(1), sweep_atom::value);

  self->set_down_handler([self](const caf::down_msg& dm) {
    if (!call_down(self, dm.source))
      connection_down(self, dm.source);
  });

  return {
    [self](reply_atom, uint64_t id, redis::reply& r) {
      self->state.commands->complete(id, std::move(r));
    },
    [self](eval_atom, redis::script_call& call) {
      auto rp = self->make_response_promise();
      self->state.commands->run(std::move(call),
                                [rp](redis::reply r) mutable { rp.deliver(std::move(r)); });
      return rp;
    },
    [self](command_atom, std::vector<std::string>& argv) {
      auto rp = self->make_response_promise();
      self->state.commands->send(std::move(argv),
                                 [rp](redis::reply r) mutable { rp.deliver(std::move(r)); });
      return rp;
    },
    [self](register_atom, const std::string& user, const std::string& token,
           const caf::actor& conn) { return register_connection(self, user, token, conn); },
    [self](subscribed_atom, const std::string& user, bool ok) {
      channel_subscribed(self, user, ok);
    },
    [self](open_call_atom, call_setup& setup, const std::string& user, const caf::actor& conn) {
      return open_call(self, std::move(setup), user, conn);
    },
    [self](deliver_atom, const std::string& user, std::string& payload, const caf::actor& hint) {
      deliver(self, user, std::move(payload), hint);
    },
    [self](publish_atom, const std::string& user, std::string& payload, int64_t read_at) {
      // A relay to a peer on another instance: one PUBLISH, nothing else.
      publish(self, redis::keys::signal(user), std::move(payload));
      goring_metrics().relay->observe(seconds_since(read_at));
    },
    [self](pubsub_atom, const std::string& channel, std::string& payload) {
      pubsub_message(self, channel, std::move(payload));
    },
    [self](link_up_atom, bool is_subscriber, bool moved) { link_up(self, is_subscriber, moved); },
    [self](refresh_atom) {
      refresh_presence(self);
      self->delayed_send(self, self->state.ctx->config.presence_ttl / 3, refresh_atom::value);
    },
    [self](sweep_atom) {
      self->state.commands->fail_late();
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
      self->state.probe.sent = 0;
      send_probe(self);
    },
    [self](probe_atom) {
      send_probe(self);
      self->delayed_send(self, self->state.ctx->config.pubsub_probe_interval, probe_atom::value);
    },
    [self](shutdown_atom) { shutdown(self); },
    [self](admin_atom, const std::string& method, const std::string& target) {
      return admin_request(self, method, target);
    },
    [self](leave_atom) {
      auto rp = self->make_response_promise();
      auto& ctx = *self->state.ctx;
      self->state.commands->run(redis::server_leave(ctx.config.server_id, ctx.instance_id),
                                [rp](redis::reply) mutable { rp.deliver(true); });
      return rp;
    },
  };
}

} // namespace

} // namespace bridge

caf::actor spawn_redis_bridge(caf::actor_system& sys, context_ptr ctx,
                              boost::asio::io_context& io) {
  return sys.spawn(bridge::redis_bridge, std::move(ctx), &io);
}

} // namespace goring
