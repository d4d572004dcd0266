#include "webhooks/event.hpp"

#include <cstdlib>
#include <map>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace goring::webhooks {

namespace {

using writer = rapidjson::Writer<rapidjson::StringBuffer>;

/// A whole decimal integer, or nothing.
std::optional<long long> integer(const std::string& text) {
  if (text.empty() || text.size() > 19)
    return std::nullopt;
  char* end = nullptr;
  errno = 0;
  auto value = std::strtoll(text.c_str(), &end, 10);
  if (errno != 0 || end == nullptr || *end != '\0')
    return std::nullopt;
  return value;
}

void put(writer& w, const char* key, const std::string& value) {
  w.Key(key);
  w.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
}

/// A JSON object field as it was stored (the user info of a token); left
/// out when it is no object.
void put_object(writer& w, const char* key, const std::string& json) {
  rapidjson::Document doc;
  doc.Parse(json.data(), json.size());
  if (doc.HasParseError() || !doc.IsObject())
    return;
  w.Key(key);
  doc.Accept(w);
}

} // namespace

long long entry_time_ms(const std::string& entry_id) {
  auto value = integer(entry_id.substr(0, entry_id.find('-')));
  return value ? *value : 0;
}

bool stream_order::operator()(const std::string& a, const std::string& b) const {
  auto seq = [](const std::string& id) {
    auto dash = id.find('-');
    return dash == std::string::npos ? 0 : integer(id.substr(dash + 1)).value_or(0);
  };
  auto ma = entry_time_ms(a);
  auto mb = entry_time_ms(b);
  if (ma != mb)
    return ma < mb;
  auto sa = seq(a);
  auto sb = seq(b);
  return sa != sb ? sa < sb : a < b;
}

stream_entry read_entry(const redis::reply& entry) {
  stream_entry out;
  if (entry.type != redis::reply::kind::array || entry.elements.size() != 2
      || entry.elements[0].type != redis::reply::kind::string) {
    out.problem = "not a stream entry";
    return out;
  }
  out.entry_id = entry.elements[0].str;
  auto& pairs = entry.elements[1];
  if (pairs.type != redis::reply::kind::array || pairs.elements.size() % 2 != 0
      || pairs.elements.empty()) {
    out.problem = "the entry has no fields (deleted meanwhile)";
    return out;
  }
  std::map<std::string, std::string> fields;
  for (std::size_t i = 0; i + 1 < pairs.elements.size(); i += 2)
    fields[pairs.elements[i].str] = pairs.elements[i + 1].str;
  auto field = [&](const char* name) -> const std::string& {
    static const std::string none;
    auto it = fields.find(name);
    return it == fields.end() ? none : it->second;
  };
  auto& type = field("type");
  auto& session_id = field("session_id");
  auto created_at = integer(field("created_at"));
  if (type.empty() || session_id.empty() || !created_at) {
    out.problem = "the entry lacks type, session_id or created_at";
    return out;
  }
  event ev;
  ev.entry_id = out.entry_id;
  ev.type = type;
  ev.session_id = session_id;
  ev.id = session_id + ":" + type;
  ev.created_at = *created_at;
  rapidjson::StringBuffer buf;
  writer w{buf};
  w.StartObject();
  put(w, "id", ev.id);
  put(w, "type", type);
  w.Key("created_at");
  w.Int64(*created_at);
  put(w, "session_id", session_id);
  put(w, "caller_id", field("caller_id"));
  put(w, "callee_id", field("callee_id"));
  if (fields.count("caller_info") != 0)
    put_object(w, "caller_info", field("caller_info"));
  if (fields.count("callee_info") != 0)
    put_object(w, "callee_info", field("callee_info"));
  if (auto expires = integer(field("ring_expires_at"))) {
    w.Key("ring_expires_at");
    w.Int64(*expires);
  }
  if (fields.count("reason") != 0)
    put(w, "reason", field("reason"));
  if (fields.count("duration_ms") != 0) {
    w.Key("duration_ms");
    w.Int64(integer(field("duration_ms")).value_or(0));
  }
  w.EndObject();
  ev.body.assign(buf.GetString(), buf.GetSize());
  out.value = std::move(ev);
  return out;
}

std::vector<stream_entry> read_group_reply(const redis::reply& r) {
  std::vector<stream_entry> out;
  if (r.type != redis::reply::kind::array)
    return out;
  for (auto& stream : r.elements) {
    if (stream.type != redis::reply::kind::array || stream.elements.size() != 2)
      continue;
    for (auto& entry : stream.elements[1].elements)
      out.push_back(read_entry(entry));
  }
  return out;
}

std::vector<stream_entry> read_autoclaim_reply(const redis::reply& r, std::string& cursor) {
  std::vector<stream_entry> out;
  if (r.type != redis::reply::kind::array || r.elements.size() < 2) {
    cursor = "0-0";
    return out;
  }
  cursor = r.elements[0].str.empty() ? "0-0" : r.elements[0].str;
  for (auto& entry : r.elements[1].elements) {
    // Redis 6.2 lists a deleted entry as [id, nil]; read_entry says so.
    out.push_back(read_entry(entry));
  }
  return out;
}

} // namespace goring::webhooks
