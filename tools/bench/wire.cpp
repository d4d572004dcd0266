#include "tools/bench/wire.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace goring::bench::wire {

namespace {

using json_writer = rapidjson::Writer<rapidjson::StringBuffer>;

void put(json_writer& w, const char* key, std::string_view value) {
  w.Key(key);
  w.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
}

/// `{"type":type,"payload":{key:value}}`
std::string frame_with(const char* type, const char* key, std::string_view value) {
  rapidjson::StringBuffer out;
  json_writer w{out};
  w.StartObject();
  put(w, "type", type);
  w.Key("payload");
  w.StartObject();
  put(w, key, value);
  w.EndObject();
  w.EndObject();
  return {out.GetString(), out.GetSize()};
}

constexpr std::string_view ice_prefix = R"({"type":"webrtc.ice")";

} // namespace

std::string call_start(std::string_view callee_id) {
  return frame_with("call.start", "callee_id", callee_id);
}

std::string call_accept(std::string_view session_id) {
  return frame_with("call.accept", "session_id", session_id);
}

std::string call_end(std::string_view session_id) {
  return frame_with("call.end", "session_id", session_id);
}

std::string ice(std::string_view session_id) {
  rapidjson::StringBuffer out;
  json_writer w{out};
  w.StartObject();
  put(w, "type", "webrtc.ice");
  w.Key("payload");
  w.StartObject();
  put(w, "session_id", session_id);
  put(w, "candidate",
      "candidate:842163049 1 udp 1677729535 203.0.113.77 54321 typ srflx raddr 192.168.1.20 "
      "rport 54321 generation 0 ufrag Xk2f network-id 1 network-cost 10");
  put(w, "sdpMid", "0");
  w.Key("sdpMLineIndex");
  w.Int(0);
  w.EndObject();
  w.EndObject();
  return {out.GetString(), out.GetSize()};
}

server_frame parse(std::string_view text) {
  server_frame out;
  rapidjson::Document doc;
  doc.Parse(text.data(), text.size());
  if (doc.HasParseError() || !doc.IsObject())
    return out;
  auto type = doc.FindMember("type");
  if (type == doc.MemberEnd() || !type->value.IsString())
    return out;
  out.type.assign(type->value.GetString(), type->value.GetStringLength());
  auto payload = doc.FindMember("payload");
  if (payload == doc.MemberEnd() || !payload->value.IsObject())
    return out;
  auto string_member = [&](const char* key, std::string& into) {
    auto it = payload->value.FindMember(key);
    if (it != payload->value.MemberEnd() && it->value.IsString())
      into.assign(it->value.GetString(), it->value.GetStringLength());
  };
  string_member("session_id", out.session_id);
  string_member("code", out.code);
  return out;
}

bool is_ice(std::string_view text) {
  if (text.substr(0, ice_prefix.size()) == ice_prefix)
    return true;
  return parse(text).type == "webrtc.ice";
}

} // namespace goring::bench::wire
