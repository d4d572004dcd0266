#include "tools/goringctl/table.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>

#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace goringctl {

namespace {

bool ends_with(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

/// Width on a terminal: UTF-8 continuation bytes take no column.
std::size_t display_width(const std::string& text) {
  return static_cast<std::size_t>(
    std::count_if(text.begin(), text.end(), [](char c) { return (c & 0xC0) != 0x80; }));
}

std::string compact_json(const rapidjson::Value& value) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  value.Accept(writer);
  return {buffer.GetString(), buffer.GetSize()};
}

/// The number in `value` (a JSON number, or a string of digits as Redis
/// hashes hold them), when it has one.
bool number_of(const rapidjson::Value& value, double& out) {
  if (value.IsNumber()) {
    out = value.GetDouble();
    return true;
  }
  if (!value.IsString() || value.GetStringLength() == 0)
    return false;
  std::string text{value.GetString(), value.GetStringLength()};
  if (text.find_first_not_of("0123456789.") != std::string::npos)
    return false;
  out = std::strtod(text.c_str(), nullptr);
  return true;
}

std::string plain_text(const rapidjson::Value& value) {
  if (value.IsString())
    return {value.GetString(), value.GetStringLength()};
  if (value.IsBool())
    return value.GetBool() ? "yes" : "no";
  if (value.IsInt64())
    return std::to_string(value.GetInt64());
  if (value.IsUint64())
    return std::to_string(value.GetUint64());
  if (value.IsArray()) {
    std::string joined;
    for (const auto& item : value.GetArray()) {
      if (!joined.empty())
        joined += ",";
      joined += plain_text(item);
    }
    return joined;
  }
  return compact_json(value);
}

} // namespace

std::string format_duration(double seconds) {
  auto total = static_cast<int64_t>(std::llround(std::max(seconds, 0.0)));
  char text[32];
  if (total < 60)
    std::snprintf(text, sizeof text, "%llds", static_cast<long long>(total));
  else if (total < 3600)
    std::snprintf(text, sizeof text, "%lldm%02llds", static_cast<long long>(total / 60),
                  static_cast<long long>(total % 60));
  else if (total < 86400)
    std::snprintf(text, sizeof text, "%lldh%02lldm", static_cast<long long>(total / 3600),
                  static_cast<long long>(total % 3600 / 60));
  else
    std::snprintf(text, sizeof text, "%lldd%02lldh", static_cast<long long>(total / 86400),
                  static_cast<long long>(total % 86400 / 3600));
  return text;
}

std::string format_time(int64_t unix_time) {
  // Anything past the year 5138 in seconds is taken as milliseconds.
  if (unix_time > 100'000'000'000)
    unix_time /= 1000;
  auto t = static_cast<std::time_t>(unix_time);
  std::tm utc{};
  gmtime_r(&t, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

std::string cell_text(std::string_view key, const rapidjson::Value* value) {
  if (value == nullptr || value->IsNull() || (value->IsString() && value->GetStringLength() == 0))
    return "-";
  double number = 0;
  if (ends_with(key, "_seconds") && number_of(*value, number))
    return format_duration(number);
  if (ends_with(key, "_at") && number_of(*value, number))
    return format_time(static_cast<int64_t>(number));
  if (value->IsDouble()) {
    char text[32];
    std::snprintf(text, sizeof text, "%g", value->GetDouble());
    return text;
  }
  return plain_text(*value);
}

void print_rows(std::ostream& out, const std::vector<std::string>& headers,
                const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> widths;
  for (const auto& header : headers)
    widths.push_back(display_width(header));
  for (const auto& row : rows)
    for (std::size_t i = 0; i < row.size() && i < widths.size(); ++i)
      widths[i] = std::max(widths[i], display_width(row[i]));
  auto print_line = [&](const std::vector<std::string>& cells) {
    std::string line;
    for (std::size_t i = 0; i < cells.size() && i < widths.size(); ++i) {
      line += cells[i];
      if (i + 1 < cells.size())
        line.append(widths[i] - display_width(cells[i]) + 2, ' ');
    }
    line.erase(line.find_last_not_of(' ') + 1);
    out << line << '\n';
  };
  print_line(headers);
  for (const auto& row : rows)
    print_line(row);
}

void print_table(std::ostream& out, const std::vector<column>& columns,
                 const rapidjson::Value& rows) {
  std::vector<std::string> headers;
  for (const auto& col : columns)
    headers.push_back(col.header);
  std::vector<std::vector<std::string>> cells;
  if (rows.IsArray()) {
    for (const auto& row : rows.GetArray()) {
      std::vector<std::string> line;
      for (const auto& col : columns) {
        const rapidjson::Value* value = nullptr;
        std::string_view key = col.keys.empty() ? std::string_view{} : col.keys.front();
        for (const auto& candidate : col.keys) {
          if (row.IsObject() && row.HasMember(candidate.c_str())) {
            value = &row[candidate.c_str()];
            key = candidate;
            break;
          }
        }
        line.push_back(cell_text(key, value));
      }
      cells.push_back(std::move(line));
    }
  }
  print_rows(out, headers, cells);
}

void print_fields(std::ostream& out, const rapidjson::Value& object) {
  if (!object.IsObject())
    return;
  std::vector<std::vector<std::string>> lines;
  for (const auto& member : object.GetObject()) {
    std::string name{member.name.GetString(), member.name.GetStringLength()};
    lines.push_back({name, cell_text(name, &member.value)});
  }
  std::size_t width = 0;
  for (const auto& line : lines)
    width = std::max(width, display_width(line[0]));
  for (const auto& line : lines)
    out << line[0] << std::string(width - display_width(line[0]) + 2, ' ') << line[1] << '\n';
}

void print_json(std::ostream& out, const rapidjson::Value& value) {
  rapidjson::StringBuffer buffer;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> writer(buffer);
  writer.SetIndent(' ', 2);
  value.Accept(writer);
  out << buffer.GetString() << '\n';
}

} // namespace goringctl
