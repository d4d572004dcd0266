// The bridge's presence job: this instance's heartbeat (ws:server) and the
// TTLs of its users' ws:user keys, written back when Redis lost them.
#include "actors/bridge/state.hpp"
#include "config/log.hpp"

namespace goring::bridge {

namespace {
/// Users per refresh_users call: bounds the time one script blocks Redis.
constexpr std::size_t refresh_batch = 500;
} // namespace

void heartbeat(actor* self) {
  auto& ctx = *self->state.ctx;
  self->state.commands->run(
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

void refresh_presence(actor* self) {
  auto& st = self->state;
  std::vector<std::string> users;
  std::vector<std::string> tokens;
  auto flush = [&] {
    if (users.empty())
      return;
    st.commands->run(
      redis::refresh_users(users, tokens, st.ctx->config.presence_ttl),
      [self, users, tokens](redis::reply r) {
        if (r.type != redis::reply::kind::array)
          return;
        auto& local = self->state.registry.users;
        for (auto& lost : r.elements) {
          auto index = static_cast<std::size_t>(lost.integer) - 1;
          if (index >= users.size())
            continue;
          auto it = local.find(users[index]);
          if (it == local.end() || it->second.token != tokens[index])
            continue;
          GORING_LOG(info, component, "user " << users[index] << " was taken over elsewhere");
          self->send(it->second.conn, replaced_atom::value);
          local.erase(it);
        }
      });
    users.clear();
    tokens.clear();
  };
  for (auto& [user, local] : st.registry.users) {
    users.push_back(user);
    tokens.push_back(local.token);
    if (users.size() == refresh_batch)
      flush();
  }
  flush();
}

} // namespace goring::bridge
