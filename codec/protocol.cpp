#include "codec/protocol.hpp"

#include <array>
#include <cstddef>
#include <cstring>
#include <new>

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace goring::protocol {

namespace {

using writer = rapidjson::Writer<rapidjson::StringBuffer>;

/// The default parser recurses once per nesting level, so a frame of '['
/// could overflow the stack; the iterative one keeps its stack in memory of
/// its own (scratch_document).
constexpr unsigned parse_flags = rapidjson::kParseIterativeFlag;
/// Client text is also checked to be UTF-8: relays reach the peer unchanged.
constexpr unsigned client_parse_flags = parse_flags | rapidjson::kParseValidateEncodingFlag;

/// A Document whose values and parse stacks live in buffers inside it, on
/// the caller's stack. rapidjson::Document takes a 64 KiB chunk from the heap
/// for every parse, plus two parse stacks: three malloc/free pairs per
/// relayed frame. Frames are small (an ICE candidate's is ~300 bytes; SDP
/// offers a few KiB), so a parse allocates nothing; a bigger one spills into
/// heap chunks. Not reused across parses, so nothing to reset or to share
/// between threads.
class scratch_document {
public:
  using pool = rapidjson::MemoryPoolAllocator<>;
  using document = rapidjson::GenericDocument<rapidjson::UTF8<>, pool, pool>;

  scratch_document() = default;
  scratch_document(const scratch_document&) = delete;
  scratch_document& operator=(const scratch_document&) = delete;

  document& doc() {
    return doc_;
  }

  /// `text` copied into the value pool with a NUL after it, for ParseInsitu.
  /// The 16 bytes of padding would keep RapidJSON's 16-byte SIMD reads
  /// inside the copy; those stay off (see CMakeLists.txt).
  char* copy_of(std::string_view text) {
    auto* copy = static_cast<char*>(values_.Malloc(text.size() + 1 + 16));
    if (copy == nullptr) // a spill chunk the heap could not give
      throw std::bad_alloc{};
    if (!text.empty()) // an empty view may have no data() at all
      std::memcpy(copy, text.data(), text.size());
    copy[text.size()] = '\0';
    return copy;
  }

private:
  /// Values: copies of the strings (about the frame's size) and member arrays.
  static constexpr std::size_t value_bytes = 16 * 1024;
  /// The document's value stack (starts at 1 KiB) and the reader's state
  /// stack (256 bytes), each grown by half when full.
  static constexpr std::size_t stack_bytes = 4 * 1024;
  /// What a pool takes from the heap once its buffer is full.
  static constexpr std::size_t spill_chunk_bytes = 16 * 1024;
  static constexpr std::size_t stack_capacity = 1024;

  alignas(std::max_align_t) char value_buffer_[value_bytes];
  alignas(std::max_align_t) char stack_buffer_[stack_bytes];
  pool values_{value_buffer_, value_bytes, spill_chunk_bytes};
  pool stacks_{stack_buffer_, stack_bytes, spill_chunk_bytes};
  document doc_{&values_, stack_capacity, &stacks_};
};

struct type_entry {
  std::string_view name;
  client_type type;
};

constexpr std::array<type_entry, client_type_count> client_types = {{
  {"call.start", client_type::call_start},
  {"call.accept", client_type::call_accept},
  {"call.reject", client_type::call_reject},
  {"call.end", client_type::call_end},
  {"webrtc.offer", client_type::webrtc_offer},
  {"webrtc.answer", client_type::webrtc_answer},
  {"webrtc.ice", client_type::webrtc_ice},
  {"auth.refresh", client_type::auth_refresh},
}};

/// Longer than any real JWT; MAX_MESSAGE_BYTES bounds the frame anyway.
constexpr std::size_t max_token_length = 16 * 1024;

frame_parse fail(std::string message) {
  frame_parse r;
  r.error = signal_error::invalid_message;
  r.error_message = std::move(message);
  return r;
}

/// Quotes client text in an error message, cut short.
/// The length of the valid UTF-8 sequence (RFC 3629: no overlongs, no
/// surrogates, nothing above U+10FFFF) at the start of `text`, 0 if none.
/// JSON escapes such as "\ud800" decode to surrogate bytes RapidJSON keeps;
/// a browser's WebSocket fails the connection on such a text frame.
std::size_t utf8_sequence(std::string_view text) {
  auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
  auto c0 = byte(0);
  if (c0 < 0x80)
    return 1;
  std::size_t n = 0;
  unsigned char lo = 0x80, hi = 0xBF;
  if (c0 >= 0xC2 && c0 <= 0xDF) {
    n = 2;
  } else if (c0 >= 0xE0 && c0 <= 0xEF) {
    n = 3;
    lo = c0 == 0xE0 ? 0xA0 : 0x80;
    hi = c0 == 0xED ? 0x9F : 0xBF;
  } else if (c0 >= 0xF0 && c0 <= 0xF4) {
    n = 4;
    lo = c0 == 0xF0 ? 0x90 : 0x80;
    hi = c0 == 0xF4 ? 0x8F : 0xBF;
  } else {
    return 0;
  }
  if (text.size() < n || byte(1) < lo || byte(1) > hi)
    return 0;
  for (std::size_t i = 2; i < n; ++i)
    if (byte(i) < 0x80 || byte(i) > 0xBF)
      return 0;
  return n;
}

bool valid_utf8(std::string_view text) {
  while (!text.empty()) {
    auto n = utf8_sequence(text);
    if (n == 0)
      return false;
    text.remove_prefix(n);
  }
  return true;
}

/// `text` for an error message: at most 64 bytes of it, whole characters
/// only, each invalid UTF-8 byte shown as U+FFFD.
std::string quoted(std::string_view text) {
  constexpr std::size_t max = 64;
  std::string out = "'";
  std::size_t taken = 0;
  while (!text.empty() && taken < max) {
    auto n = utf8_sequence(text);
    if (n == 0) {
      out.append("\xEF\xBF\xBD");
      n = 1;
    } else {
      out.append(text.substr(0, n));
    }
    text.remove_prefix(n);
    taken += n;
  }
  if (!text.empty())
    out.append("...");
  out.push_back('\'');
  return out;
}

/// Checks a required non-empty string field; returns an error text or "".
std::string required_string(const rapidjson::Value& payload, const char* name, std::string* out,
                            std::size_t max_length) {
  auto it = payload.FindMember(name);
  if (it == payload.MemberEnd())
    return std::string{"field '"} + name + "' is missing";
  if (!it->value.IsString())
    return std::string{"field '"} + name + "' must be a string";
  if (it->value.GetStringLength() == 0)
    return std::string{"field '"} + name + "' must not be empty";
  if (it->value.GetStringLength() > max_length)
    return std::string{"field '"} + name + "' is too long";
  if (!valid_utf8({it->value.GetString(), it->value.GetStringLength()}))
    return std::string{"field '"} + name + "' is not valid Unicode (a lone surrogate escape?)";
  if (out != nullptr)
    out->assign(it->value.GetString(), it->value.GetStringLength());
  return {};
}

/// required_string for a relayed field whose size the server bounds, naming
/// the setting in the message.
std::string bounded_string(const rapidjson::Value& payload, const char* name,
                           std::size_t max_length, const char* setting) {
  auto problem = required_string(payload, name, nullptr, static_cast<std::size_t>(-1));
  if (!problem.empty())
    return problem;
  auto length = payload.FindMember(name)->value.GetStringLength();
  if (length > max_length)
    return std::string{"field '"} + name + "' is " + std::to_string(length)
           + " bytes, more than the " + std::to_string(max_length) + " this server accepts ("
           + setting + ")";
  return {};
}

void put(writer& w, const char* key, std::string_view value) {
  w.Key(key);
  w.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
}

void put_info(writer& w, const char* key, const user_info& info) {
  w.Key(key);
  w.StartObject();
  put(w, "user_id", info.user_id);
  if (!info.name.empty())
    put(w, "name", info.name);
  if (!info.username.empty())
    put(w, "username", info.username);
  w.EndObject();
}

/// Writes `{"type":type,"payload":{...}}` with `body` filling the payload.
template <class Body>
std::string frame(const char* type, Body body) {
  rapidjson::StringBuffer buf;
  writer w{buf};
  w.StartObject();
  w.Key("type");
  w.String(type);
  w.Key("payload");
  w.StartObject();
  body(w);
  w.EndObject();
  w.EndObject();
  return std::string{buf.GetString(), buf.GetSize()};
}

std::string string_member(const rapidjson::Value& obj, const char* name) {
  auto it = obj.FindMember(name);
  if (it == obj.MemberEnd() || !it->value.IsString())
    return {};
  return std::string{it->value.GetString(), it->value.GetStringLength()};
}

user_info info_from(const rapidjson::Value& obj) {
  user_info info;
  if (!obj.IsObject())
    return info;
  info.user_id = string_member(obj, "user_id");
  info.name = string_member(obj, "name");
  info.username = string_member(obj, "username");
  return info;
}

/// The first key that an object holds twice, or "". Relays go to the peer
/// as sent, and a browser's JSON.parse keeps the last of two equal keys while
/// the checks here read the first: a second "type" would let a participant
/// forge server frames. Objects here are small, so pairwise is fine.
std::string_view duplicate_key(const rapidjson::Value& obj) {
  for (auto a = obj.MemberBegin(); a != obj.MemberEnd(); ++a) {
    std::string_view name{a->name.GetString(), a->name.GetStringLength()};
    for (auto b = a + 1; b != obj.MemberEnd(); ++b)
      if (name == std::string_view{b->name.GetString(), b->name.GetStringLength()})
        return name;
  }
  return {};
}

} // namespace

std::string_view wire_code(signal_error code) {
  switch (code) {
    case signal_error::none:
      return "none";
    case signal_error::invalid_message:
      return "invalid_message";
    case signal_error::unauthorized:
      return "unauthorized";
    case signal_error::user_busy:
      return "user_busy";
    case signal_error::user_offline:
      return "user_offline";
    case signal_error::session_not_found:
      return "session_not_found";
    case signal_error::invalid_state:
      return "invalid_state";
    case signal_error::internal_error:
      return "internal_error";
    case signal_error::rate_limited:
      return "rate_limited";
  }
  return "internal_error";
}

std::string_view type_name(client_type type) {
  for (auto& entry : client_types)
    if (entry.type == type)
      return entry.name;
  return "unknown";
}

frame_parse parse_client_frame(std::string_view text, const frame_limits& limits) {
  // RapidJSON stops at a NUL byte as if the text ended there, and JSON never
  // has a raw one: refuse it, or what follows would ride along in a relay.
  if (text.find('\0') != std::string_view::npos)
    return fail("message is not valid JSON: it contains a NUL byte");
  // Frames are nearly always ASCII (SDP and ICE candidates are), and ASCII is
  // valid UTF-8: RapidJSON's byte-by-byte validation (about half of the
  // parse of a relayed frame, callgrind) runs only when a byte needs it.
  unsigned char high_bits = 0;
  for (char c : text)
    high_bits |= static_cast<unsigned char>(c);
  scratch_document scratch;
  auto& doc = scratch.doc();
  // Parsed in place from a copy: strings stay where they are rather than
  // being copied byte by byte onto the parser's stack and again into the
  // values. The text has no NUL (checked above), so the copy's terminator
  // is its end.
  auto* copy = scratch.copy_of(text);
  if (high_bits < 0x80)
    doc.ParseInsitu<parse_flags>(copy);
  else
    doc.ParseInsitu<client_parse_flags>(copy);
  if (doc.HasParseError())
    return fail(std::string{"message is not valid JSON: "}
                + rapidjson::GetParseError_En(doc.GetParseError()));
  if (!doc.IsObject())
    return fail("message must be a JSON object with 'type' and 'payload'");
  if (auto dup = duplicate_key(doc); !dup.empty())
    return fail("field " + quoted(dup) + " appears twice");
  auto type_it = doc.FindMember("type");
  if (type_it == doc.MemberEnd())
    return fail("field 'type' is missing");
  if (!type_it->value.IsString())
    return fail("field 'type' must be a string");
  std::string_view type_text{type_it->value.GetString(), type_it->value.GetStringLength()};
  const type_entry* entry = nullptr;
  for (auto& candidate : client_types)
    if (candidate.name == type_text)
      entry = &candidate;
  if (entry == nullptr)
    return fail("unknown message type " + quoted(type_text));
  auto payload_it = doc.FindMember("payload");
  if (payload_it == doc.MemberEnd())
    return fail("field 'payload' is missing");
  if (!payload_it->value.IsObject())
    return fail("field 'payload' must be an object");
  const auto& payload = payload_it->value;
  if (auto dup = duplicate_key(payload); !dup.empty())
    return fail(std::string{entry->name} + ": field " + quoted(dup) + " appears twice");

  client_message msg{entry->type, {}, {}, {}};
  std::string problem;
  if (msg.type == client_type::call_start) {
    problem = required_string(payload, "callee_id", &msg.callee_id, max_id_length);
  } else if (msg.type == client_type::auth_refresh) {
    problem = required_string(payload, "token", &msg.token, max_token_length);
  } else {
    problem = required_string(payload, "session_id", &msg.session_id, max_id_length);
  }
  if (problem.empty()) {
    // SDP and candidates are relayed as they are, within their own limits
    // (the whole frame is bounded by MAX_MESSAGE_BYTES already).
    switch (msg.type) {
      case client_type::webrtc_offer:
      case client_type::webrtc_answer:
        problem = bounded_string(payload, "sdp", limits.max_sdp_bytes, "MAX_SDP_BYTES");
        break;
      case client_type::webrtc_ice: {
        problem =
          bounded_string(payload, "candidate", limits.max_candidate_bytes, "MAX_CANDIDATE_BYTES");
        auto mid = payload.FindMember("sdpMid");
        if (problem.empty() && mid != payload.MemberEnd() && !mid->value.IsString()
            && !mid->value.IsNull())
          problem = "field 'sdpMid' must be a string or null";
        auto index = payload.FindMember("sdpMLineIndex");
        if (problem.empty() && index != payload.MemberEnd() && !index->value.IsUint()
            && !index->value.IsNull())
          problem = "field 'sdpMLineIndex' must be a non-negative integer or null";
        break;
      }
      default:
        break;
    }
  }
  if (!problem.empty())
    return fail(std::string{entry->name} + ": " + problem);
  frame_parse r;
  r.message = std::move(msg);
  return r;
}

std::string to_json(const user_info& info) {
  rapidjson::StringBuffer buf;
  writer w{buf};
  w.StartObject();
  put(w, "user_id", info.user_id);
  if (!info.name.empty())
    put(w, "name", info.name);
  if (!info.username.empty())
    put(w, "username", info.username);
  w.EndObject();
  return std::string{buf.GetString(), buf.GetSize()};
}

user_info user_info_from_json(std::string_view json, std::string_view fallback_id) {
  scratch_document scratch;
  auto& doc = scratch.doc();
  doc.Parse<parse_flags>(json.data(), json.size());
  user_info info;
  if (!doc.HasParseError())
    info = info_from(doc);
  if (info.user_id.empty())
    info.user_id = std::string{fallback_id};
  return info;
}

std::string encode_ringing(std::string_view session_id, std::string_view callee_id,
                           bool callee_offline) {
  return frame("call.ringing", [&](writer& w) {
    put(w, "session_id", session_id);
    put(w, "callee_id", callee_id);
    if (callee_offline) {
      w.Key("callee_offline");
      w.Bool(true);
    }
  });
}

std::string encode_ring(std::string_view session_id, const user_info& caller) {
  return frame("call.ring", [&](writer& w) {
    put(w, "session_id", session_id);
    put(w, "caller_id", caller.user_id);
    put_info(w, "caller_info", caller);
  });
}

std::string encode_accepted(std::string_view session_id, const user_info& callee) {
  return frame("call.accepted", [&](writer& w) {
    put(w, "session_id", session_id);
    put_info(w, "callee_info", callee);
  });
}

std::string encode_rejected(std::string_view session_id, const user_info& callee) {
  return frame("call.rejected", [&](writer& w) {
    put(w, "session_id", session_id);
    put_info(w, "callee_info", callee);
  });
}

std::string encode_ended(std::string_view session_id, std::string_view reason,
                         const user_info& peer) {
  return frame("call.ended", [&](writer& w) {
    put(w, "session_id", session_id);
    put(w, "reason", reason);
    put_info(w, "peer_info", peer);
  });
}

std::string encode_error(signal_error code, std::string_view message) {
  return frame("error", [&](writer& w) {
    put(w, "code", wire_code(code));
    put(w, "message", message);
  });
}

std::string encode_resumed(std::string_view session_id, std::string_view peer_id,
                           std::string_view state, std::string_view role) {
  return frame("call.resumed", [&](writer& w) {
    put(w, "session_id", session_id);
    put(w, "peer_id", peer_id);
    put(w, "state", state);
    put(w, "role", role);
  });
}

std::string encode_refreshed(std::optional<long long> expires_at) {
  return frame("auth.refreshed", [&](writer& w) {
    w.Key("expires_at");
    if (expires_at)
      w.Int64(*expires_at);
    else
      w.Null();
  });
}

std::optional<server_event> parse_server_event(std::string_view text) {
  scratch_document scratch;
  auto& doc = scratch.doc();
  doc.Parse<parse_flags>(text.data(), text.size());
  if (doc.HasParseError() || !doc.IsObject())
    return std::nullopt;
  auto type = string_member(doc, "type");
  auto payload_it = doc.FindMember("payload");
  if (payload_it == doc.MemberEnd() || !payload_it->value.IsObject())
    return std::nullopt;
  const auto& payload = payload_it->value;
  server_event ev{event_type::ring, string_member(payload, "session_id"), {}, {}, {}};
  auto info_of = [&](const char* name) {
    auto it = payload.FindMember(name);
    return it == payload.MemberEnd() ? user_info{} : info_from(it->value);
  };
  if (type == "call.ring") {
    ev.type = event_type::ring;
    ev.caller_id = string_member(payload, "caller_id");
    ev.peer = info_of("caller_info");
  } else if (type == "call.accepted") {
    ev.type = event_type::accepted;
    ev.peer = info_of("callee_info");
  } else if (type == "call.rejected") {
    ev.type = event_type::rejected;
    ev.peer = info_of("callee_info");
  } else if (type == "call.ended") {
    ev.type = event_type::ended;
    ev.reason = string_member(payload, "reason");
    ev.peer = info_of("peer_info");
  } else {
    return std::nullopt;
  }
  if (ev.session_id.empty())
    return std::nullopt;
  return ev;
}

std::string tagged(char tag, std::string_view body) {
  std::string out;
  out.reserve(body.size() + 1);
  out.push_back(tag);
  out.append(body);
  return out;
}

} // namespace goring::protocol
