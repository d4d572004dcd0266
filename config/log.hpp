/// A small leveled logger: one line per event on stderr, safe from any thread.
#pragma once

#include <sstream>
#include <string>
#include <string_view>

namespace goring::log {

enum class level : int { debug = 0, info = 1, warn = 2, error = 3, off = 4 };

/// Sets the lowest level that is written; false if `name` is not a level.
bool set_level(std::string_view name);
level current_level();

/// Writes one line: time, level, component, message.
void write(level lvl, std::string_view component, std::string_view message);

inline bool enabled(level lvl) {
  return static_cast<int>(lvl) >= static_cast<int>(current_level());
}

} // namespace goring::log

/// GORING_LOG(info, "bridge", "connected to " << addr);
#define GORING_LOG(lvl, component, stream_expr)                                                    \
  do {                                                                                             \
    if (::goring::log::enabled(::goring::log::level::lvl)) {                                       \
      std::ostringstream goring_log_os_;                                                           \
      goring_log_os_ << stream_expr;                                                               \
      ::goring::log::write(::goring::log::level::lvl, component, goring_log_os_.str());            \
    }                                                                                              \
  } while (false)
