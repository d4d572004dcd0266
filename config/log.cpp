#include "config/log.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

namespace goring::log {

namespace {

std::atomic<int> min_level{static_cast<int>(level::info)};
std::mutex out_mutex;

const char* name_of(level lvl) {
  switch (lvl) {
    case level::debug:
      return "debug";
    case level::info:
      return "info";
    case level::warn:
      return "warn";
    case level::error:
      return "error";
    default:
      return "off";
  }
}

} // namespace

bool set_level(std::string_view name) {
  for (int i = 0; i <= static_cast<int>(level::off); ++i) {
    if (name == name_of(static_cast<level>(i))) {
      min_level = i;
      return true;
    }
  }
  return false;
}

level current_level() {
  return static_cast<level>(min_level.load(std::memory_order_relaxed));
}

void write(level lvl, std::string_view component, std::string_view message) {
  using namespace std::chrono;
  auto now = system_clock::now();
  auto secs = system_clock::to_time_t(now);
  auto ms = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char stamp[64];
  std::snprintf(stamp, sizeof(stamp), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  std::lock_guard<std::mutex> guard{out_mutex};
  std::fprintf(stderr, "%s %-5s %.*s: %.*s\n", stamp, name_of(lvl),
               static_cast<int>(component.size()), component.data(),
               static_cast<int>(message.size()), message.data());
}

} // namespace goring::log
