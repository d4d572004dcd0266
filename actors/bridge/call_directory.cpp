// The bridge's call directory: the one call actor per session on this
// instance, so every local participant of a call talks to the same actor.
#include "actors/bridge/state.hpp"
#include "actors/call_actor.hpp"

namespace goring::bridge {

caf::actor open_call(actor* self, call_setup setup, const std::string& user,
                     const caf::actor& conn) {
  auto& st = self->state;
  auto& dir = st.directory;
  auto it = dir.calls.find(setup.session_id);
  if (it != dir.calls.end()) {
    auto& info = user == setup.caller_id ? setup.caller_info : setup.callee_info;
    self->send(it->second, join_atom::value, user, conn, protocol::to_json(info));
    return it->second;
  }
  auto id = setup.session_id;
  auto call = spawn_call_actor(self->home_system(), st.ctx, std::move(setup), user, conn);
  dir.calls[id] = call;
  dir.call_ids[call.address()] = id;
  self->monitor(call);
  return call;
}

bool call_down(actor* self, const caf::actor_addr& who) {
  auto& dir = self->state.directory;
  auto call = dir.call_ids.find(who);
  if (call == dir.call_ids.end())
    return false;
  auto it = dir.calls.find(call->second);
  if (it != dir.calls.end() && it->second.address() == who)
    dir.calls.erase(it);
  dir.call_ids.erase(call);
  return true;
}

} // namespace goring::bridge
