// The bridge's pub/sub probe: a message to this instance's own probe
// channel that must come back before the next one, or the subscriber
// connection is not trusted (it can be up and deliver nothing). On a Redis
// Cluster each master's shard subscriber is one such connection: the probe
// goes out on one channel per master and must come back on all of them.
#include <algorithm>

#include "actors/bridge/state.hpp"
#include "config/log.hpp"
#include "redis/keys.hpp"

namespace goring::bridge {

std::vector<std::string> probe_channels(const state& st) {
  std::vector<std::string> out;
  for (auto& tag : st.topology->shard_tags())
    out.push_back(redis::keys::probe(st.ctx->instance_id, tag));
  // Sorted: masters listed in another order are the same shards.
  std::sort(out.begin(), out.end());
  return out;
}

void use_probe_channels(actor* self, const std::vector<std::string>& channels) {
  auto& st = self->state;
  std::vector<std::string> gone;
  for (auto& c : st.probe.channels)
    if (std::find(channels.begin(), channels.end(), c) == channels.end())
      gone.push_back(c);
  if (!gone.empty())
    st.topology->unsubscribe(std::move(gone));
  st.probe.channels = channels;
}

namespace {

std::string joined(const std::unordered_set<std::string>& names) {
  std::vector<std::string> sorted{names.begin(), names.end()};
  std::sort(sorted.begin(), sorted.end());
  std::string out;
  for (auto& n : sorted)
    out += (out.empty() ? "" : ", ") + n;
  return out;
}

/// The shards changed (a new slot map): the probe listens on the new
/// channels first and goes out in the answer, so it never judges a
/// channel that was not listening yet.
void follow_shards(actor* self, std::vector<std::string> channels) {
  auto& st = self->state;
  use_probe_channels(self, channels);
  st.probe.sent = 0;
  st.probe.waiting.clear();
  auto handle = caf::actor{self};
  st.topology->subscribe(std::move(channels), [handle](redis::reply r) {
    if (r.is_error())
      GORING_LOG(warn, component, "subscribing the probe channels failed: " << r.str);
    else
      caf::anon_send(handle, probe_atom::value, true);
  });
}

} // namespace

void send_probe(actor* self) {
  auto& st = self->state;
  auto& probe = st.probe;
  if (!st.topology->subscriber_connected()) {
    // Down already: the reconnect is under way, nothing to probe.
    probe.sent = 0;
    probe.waiting.clear();
    return;
  }
  if (probe.sent != 0) {
    GORING_LOG(warn, component,
               "pub/sub probe " << probe.sent << " did not come back on " << joined(probe.waiting)
                                << "; reconnecting the subscriber");
    st.ctx->probe_ok = false;
    st.ctx->count_probe_failure();
    st.topology->restart_subscriber("pub/sub probe lost");
    probe.sent = 0;
    probe.waiting.clear();
  }
  auto channels = probe_channels(st);
  if (channels != probe.channels) {
    follow_shards(self, std::move(channels));
    return;
  }
  probe.sent = ++probe.seq;
  probe.waiting.clear();
  probe.waiting.insert(channels.begin(), channels.end());
  for (auto& c : channels)
    publish(self, c, std::to_string(probe.sent));
}

void probe_returned(actor* self, const std::string& channel, const std::string& payload) {
  auto& probe = self->state.probe;
  if (probe.sent == 0 || payload != std::to_string(probe.sent))
    return;
  probe.waiting.erase(channel);
  if (probe.waiting.empty()) {
    probe.sent = 0;
    self->state.ctx->probe_ok = true;
  }
}

} // namespace goring::bridge
