// The bridge's admin router: answers /admin/... (the admin listener's API,
// used by goringctl) with rows gathered from this instance's actors.
#include "actors/bridge/state.hpp"
#include "codec/admin_json.hpp"
#include "net/percent_encoding.hpp"

namespace goring::bridge {

namespace {

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
caf::response_promise gather_status(actor* self, const std::vector<caf::actor>& targets,
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

std::string bridge_row(actor* self) {
  auto& st = self->state;
  return admin_row({{"kind", "bridge"},
                    {"id", static_cast<long long>(self->id())},
                    {"state", st.ctx->redis_healthy.load() ? "connected" : "disconnected"},
                    {"age_seconds", unix_now() - st.ctx->started_at},
                    {"mailbox", static_cast<long long>(self->mailbox().size())},
                    {"handled", static_cast<long long>(st.commands->sent())},
                    {"users", static_cast<long long>(st.registry.users.size())},
                    {"calls", static_cast<long long>(st.directory.calls.size())},
                    {"instance", st.ctx->instance_id},
                    {"redis", st.topology->describe()}});
}

std::string instance_row(actor* self) {
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
} // namespace

caf::response_promise admin_request(actor* self, const std::string& method,
                                    const std::string& target) {
  auto& st = self->state;
  auto query_at = target.find('?');
  std::string path = target.substr(0, query_at);
  std::string query = query_at == std::string::npos ? "" : target.substr(query_at + 1);
  // The id after the prefix, unescaped: goringctl escapes every byte
  // outside A-Z a-z 0-9 - _ . ~ (an id such as "a}b{c" arrives as
  // "a%7Db%7Bc").
  auto tail = [&](const std::string& prefix) {
    return path.size() > prefix.size() && path.compare(0, prefix.size(), prefix) == 0
             ? net::decode_path_segment(std::string_view{path}.substr(prefix.size()))
             : std::string{};
  };
  auto conns_of = [&](const std::string& only_user) {
    std::vector<caf::actor> out;
    for (auto& [user, local] : st.registry.users)
      if (only_user.empty() || user == only_user)
        out.push_back(local.conn);
    return out;
  };
  auto calls_of = [&](const std::string& only_session) {
    std::vector<caf::actor> out;
    for (auto& [id, call] : st.directory.calls)
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
      targets = registered_connections(st);
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
    auto it = st.registry.users.find(tail("/admin/kick/"));
    if (it == st.registry.users.end())
      return not_found();
    self->send(it->second.conn, kick_atom::value);
    auto rp = self->make_response_promise();
    rp.deliver(uint16_t{200}, std::string{R"({"kicked":true})"});
    return rp;
  }
  return not_found();
}

} // namespace goring::bridge
