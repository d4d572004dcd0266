/// Fuzz target for the wire codec: client frames (parsing and validation),
/// server frames read back from pub/sub, and user info, plus round trips
/// through the encoders.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include <rapidjson/document.h>

#include "codec/protocol.hpp"

namespace {

namespace protocol = goring::protocol;

/// A broken property aborts, which libFuzzer and the replay report as a crash.
void check(bool ok) {
  if (!ok)
    std::abort();
}

/// Frames the server sends to clients must be valid UTF-8 JSON objects.
void check_client_safe(const std::string& frame) {
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag>(frame.data(),
                                                                                    frame.size());
  check(!doc.HasParseError() && doc.IsObject());
}

void check_client_frame(std::string_view text) {
  auto result = protocol::parse_client_frame(text);
  if (!result.message) {
    // Refused: the answer quotes client text, and must stay a valid frame.
    check(result.error != protocol::signal_error::none && !result.error_message.empty());
    check_client_safe(protocol::encode_error(result.error, result.error_message));
    return;
  }
  const auto& msg = *result.message;
  check(result.error == protocol::signal_error::none);
  if (msg.type == protocol::client_type::call_start)
    check(!msg.callee_id.empty() && msg.callee_id.size() <= 256);
  else
    check(!msg.session_id.empty() && msg.session_id.size() <= 256);
}

/// Splits `text` at each 0x1f byte (ASCII unit separator) into `count` parts.
std::vector<std::string> parts(std::string_view text, std::size_t count) {
  std::vector<std::string> out;
  while (out.size() + 1 < count) {
    auto cut = text.find('\x1f');
    if (cut == std::string_view::npos)
      break;
    out.emplace_back(text.substr(0, cut));
    text.remove_prefix(cut + 1);
  }
  out.emplace_back(text);
  out.resize(count);
  return out;
}

bool same(const protocol::user_info& a, const protocol::user_info& b) {
  return a.user_id == b.user_id && a.name == b.name && a.username == b.username;
}

/// What the encoders write for another instance, that instance reads back.
void check_round_trips(std::string_view text) {
  auto p = parts(text, 5);
  const auto& session = p[0];
  protocol::user_info info{p[1], p[2], p[3]};
  const auto& reason = p[4];

  auto json = protocol::to_json(info);
  auto back = protocol::user_info_from_json(json, "fallback");
  check(back.user_id == (info.user_id.empty() ? "fallback" : info.user_id));
  check(back.name == info.name && back.username == info.username);

  auto ring = protocol::parse_server_event(protocol::encode_ring(session, info));
  auto accepted = protocol::parse_server_event(protocol::encode_accepted(session, info));
  auto rejected = protocol::parse_server_event(protocol::encode_rejected(session, info));
  auto ended = protocol::parse_server_event(protocol::encode_ended(session, reason, info));
  if (session.empty()) {
    check(!ring && !accepted && !rejected && !ended);
    return;
  }
  check(ring && ring->type == protocol::event_type::ring && ring->session_id == session
        && ring->caller_id == info.user_id && same(ring->peer, info));
  check(accepted && accepted->type == protocol::event_type::accepted && same(accepted->peer, info));
  check(rejected && rejected->type == protocol::event_type::rejected && same(rejected->peer, info));
  check(ended && ended->type == protocol::event_type::ended && ended->reason == reason
        && same(ended->peer, info));
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text{reinterpret_cast<const char*>(data), size};
  check_client_frame(text);
  // Pub/sub bodies and stored user info come from other instances, but a
  // corrupt one must still only be refused.
  protocol::parse_server_event(text);
  protocol::user_info_from_json(text, "fallback");
  check_round_trips(text);
  return 0;
}
