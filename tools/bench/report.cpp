#include "tools/bench/report.hpp"

#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>

namespace goring::bench {

json_object json_object::object(const char* key) {
  auto it = value_->FindMember(key);
  if (it == value_->MemberEnd()) {
    rapidjson::Value empty{rapidjson::kObjectType};
    put(key, empty);
    it = value_->FindMember(key);
  }
  return {it->value, *alloc_};
}

json_object& json_object::put(const char* key, rapidjson::Value& v) {
  auto it = value_->FindMember(key);
  if (it != value_->MemberEnd()) {
    it->value = v;
    return *this;
  }
  rapidjson::Value name{key, allocator()};
  value_->AddMember(name, v, allocator());
  return *this;
}

json_object& json_object::set_null(const char* key) {
  rapidjson::Value v;
  return put(key, v);
}

json_object& json_object::set_counts(const char* key,
                                     const std::map<std::string, uint64_t>& counts) {
  rapidjson::Value v{rapidjson::kObjectType};
  for (const auto& [name, n] : counts)
    v.AddMember(rapidjson::Value{name.c_str(), allocator()}, rapidjson::Value{n}, allocator());
  return put(key, v);
}

json_object& json_object::set_ints(const char* key, const std::vector<int64_t>& values) {
  rapidjson::Value v{rapidjson::kArrayType};
  for (auto n : values)
    v.PushBack(rapidjson::Value{n}, allocator());
  return put(key, v);
}

report::report() {
  doc_.SetObject();
}

std::string report::text() const {
  rapidjson::StringBuffer out;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> w{out};
  w.SetIndent(' ', 2);
  w.SetMaxDecimalPlaces(6);
  doc_.Accept(w);
  return std::string{out.GetString(), out.GetSize()} + "\n";
}

double ms(double nanoseconds) {
  return nanoseconds / 1e6;
}

void put_latency(json_object parent, const char* key, const histogram& h) {
  auto o = parent.object(key);
  o.set("count", h.count());
  o.set("min", ms(static_cast<double>(h.min())));
  o.set("mean", ms(h.mean()));
  o.set("p50", ms(h.percentile(0.50)));
  o.set("p90", ms(h.percentile(0.90)));
  o.set("p99", ms(h.percentile(0.99)));
  o.set("p999", ms(h.percentile(0.999)));
  o.set("max", ms(static_cast<double>(h.max())));
}

void put_server(json_object root, const server_delta& d, const char* unit, double units) {
  std::string per = std::string{"_per_"} + unit;
  if (!d.processes.empty()) {
    auto server = root.object("server");
    std::vector<int64_t> pids;
    for (const auto& p : d.processes)
      pids.push_back(p.pid);
    server.set_ints("pids", pids);
    server.set("seconds", d.seconds);
    server.set("cpu_s", d.cpu_seconds);
    server.set("cpu_core_fraction", d.seconds > 0 ? d.cpu_seconds / d.seconds : 0.0);
    if (units > 0)
      server.set(("cpu_us" + per).c_str(), d.cpu_seconds * 1e6 / units);
    std::vector<int64_t> rss;
    std::vector<int64_t> cpu_ms;
    for (const auto& p : d.processes) {
      rss.push_back(static_cast<int64_t>(p.rss_kib));
      cpu_ms.push_back(static_cast<int64_t>(p.cpu_seconds * 1000 + 0.5));
    }
    server.set_ints("rss_kib", rss);
    server.set_ints("cpu_ms", cpu_ms);
  }
  if (d.has_redis) {
    auto redis = root.object("redis");
    redis.set("commands", d.redis_commands);
    if (units > 0)
      redis.set(("commands" + per).c_str(), static_cast<double>(d.redis_commands) / units);
    redis.set("connected_clients", d.redis_clients);
    redis.set_counts("by_command", d.redis_by_command);
  }
}

} // namespace goring::bench
