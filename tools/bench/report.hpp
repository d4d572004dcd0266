/// The JSON report goring-bench writes, and the pieces every scenario puts
/// in it.
#pragma once

#include <map>
#include <string>
#include <type_traits>
#include <vector>

#include <rapidjson/document.h>

#include "tools/bench/histogram.hpp"
#include "tools/bench/server_probe.hpp"

namespace goring::bench {

/// A JSON object inside a report, to add members to.
class json_object {
public:
  json_object(rapidjson::Value& value, rapidjson::Document::AllocatorType& alloc)
    : value_(&value), alloc_(&alloc) {
    // nop
  }

  /// The object member `key`, created empty when missing.
  json_object object(const char* key);

  template <class T>
  json_object& set(const char* key, const T& v) {
    rapidjson::Value out;
    if constexpr (std::is_same_v<T, bool>)
      out.SetBool(v);
    else if constexpr (std::is_integral_v<T> && std::is_signed_v<T>)
      out.SetInt64(static_cast<int64_t>(v));
    else if constexpr (std::is_integral_v<T>)
      out.SetUint64(static_cast<uint64_t>(v));
    else if constexpr (std::is_floating_point_v<T>)
      out.SetDouble(static_cast<double>(v));
    else
      out.SetString(std::string{v}.c_str(), allocator());
    return put(key, out);
  }
  json_object& set_null(const char* key);
  json_object& set_counts(const char* key, const std::map<std::string, uint64_t>& counts);
  json_object& set_ints(const char* key, const std::vector<int64_t>& values);

private:
  rapidjson::Document::AllocatorType& allocator() {
    return *alloc_;
  }
  json_object& put(const char* key, rapidjson::Value& v);

  rapidjson::Value* value_;
  rapidjson::Document::AllocatorType* alloc_;
};

class report {
public:
  report();
  json_object root() {
    return {doc_, doc_.GetAllocator()};
  }
  /// Indented JSON, doubles to 6 decimal places.
  std::string text() const;

private:
  rapidjson::Document doc_;
};

/// `{"count","min","mean","p50","p90","p99","p999","max"}` in milliseconds.
void put_latency(json_object parent, const char* key, const histogram& h);

/// "server" (CPU, per process) and "redis" (commands, clients) blocks, each
/// with figures per `unit` ("cycle", "message", ...) when `units` > 0.
void put_server(json_object root, const server_delta& d, const char* unit, double units);

/// Milliseconds of a histogram percentile, for summaries.
double ms(double nanoseconds);

} // namespace goring::bench
