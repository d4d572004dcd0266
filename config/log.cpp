#include "config/log.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

namespace goring::log {

namespace {

std::atomic<int> min_level{static_cast<int>(level::info)};
std::atomic<bool> json{true};
std::mutex out_mutex;
std::string server_id; // set once at start-up, before any thread logs

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

void append_field(std::string& out, std::string_view name, std::string_view value) {
  out += ",\"";
  out += name;
  out += "\":\"";
  append_escaped(out, value);
  out += '"';
}

/// The length of the UTF-8 sequence at the start of `text`, 0 when it is
/// not one (stray continuation byte, overlong form, surrogate, beyond
/// U+10FFFF, or cut short).
std::size_t utf8_sequence(std::string_view text) {
  auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
  auto lead = byte(0);
  std::size_t length = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 0;
  if (length == 0 || lead > 0xf4 || lead == 0xc0 || lead == 0xc1 || text.size() < length)
    return 0;
  for (std::size_t i = 1; i < length; ++i)
    if ((byte(i) & 0xc0) != 0x80)
      return 0;
  auto second = byte(1);
  if ((lead == 0xe0 && second < 0xa0) || (lead == 0xed && second > 0x9f)
      || (lead == 0xf0 && second < 0x90) || (lead == 0xf4 && second > 0x8f))
    return 0;
  return length;
}

} // namespace

void append_escaped(std::string& out, std::string_view text) {
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          out += buf;
        } else if (static_cast<unsigned char>(c) < 0x80) {
          out += c;
        } else if (auto length = utf8_sequence(text.substr(i)); length > 0) {
          out.append(text.substr(i, length));
          i += length - 1;
        } else {
          // Client bytes (an Origin header, say) that are not UTF-8 would
          // make the whole line invalid JSON for log pipelines.
          out += "\\ufffd";
        }
    }
  }
}

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

bool set_format(std::string_view name) {
  if (name != "json" && name != "text")
    return false;
  json = name == "json";
  return true;
}

void set_server_id(std::string id) {
  server_id = std::move(id);
}

void write(level lvl, std::string_view component, std::string_view message, fields extra) {
  using namespace std::chrono;
  auto now = system_clock::now();
  auto secs = system_clock::to_time_t(now);
  auto ms = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char stamp[64];
  std::snprintf(stamp, sizeof(stamp), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  std::string line;
  line.reserve(128 + message.size());
  if (json) {
    line += "{\"ts\":\"";
    line += stamp;
    line += "\",\"level\":\"";
    line += name_of(lvl);
    line += '"';
    append_field(line, "server_id", server_id);
    append_field(line, "component", component);
    append_field(line, "msg", message);
    for (auto& [name, value] : extra)
      append_field(line, name, value);
    line += "}\n";
  } else {
    line += stamp;
    line += ' ';
    line += name_of(lvl);
    line += ' ';
    line += component;
    line += ": ";
    line += message;
    for (auto& [name, value] : extra) {
      line += ' ';
      line += name;
      line += '=';
      line += value;
    }
    line += '\n';
  }
  std::lock_guard<std::mutex> guard{out_mutex};
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fflush(stdout);
}

} // namespace goring::log
