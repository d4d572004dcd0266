/// How goringctl shows answers: aligned tables and field lists for people,
/// indented JSON for scripts. Pure code, no I/O but the stream it is given.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include <rapidjson/document.h>

namespace goringctl {

/// One table column: its header and the row members it shows, the first
/// one a row has (e.g. {"user_id", "session_id"} for an actor's subject).
struct column {
  std::string header;
  std::vector<std::string> keys;
};

/// "45s", "12m05s", "3h02m", "2d04h".
std::string format_duration(double seconds);
/// "2024-05-01T12:00:00Z" from Unix seconds (or milliseconds, told apart
/// by size).
std::string format_time(int64_t unix_time);

/// One value as a person reads it: "-" when missing, null or ""; members
/// named `*_seconds` as durations and `*_at` as times; booleans as yes/no;
/// arrays joined with ","; objects as compact JSON.
std::string cell_text(std::string_view key, const rapidjson::Value* value);

/// Prints `rows` (strings already) under `headers`, columns padded to their
/// widest cell and two spaces apart, no trailing blanks.
void print_rows(std::ostream& out, const std::vector<std::string>& headers,
                const std::vector<std::vector<std::string>>& rows);

/// Prints an array of objects as a table of `columns`.
void print_table(std::ostream& out, const std::vector<column>& columns,
                 const rapidjson::Value& rows);

/// Prints an object's members as aligned "name  value" lines, in order.
void print_fields(std::ostream& out, const rapidjson::Value& object);

/// Prints `value` as indented JSON and a newline.
void print_json(std::ostream& out, const rapidjson::Value& value);

} // namespace goringctl
