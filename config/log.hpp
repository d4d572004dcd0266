/// A small leveled logger: one JSON line per event on stdout (or plain text
/// with LOG_FORMAT=text), safe from any thread.
#pragma once

#include <initializer_list>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>

namespace goring::log {

enum class level : int { debug = 0, info = 1, warn = 2, error = 3, off = 4 };

/// Sets the lowest level that is written; false if `name` is not a level.
/// Changeable at runtime (PUT /admin/log-level).
bool set_level(std::string_view name);
level current_level();

/// "json" (default) or "text"; false if `name` is neither.
bool set_format(std::string_view name);

/// Names this process in every line (`server_id`).
void set_server_id(std::string id);

/// Extra fields of one line, such as {"user_id", id}.
using fields = std::initializer_list<std::pair<std::string_view, std::string_view>>;

/// Appends `text` as the inside of a JSON string: quotes, backslashes and
/// control characters escaped, each byte that is not part of valid UTF-8
/// replaced by \ufffd, so every line stays valid JSON whatever a client sent.
void append_escaped(std::string& out, std::string_view text);

/// Writes one line: ts, level, server_id, component, msg, then `extra`.
void write(level lvl, std::string_view component, std::string_view message, fields extra = {});

inline bool enabled(level lvl) {
  return static_cast<int>(lvl) >= static_cast<int>(current_level());
}

} // namespace goring::log

/// GORING_LOG(info, "bridge", "connected to " << addr);
#define GORING_LOG(lvl, component, stream_expr) GORING_LOG_WITH(lvl, component, {}, stream_expr)

/// GORING_LOG_WITH(info, "call_actor", ({{"session_id", sid}}), "ended");
#define GORING_LOG_WITH(lvl, component, extra, stream_expr)                                        \
  do {                                                                                             \
    if (::goring::log::enabled(::goring::log::level::lvl)) {                                       \
      std::ostringstream goring_log_os_;                                                           \
      goring_log_os_ << stream_expr;                                                               \
      ::goring::log::write(::goring::log::level::lvl, component, goring_log_os_.str(),             \
                           ::goring::log::fields extra);                                           \
    }                                                                                              \
  } while (false)
