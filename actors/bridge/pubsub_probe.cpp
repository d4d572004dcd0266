// The bridge's pub/sub probe: a message to this instance's own probe
// channel that must come back before the next one, or the subscriber
// connection is not trusted (it can be up and deliver nothing).
#include "actors/bridge/state.hpp"
#include "config/log.hpp"
#include "redis/keys.hpp"

namespace goring::bridge {

void send_probe(actor* self) {
  auto& st = self->state;
  auto& probe = st.probe;
  if (!st.topology->subscriber_connected()) {
    // Down already: the reconnect is under way, nothing to probe.
    probe.sent = 0;
    return;
  }
  if (probe.sent != 0) {
    GORING_LOG(warn, component,
               "pub/sub probe " << probe.sent << " did not come back; reconnecting the subscriber");
    st.ctx->probe_ok = false;
    st.ctx->count_probe_failure();
    st.topology->restart_subscriber("pub/sub probe lost");
  }
  probe.sent = ++probe.seq;
  publish(self, redis::keys::probe(st.ctx->instance_id), std::to_string(probe.sent));
}

void probe_returned(actor* self, const std::string& payload) {
  auto& st = self->state;
  if (payload == std::to_string(st.probe.sent)) {
    st.probe.sent = 0;
    st.ctx->probe_ok = true;
  }
}

} // namespace goring::bridge
