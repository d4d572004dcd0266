#include "tools/bench/scenarios.hpp"

#include <cstdarg>
#include <cstdio>

namespace goring::bench {

std::string format(const char* fmt, ...) {
  char buf[1024];
  va_list args;
  va_start(args, fmt);
  std::vsnprintf(buf, sizeof(buf), fmt, args);
  va_end(args);
  return buf;
}

void put_connections(json_object root, const connect_result& r, const thread_stats& stats,
                     std::size_t dropped) {
  auto c = root.object("connections");
  c.set("requested", r.requested);
  c.set("open", r.open);
  c.set("failed", r.failed);
  c.set("seconds", r.seconds);
  c.set("per_s", r.seconds > 0 ? static_cast<double>(r.open) / r.seconds : 0.0);
  c.set("capped", r.capped);
  c.set("dropped_by_server", dropped);
  put_latency(c, "upgrade_ms", stats.upgrade);
}

void put_errors(json_object root, const thread_stats& stats) {
  root.set_counts("errors", stats.errors);
  root.set("stray_frames", stats.stray_frames);
}

std::string server_summary(const server_delta& d, const char* unit, double units) {
  std::string out;
  if (!d.processes.empty() && units > 0)
    out += format(", server %.1f us/%s", d.cpu_seconds * 1e6 / units, unit);
  if (d.has_redis && units > 0)
    out += format(", redis %.3f commands/%s", static_cast<double>(d.redis_commands) / units, unit);
  if (d.has_redis)
    out += format(", %llu redis clients", static_cast<unsigned long long>(d.redis_clients));
  return out;
}

} // namespace goring::bench
