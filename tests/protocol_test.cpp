/// The wire codec without sockets: every client frame, valid and malformed,
/// and every server frame the encoders write, read back with RapidJSON.
#include <doctest/doctest.h>

#include <cstddef>
#include <functional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

#include <rapidjson/document.h>

#include "codec/protocol.hpp"

namespace {

using namespace std::string_literals;
using goring::protocol::client_type;
using goring::protocol::event_type;
using goring::protocol::frame_parse;
using goring::protocol::parse_client_frame;
using goring::protocol::parse_server_event;
using goring::protocol::signal_error;
using goring::protocol::user_info;

/// `{"type":type,"payload":payload}`, with `payload` given as JSON text.
std::string frame(std::string_view type, std::string_view payload) {
  return R"({"type":")" + std::string{type} + R"(","payload":)" + std::string{payload} + "}";
}

/// A JSON string literal for ASCII text without quotes or backslashes.
std::string quoted(std::string_view text) {
  return "\"" + std::string{text} + "\"";
}

/// Checks that `text` is refused as invalid_message with a message that
/// mentions `words` (usually the field's name).
void check_refused(std::string_view text, std::string_view words) {
  auto r = parse_client_frame(text);
  CAPTURE(text);
  CAPTURE(r.error_message);
  CHECK_FALSE(r.message.has_value());
  CHECK(r.error == signal_error::invalid_message);
  CHECK_FALSE(r.error_message.empty());
  CHECK(r.error_message.find(words) != std::string::npos);
}

/// The accepted message, or a failed check that shows why it was refused.
goring::protocol::client_message accepted(std::string_view text) {
  auto r = parse_client_frame(text);
  CAPTURE(text);
  CAPTURE(r.error_message);
  REQUIRE(r.message.has_value());
  CHECK(r.error == signal_error::none);
  CHECK(r.error_message.empty());
  return *r.message;
}

/// Every client type with its required fields and a valid value for each.
struct type_fields {
  std::string type;
  std::vector<std::pair<std::string, std::string>> required; // name, JSON value
};

const std::vector<type_fields>& every_client_type() {
  static const std::vector<type_fields> all = {
    {"call.start", {{"callee_id", R"("bob")"}}},
    {"call.accept", {{"session_id", R"("s-1")"}}},
    {"call.reject", {{"session_id", R"("s-1")"}}},
    {"call.end", {{"session_id", R"("s-1")"}}},
    {"webrtc.offer", {{"session_id", R"("s-1")"}, {"sdp", R"("v=0\r\n")"}}},
    {"webrtc.answer", {{"session_id", R"("s-1")"}, {"sdp", R"("v=0\r\n")"}}},
    {"webrtc.ice",
     {{"session_id", R"("s-1")"}, {"candidate", R"("candidate:1 1 udp 1 1.2.3.4 5 typ host")"}}},
  };
  return all;
}

/// The payload of `t` with field `name` given `value` (JSON text), or left
/// out when `value` is empty.
std::string payload_with(const type_fields& t, const std::string& name, const std::string& value) {
  std::string out = "{";
  for (auto& [field, valid] : t.required) {
    std::string v = field == name ? value : valid;
    if (v.empty())
      continue;
    if (out.size() > 1)
      out += ",";
    out += quoted(field) + ":" + v;
  }
  return out + "}";
}

std::string ice(std::string_view extra) {
  return frame("webrtc.ice", R"({"session_id":"s-1","candidate":"c")" + std::string{extra} + "}");
}

/// Runs `work` in a child process, on a thread with a 256 KiB stack, and
/// says whether it finished normally. A stack overflow kills only the child.
bool survives_on_small_stack(const std::function<void()>& work) {
  pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    pthread_t thread;
    auto run = [](void* arg) -> void* {
      (*static_cast<const std::function<void()>*>(arg))();
      return nullptr;
    };
    if (pthread_create(&thread, &attr, run, const_cast<std::function<void()>*>(&work)) != 0)
      ::_exit(2);
    pthread_join(thread, nullptr);
    ::_exit(0);
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/// The output of an encoder as a document, or a failed check.
rapidjson::Document parsed(const std::string& json) {
  rapidjson::Document doc;
  doc.Parse(json.data(), json.size());
  CAPTURE(json);
  REQUIRE_FALSE(doc.HasParseError());
  REQUIRE(doc.IsObject());
  return doc;
}

std::set<std::string> keys_of(const rapidjson::Value& obj) {
  std::set<std::string> out;
  for (auto it = obj.MemberBegin(); it != obj.MemberEnd(); ++it)
    out.emplace(it->name.GetString(), it->name.GetStringLength());
  return out;
}

std::string string_at(const rapidjson::Value& obj, const char* name) {
  auto it = obj.FindMember(name);
  REQUIRE(it != obj.MemberEnd());
  REQUIRE(it->value.IsString());
  return std::string{it->value.GetString(), it->value.GetStringLength()};
}

/// Checks the frame's envelope and returns its payload.
const rapidjson::Value& payload_of(const rapidjson::Document& doc, const char* type) {
  CHECK(keys_of(doc) == std::set<std::string>{"type", "payload"});
  CHECK(string_at(doc, "type") == type);
  const auto& payload = doc["payload"];
  REQUIRE(payload.IsObject());
  return payload;
}

const user_info alice{"alice", "Alice", "alice.handle"};

/// Text that needs every kind of escaping JSON has.
const std::string awkward = "say \"hi\" \\ back\n\ttab\x01\x1f end é 😀"s;

} // namespace

// --- client frames that are accepted ---------------------------------------

TEST_CASE("every client type is accepted with its required fields") {
  for (auto& t : every_client_type()) {
    CAPTURE(t.type);
    auto msg = accepted(frame(t.type, payload_with(t, "", "")));
    CHECK(goring::protocol::type_name(msg.type) == t.type);
    if (t.type == "call.start") {
      CHECK(msg.callee_id == "bob");
      CHECK(msg.session_id.empty());
    } else {
      CHECK(msg.session_id == "s-1");
      CHECK(msg.callee_id.empty());
    }
    CHECK(goring::protocol::is_relay(msg.type) == (t.type.rfind("webrtc.", 0) == 0));
  }
}

TEST_CASE("a caller starts a call and the frame names the callee") {
  auto msg = accepted(R"({"type":"call.start","payload":{"callee_id":"bob"}})");
  CHECK(msg.type == client_type::call_start);
  CHECK(msg.callee_id == "bob");
}

TEST_CASE("an ICE candidate may carry sdpMid and sdpMLineIndex, or null for either") {
  CHECK(accepted(ice(R"(,"sdpMid":"0","sdpMLineIndex":0)")).type == client_type::webrtc_ice);
  CHECK(accepted(ice(R"(,"sdpMid":"audio","sdpMLineIndex":3)")).session_id == "s-1");
  CHECK(accepted(ice(R"(,"sdpMid":null,"sdpMLineIndex":null)")).session_id == "s-1");
  CHECK(accepted(ice("")).session_id == "s-1");
}

TEST_CASE("fields the server does not know are ignored, at the top and in the payload") {
  auto msg = accepted(
    R"({"id":7,"type":"call.accept","payload":{"session_id":"s-9","extra":[1,{"a":null}]},"meta":{}})");
  CHECK(msg.type == client_type::call_accept);
  CHECK(msg.session_id == "s-9");
  accepted(frame("webrtc.offer", R"({"session_id":"s","sdp":"v=0","type":"offer"})"));
}

TEST_CASE("an id of exactly 256 bytes is accepted, 257 is refused as too long") {
  std::string at_limit(256, 'a');
  std::string over_limit(257, 'a');
  CHECK(accepted(frame("call.start", R"({"callee_id":")" + at_limit + "\"}")).callee_id
        == at_limit);
  CHECK(accepted(frame("call.end", R"({"session_id":")" + at_limit + "\"}")).session_id
        == at_limit);
  check_refused(frame("call.start", R"({"callee_id":")" + over_limit + "\"}"), "callee_id");
  check_refused(frame("call.start", R"({"callee_id":")" + over_limit + "\"}"), "too long");
  check_refused(frame("call.end", R"({"session_id":")" + over_limit + "\"}"), "session_id");
  check_refused(frame("webrtc.ice", R"({"session_id":")" + over_limit + R"(","candidate":"c"})"),
                "session_id");
}

TEST_CASE("an SDP is not bound by the id limit") {
  std::string sdp(10'000, 'x');
  accepted(frame("webrtc.answer", R"({"session_id":"s","sdp":")" + sdp + "\"}"));
}

TEST_CASE("frames beyond the parser's own buffers are read whole: a long SDP, many fields") {
  // The parse keeps its values in 16 KiB and its stacks in 4 KiB of its own
  // before it takes more from the heap; these go well past both.
  goring::protocol::frame_limits limits{1'000'000, 100};
  auto big =
    frame("webrtc.offer", R"({"session_id":"s-big","sdp":")" + std::string(300'000, 'v') + "\"}");
  auto parsed = goring::protocol::parse_client_frame(big, limits);
  REQUIRE(parsed.message);
  CHECK(parsed.message->session_id == "s-big");
  std::string fields;
  for (int i = 0; i < 3'000; ++i)
    fields += R"("f)" + std::to_string(i) + R"(":[)" + std::to_string(i) + "],";
  CHECK(accepted(frame("call.end", "{" + fields + R"("session_id":"s-many"})")).session_id
        == "s-many");
  check_refused(frame("call.end", "{" + fields + R"("f7":1,"session_id":"s"})"),
                "'f7' appears twice");
}

TEST_CASE("an SDP up to MAX_SDP_BYTES is accepted, one byte more is refused naming the limit") {
  goring::protocol::frame_limits limits{1000, 100};
  auto offer = [](std::size_t n) {
    return frame("webrtc.offer", R"({"session_id":"s","sdp":")" + std::string(n, 'v') + "\"}");
  };
  CHECK(parse_client_frame(offer(1000), limits).message.has_value());
  for (auto type : {"webrtc.offer", "webrtc.answer"}) {
    auto text = frame(type, R"({"session_id":"s","sdp":")" + std::string(1001, 'v') + "\"}");
    auto r = parse_client_frame(text, limits);
    CAPTURE(r.error_message);
    CHECK_FALSE(r.message.has_value());
    CHECK(r.error == signal_error::invalid_message);
    CHECK(r.error_message.find("'sdp' is 1001 bytes") != std::string::npos);
    CHECK(r.error_message.find("MAX_SDP_BYTES") != std::string::npos);
  }
  // The default limit takes a large real-world SDP.
  CHECK(parse_client_frame(offer(30'000)).message.has_value());
  check_refused(offer(40'000), "MAX_SDP_BYTES");
}

TEST_CASE("a candidate up to MAX_CANDIDATE_BYTES is accepted, one byte more is refused naming "
          "the limit") {
  goring::protocol::frame_limits limits{1000, 100};
  auto ice = [](std::size_t n) {
    return frame("webrtc.ice", R"({"session_id":"s","candidate":")" + std::string(n, 'c') + "\"}");
  };
  CHECK(parse_client_frame(ice(100), limits).message.has_value());
  auto r = parse_client_frame(ice(101), limits);
  CHECK_FALSE(r.message.has_value());
  CHECK(r.error == signal_error::invalid_message);
  CHECK(r.error_message.find("MAX_CANDIDATE_BYTES") != std::string::npos);
  // Missing or empty is still refused as before, whatever the limit.
  check_refused(frame("webrtc.ice", R"({"session_id":"s","candidate":""})"), "candidate");
  CHECK(parse_client_frame(ice(1024)).message.has_value());
  check_refused(ice(1025), "MAX_CANDIDATE_BYTES");
}

TEST_CASE("an escaped NUL inside an id is kept, not cut short") {
  auto msg = accepted(R"({"type":"call.start","payload":{"callee_id":"a\u0000b"}})");
  CHECK(msg.callee_id == "a\0b"s);
}

TEST_CASE("unicode ids, escaped or not, arrive as UTF-8") {
  CHECK(accepted(R"({"type":"call.start","payload":{"callee_id":"z\u00e9\ud83d\ude00"}})").callee_id
        == "zé😀");
  CHECK(accepted(R"({"type":"call.start","payload":{"callee_id":"zé😀"}})").callee_id == "zé😀");
}

// --- client frames that are refused ----------------------------------------

TEST_CASE("text that is not JSON, or is cut short, is refused") {
  for (std::string text : {"", "hello", "{", R"({"type":"call.start")",
                           R"({"type":"call.start","payload":{"callee_id":"bob"})",
                           R"({"type":"call.start","payload":{"callee_id":"bob"}}})",
                           R"({"type":"call.start","payload":{"callee_id":"bo)", "{'type':'x'}",
                           R"({"type":"call.start","payload":{"callee_id":"bob"}} trailing)"})
    check_refused(text, "JSON");
}

TEST_CASE("JSON that is not an object is refused") {
  for (std::string text :
       {"[]", R"(["call.start",{"callee_id":"bob"}])", R"("call.start")", "42", "null", "true"})
    check_refused(text, "object");
}

TEST_CASE("a frame without a string type is refused and the message names 'type'") {
  check_refused(R"({"payload":{"callee_id":"bob"}})", "'type' is missing");
  for (std::string type : {"42", "null", "{}", "[]", "true"})
    check_refused(R"({"type":)" + type + R"(,"payload":{"callee_id":"bob"}})",
                  "'type' must be a string");
}

TEST_CASE("an unknown type is refused and the message quotes it") {
  check_refused(frame("call.dial", R"({"callee_id":"bob"})"), "unknown message type 'call.dial'");
  check_refused(frame("", R"({"callee_id":"bob"})"), "unknown message type");
  check_refused(frame("CALL.START", R"({"callee_id":"bob"})"), "'CALL.START'");
  check_refused(frame("call.ringing", R"({"session_id":"s"})"), "'call.ringing'");
}

TEST_CASE("a very long unknown type is quoted cut short, and the cut keeps UTF-8 whole") {
  // 63 ASCII bytes, then a two-byte 'é' that straddles the 64-byte cut.
  std::string type = std::string(63, 'x') + "é" + std::string(100, 'y');
  auto r = parse_client_frame(frame(type, "{}"));
  REQUIRE_FALSE(r.message.has_value());
  CHECK(r.error_message.size() < 100);
  CHECK(r.error_message.find("...") != std::string::npos);
  // The message goes to the client in a text frame: it must be valid UTF-8.
  rapidjson::Document doc;
  auto encoded = goring::protocol::encode_error(r.error, r.error_message);
  doc.Parse<rapidjson::kParseValidateEncodingFlag>(encoded.data(), encoded.size());
  CAPTURE(r.error_message);
  CHECK_FALSE(doc.HasParseError());
}

TEST_CASE("a missing or non-object payload is refused and the message names 'payload'") {
  check_refused(R"({"type":"call.start"})", "'payload' is missing");
  for (std::string payload : {"null", "[]", R"("bob")", "1", "false"})
    check_refused(frame("call.start", payload), "'payload' must be an object");
}

TEST_CASE("every required field, missing, empty or of the wrong type, is refused by name") {
  for (auto& t : every_client_type()) {
    for (auto& [field, valid] : t.required) {
      CAPTURE(t.type);
      CAPTURE(field);
      (void)valid;
      check_refused(frame(t.type, payload_with(t, field, "")), "'" + field + "' is missing");
      check_refused(frame(t.type, payload_with(t, field, R"("")")),
                    "'" + field + "' must not be empty");
      for (std::string wrong : {"42", "null", "{}", R"({"id":"bob"})", "true", "[\"bob\"]"})
        check_refused(frame(t.type, payload_with(t, field, wrong)),
                      "'" + field + "' must be a string");
      // The message also says which frame it was about.
      check_refused(frame(t.type, payload_with(t, field, "")), t.type);
    }
  }
}

TEST_CASE("a call.start with a session_id but no callee_id is refused") {
  check_refused(frame("call.start", R"({"session_id":"s-1"})"), "callee_id");
}

TEST_CASE("sdpMid that is not a string or null is refused by name") {
  for (std::string mid : {"0", "true", "{}", "[]"})
    check_refused(ice(R"(,"sdpMid":)" + mid), "sdpMid");
}

TEST_CASE("sdpMLineIndex that is negative, fractional, a string or too big is refused by name") {
  for (std::string index : {"-1", "0.5", "1.0", R"("0")", "true", "{}", "1e3", "5000000000"})
    check_refused(ice(R"(,"sdpMLineIndex":)" + index), "sdpMLineIndex");
}

TEST_CASE("deep nesting is refused without exhausting the stack") {
  // RapidJSON's default parser recurses once per level; 100000 levels need
  // about 6 MB of stack, more than a worker thread can be counted on for.
  std::string brackets(100'000, '[');
  std::string objects;
  for (int i = 0; i < 20'000; ++i)
    objects += R"({"a":)";
  std::string closed = std::string(100'000, '[') + std::string(100'000, ']');
  CHECK(survives_on_small_stack([&] {
    if (parse_client_frame(brackets).error != signal_error::invalid_message)
      ::_exit(3);
  }));
  CHECK(survives_on_small_stack([&] {
    if (parse_client_frame(objects).error != signal_error::invalid_message)
      ::_exit(3);
  }));
  CHECK(survives_on_small_stack([&] {
    if (parse_client_frame(closed).error != signal_error::invalid_message)
      ::_exit(3);
  }));
  CHECK(survives_on_small_stack([&] {
    if (parse_server_event(brackets).has_value())
      ::_exit(3);
    if (goring::protocol::user_info_from_json(brackets, "fallback").user_id != "fallback")
      ::_exit(3);
  }));
  check_refused(brackets, "JSON");
}

TEST_CASE("deep nesting inside a valid payload does not change what is read") {
  std::string deep = std::string(1'000, '[') + std::string(1'000, ']');
  auto msg = accepted(frame("call.end", R"({"session_id":"s-1","junk":)" + deep + "}"));
  CHECK(msg.session_id == "s-1");
}

TEST_CASE("bytes that are not UTF-8 are refused") {
  // Beast already refuses such text frames; the codec does not rely on it.
  check_refused("{\"type\":\"call.start\",\"payload\":{\"callee_id\":\"a\xff\xfe\"}}", "JSON");
  check_refused("{\"type\":\"call.start\",\"payload\":{\"callee_id\":\"a\xc3\"}}", "JSON");
  check_refused("{\"type\":\"call.\xc0\xae\",\"payload\":{}}", "JSON");
  check_refused(
    "{\"type\":\"webrtc.offer\",\"payload\":{\"session_id\":\"s\",\"sdp\":\"\xed\xa0\x80\"}}",
    "JSON");
  check_refused(R"({"type":"call.start","payload":{"callee_id":"\ud800"}})", "JSON");
}

TEST_CASE("a raw NUL byte is refused, inside a string or after the object") {
  check_refused("{\"type\":\"call.start\",\"payload\":{\"callee_id\":\"a\0b\"}}"s, "JSON");
  // Relays go to the peer unchanged: what follows the NUL must not ride along.
  check_refused("{\"type\":\"call.end\",\"payload\":{\"session_id\":\"s\"}}\0garbage"s, "NUL");
  check_refused(
    "{\"type\":\"webrtc.offer\",\"payload\":{\"session_id\":\"s\",\"sdp\":\"x\"}}\0{\"type\":\"call.ended\"}"s,
    "NUL");
}

// A relay is forwarded as it came. A browser's JSON.parse keeps the last of
// two equal keys; RapidJSON's FindMember finds the first. So a peer in an
// accepted call could send a frame the server checks as webrtc.offer and the
// other side reads as a server frame (here call.ended).
TEST_CASE("a relay with a second 'type' key is refused") {
  check_refused(R"({"type":"webrtc.offer","payload":{"session_id":"s","sdp":"x"},)"
                R"("type":"call.ended","payload":{"session_id":"s","reason":"hangup"}})",
                "type");
}

TEST_CASE("a payload with a key twice is refused") {
  check_refused(R"({"type":"webrtc.offer","payload":{"session_id":"s","sdp":"x","sdp":"y"}})",
                "sdp");
}

// --- server frames -----------------------------------------------------------

TEST_CASE("call.ringing tells the caller the session and the callee") {
  auto doc = parsed(goring::protocol::encode_ringing("s-1", "bob"));
  const auto& payload = payload_of(doc, "call.ringing");
  CHECK(keys_of(payload) == std::set<std::string>{"session_id", "callee_id"});
  CHECK(string_at(payload, "session_id") == "s-1");
  CHECK(string_at(payload, "callee_id") == "bob");
}

TEST_CASE("call.ring tells the callee who calls, with name and username") {
  auto doc = parsed(goring::protocol::encode_ring("s-1", alice));
  const auto& payload = payload_of(doc, "call.ring");
  CHECK(keys_of(payload) == std::set<std::string>{"session_id", "caller_id", "caller_info"});
  CHECK(string_at(payload, "session_id") == "s-1");
  CHECK(string_at(payload, "caller_id") == "alice");
  const auto& info = payload["caller_info"];
  REQUIRE(info.IsObject());
  CHECK(keys_of(info) == std::set<std::string>{"user_id", "name", "username"});
  CHECK(string_at(info, "user_id") == "alice");
  CHECK(string_at(info, "name") == "Alice");
  CHECK(string_at(info, "username") == "alice.handle");
}

TEST_CASE("info objects leave out an empty name or username") {
  auto doc = parsed(goring::protocol::encode_ring("s-1", user_info{"carol", "", ""}));
  const auto& info = payload_of(doc, "call.ring")["caller_info"];
  CHECK(keys_of(info) == std::set<std::string>{"user_id"});

  auto named = parsed(goring::protocol::encode_accepted("s-1", user_info{"bob", "Bob", ""}));
  CHECK(keys_of(payload_of(named, "call.accepted")["callee_info"])
        == std::set<std::string>{"user_id", "name"});

  auto handle = parsed(goring::protocol::encode_ended("s-1", "hangup", user_info{"bob", "", "b"}));
  CHECK(keys_of(payload_of(handle, "call.ended")["peer_info"])
        == std::set<std::string>{"user_id", "username"});
}

TEST_CASE("call.accepted and call.rejected tell the caller who answered") {
  auto bob = user_info{"bob", "Bob", "bob.handle"};
  for (auto& [json, type] :
       {std::pair{goring::protocol::encode_accepted("s-2", bob), "call.accepted"},
        std::pair{goring::protocol::encode_rejected("s-2", bob), "call.rejected"}}) {
    CAPTURE(type);
    auto doc = parsed(json);
    const auto& payload = payload_of(doc, type);
    CHECK(keys_of(payload) == std::set<std::string>{"session_id", "callee_info"});
    CHECK(string_at(payload, "session_id") == "s-2");
    CHECK(string_at(payload["callee_info"], "user_id") == "bob");
    CHECK(string_at(payload["callee_info"], "name") == "Bob");
    CHECK(string_at(payload["callee_info"], "username") == "bob.handle");
  }
}

TEST_CASE("call.ended carries the reason and the peer") {
  auto doc = parsed(goring::protocol::encode_ended("s-3", "no_answer", alice));
  const auto& payload = payload_of(doc, "call.ended");
  CHECK(keys_of(payload) == std::set<std::string>{"session_id", "reason", "peer_info"});
  CHECK(string_at(payload, "session_id") == "s-3");
  CHECK(string_at(payload, "reason") == "no_answer");
  CHECK(string_at(payload["peer_info"], "user_id") == "alice");
}

TEST_CASE("an error frame carries the wire code and the message for every error") {
  for (auto code :
       {signal_error::none, signal_error::invalid_message, signal_error::unauthorized,
        signal_error::user_busy, signal_error::user_offline, signal_error::session_not_found,
        signal_error::invalid_state, signal_error::internal_error, signal_error::rate_limited}) {
    auto doc = parsed(goring::protocol::encode_error(code, "what went wrong"));
    const auto& payload = payload_of(doc, "error");
    CHECK(keys_of(payload) == std::set<std::string>{"code", "message"});
    CHECK(string_at(payload, "code") == goring::protocol::wire_code(code));
    CHECK(string_at(payload, "message") == "what went wrong");
  }
}

TEST_CASE("wire codes are the documented names, one per error") {
  using goring::protocol::wire_code;
  CHECK(wire_code(signal_error::none) == "none");
  CHECK(wire_code(signal_error::invalid_message) == "invalid_message");
  CHECK(wire_code(signal_error::unauthorized) == "unauthorized");
  CHECK(wire_code(signal_error::user_busy) == "user_busy");
  CHECK(wire_code(signal_error::user_offline) == "user_offline");
  CHECK(wire_code(signal_error::session_not_found) == "session_not_found");
  CHECK(wire_code(signal_error::invalid_state) == "invalid_state");
  CHECK(wire_code(signal_error::internal_error) == "internal_error");
  CHECK(wire_code(signal_error::rate_limited) == "rate_limited");
  CHECK(wire_code(static_cast<signal_error>(200)) == "internal_error");
}

TEST_CASE("quotes, backslashes, control characters and unicode are escaped and round-trip") {
  user_info odd{awkward, awkward, awkward};
  std::vector<std::string> frames = {
    goring::protocol::encode_ringing(awkward, awkward),
    goring::protocol::encode_ring(awkward, odd),
    goring::protocol::encode_accepted(awkward, odd),
    goring::protocol::encode_rejected(awkward, odd),
    goring::protocol::encode_ended(awkward, awkward, odd),
    goring::protocol::encode_error(signal_error::invalid_state, awkward),
    goring::protocol::to_json(odd),
  };
  for (auto& json : frames) {
    CAPTURE(json);
    // No raw control character may appear in JSON text.
    for (unsigned char c : json)
      CHECK(c >= 0x20);
    rapidjson::Document doc;
    doc.Parse<rapidjson::kParseValidateEncodingFlag>(json.data(), json.size());
    REQUIRE_FALSE(doc.HasParseError());
  }
  auto ring = parsed(frames[1]);
  const auto& payload = ring["payload"];
  CHECK(string_at(payload, "session_id") == awkward);
  CHECK(string_at(payload, "caller_id") == awkward);
  CHECK(string_at(payload["caller_info"], "name") == awkward);
  CHECK(string_at(parsed(frames[5])["payload"], "message") == awkward);
}

TEST_CASE("every control character is escaped wherever it falls in a long string") {
  // RapidJSON 1.1.0's SIMD scans (now off) let 0x1a-0x1f through unescaped
  // when they fell in a 16-byte aligned block: try each at every offset.
  for (int c = 0; c < 0x20; ++c) {
    for (std::size_t offset = 0; offset < 40; ++offset) {
      std::string id(48, 'a');
      id[offset] = static_cast<char>(c);
      auto json = goring::protocol::encode_ringing(id, id);
      bool raw_control = false;
      for (unsigned char byte : json)
        raw_control = raw_control || byte < 0x20;
      CAPTURE(c);
      CAPTURE(offset);
      REQUIRE_FALSE(raw_control);
      CHECK(string_at(parsed(json)["payload"], "session_id") == id);
    }
  }
}

TEST_CASE("ids that decode to lone surrogates are refused, and error texts stay valid UTF-8") {
  auto r = goring::protocol::parse_client_frame(
    R"({"type":"call.start","payload":{"callee_id":"bob\ude00"}})");
  CHECK_FALSE(r.message.has_value());
  CHECK(r.error == signal_error::invalid_message);
  CHECK(r.error_message.find("valid Unicode") != std::string::npos);

  auto unknown = goring::protocol::parse_client_frame(R"({"type":"x\ude00y","payload":{}})");
  REQUIRE(unknown.error == signal_error::invalid_message);
  auto frame = goring::protocol::encode_error(unknown.error, unknown.error_message);
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseValidateEncodingFlag>(frame.data(), frame.size());
  CHECK_FALSE(doc.HasParseError());
  CHECK(unknown.error_message.find("\xEF\xBF\xBD") != std::string::npos);
}

TEST_CASE("a client frame with a raw control character inside a string is refused") {
  for (int c : {0x01, 0x1a, 0x1e, 0x1f}) {
    for (std::size_t offset = 0; offset < 40; ++offset) {
      std::string candidate(48, 'c');
      candidate[offset] = static_cast<char>(c);
      auto frame =
        R"({"type":"webrtc.ice","payload":{"session_id":"s1","candidate":")" + candidate + R"("}})";
      auto r = goring::protocol::parse_client_frame(frame);
      CAPTURE(c);
      CAPTURE(offset);
      CHECK_FALSE(r.message.has_value());
      CHECK(r.error == signal_error::invalid_message);
    }
  }
}

TEST_CASE("an id with an embedded NUL is written whole") {
  auto doc = parsed(goring::protocol::encode_ringing("s\0x"s, "b\0b"s));
  CHECK(string_at(doc["payload"], "session_id") == "s\0x"s);
  CHECK(string_at(doc["payload"], "callee_id") == "b\0b"s);
}

// --- server events read back -------------------------------------------------

TEST_CASE("a ring read back gives the session, the caller and the caller's info") {
  auto ev = parse_server_event(goring::protocol::encode_ring("s-1", alice));
  REQUIRE(ev.has_value());
  CHECK(ev->type == event_type::ring);
  CHECK(ev->session_id == "s-1");
  CHECK(ev->caller_id == "alice");
  CHECK(ev->peer.user_id == "alice");
  CHECK(ev->peer.name == "Alice");
  CHECK(ev->peer.username == "alice.handle");
  CHECK(ev->reason.empty());
}

TEST_CASE("accepted and rejected read back give the callee's info") {
  user_info bob{"bob", "Bob", ""};
  auto acc = parse_server_event(goring::protocol::encode_accepted("s-2", bob));
  REQUIRE(acc.has_value());
  CHECK(acc->type == event_type::accepted);
  CHECK(acc->session_id == "s-2");
  CHECK(acc->peer.user_id == "bob");
  CHECK(acc->peer.name == "Bob");
  CHECK(acc->peer.username.empty());

  auto rej = parse_server_event(goring::protocol::encode_rejected("s-2", bob));
  REQUIRE(rej.has_value());
  CHECK(rej->type == event_type::rejected);
  CHECK(rej->session_id == "s-2");
  CHECK(rej->peer.user_id == "bob");
}

TEST_CASE("ended read back gives the reason and the peer, escaped text intact") {
  user_info odd{"u\"1", awkward, ""};
  auto ev = parse_server_event(goring::protocol::encode_ended("s-3", awkward, odd));
  REQUIRE(ev.has_value());
  CHECK(ev->type == event_type::ended);
  CHECK(ev->session_id == "s-3");
  CHECK(ev->reason == awkward);
  CHECK(ev->peer.user_id == "u\"1");
  CHECK(ev->peer.name == awkward);
}

TEST_CASE("frames that are not call events, or are garbage, read back as nothing") {
  CHECK_FALSE(parse_server_event(goring::protocol::encode_ringing("s-1", "bob")).has_value());
  CHECK_FALSE(parse_server_event(goring::protocol::encode_error(signal_error::user_busy, "busy"))
                .has_value());
  CHECK_FALSE(
    parse_server_event(frame("webrtc.offer", R"({"session_id":"s","sdp":"x"})")).has_value());
  for (std::string text :
       {"", "garbage", "{", "[]", "null", R"({"type":"call.ring"})",
        R"({"type":"call.ring","payload":[]})", R"({"payload":{"session_id":"s"}})",
        R"({"type":7,"payload":{"session_id":"s"}})",
        R"({"type":"call.ended","payload":{"reason":"hangup"}})",
        R"({"type":"call.ended","payload":{"session_id":""}})",
        R"({"type":"call.ended","payload":{"session_id":5}})"}) {
    CAPTURE(text);
    CHECK_FALSE(parse_server_event(text).has_value());
  }
}

TEST_CASE("an event with a malformed info object reads back with empty info") {
  auto ev = parse_server_event(
    R"({"type":"call.accepted","payload":{"session_id":"s","callee_info":"bob"}})");
  REQUIRE(ev.has_value());
  CHECK(ev->peer.user_id.empty());
  CHECK(ev->peer.name.empty());
}

// --- user info ---------------------------------------------------------------

TEST_CASE("user info round-trips through JSON") {
  auto back = goring::protocol::user_info_from_json(goring::protocol::to_json(alice), "other");
  CHECK(back.user_id == "alice");
  CHECK(back.name == "Alice");
  CHECK(back.username == "alice.handle");

  user_info odd{awkward, awkward + "!", ""};
  auto odd_back = goring::protocol::user_info_from_json(goring::protocol::to_json(odd), "other");
  CHECK(odd_back.user_id == odd.user_id);
  CHECK(odd_back.name == odd.name);
  CHECK(odd_back.username.empty());
}

TEST_CASE("user info JSON has exactly the set fields") {
  CHECK(goring::protocol::to_json(alice)
        == R"({"user_id":"alice","name":"Alice","username":"alice.handle"})");
  CHECK(goring::protocol::to_json(user_info{"bob", "", ""}) == R"({"user_id":"bob"})");
}

TEST_CASE("user info read from garbage falls back to the given id") {
  using goring::protocol::user_info_from_json;
  for (std::string text :
       {"", "garbage", "{", "[]", "null", "\"alice\"", "{}", R"({"user_id":7,"name":"Mallory"})",
        R"({"user_id":""})", R"({"name":"Alice"})"}) {
    CAPTURE(text);
    auto info = user_info_from_json(text, "fallback-id");
    CHECK(info.user_id == "fallback-id");
  }
  // A name without a user id is still read; only the id falls back.
  auto named = user_info_from_json(R"({"name":"Alice","username":5})", "alice");
  CHECK(named.user_id == "alice");
  CHECK(named.name == "Alice");
  CHECK(named.username.empty());
}

TEST_CASE("auth.refresh carries a token and nothing else is needed") {
  auto msg = accepted(frame("auth.refresh", R"({"token":"a.b.c"})"));
  CHECK(msg.type == client_type::auth_refresh);
  CHECK(msg.token == "a.b.c");
  CHECK(msg.session_id.empty());
  CHECK_FALSE(goring::protocol::is_relay(msg.type));
  check_refused(frame("auth.refresh", "{}"), "'token'");
  check_refused(frame("auth.refresh", R"({"token":""})"), "'token'");
  check_refused(frame("auth.refresh", R"({"token":42})"), "'token'");
  check_refused(frame("auth.refresh", R"({"token":")" + std::string(16 * 1024 + 1, 'a') + "\"}"),
                "too long");
  // The refusal never quotes the token it refused.
  auto refused = parse_client_frame(frame("auth.refresh", R"({"token":"a.b.c","token":"x"})"));
  CHECK(refused.error_message.find("a.b.c") == std::string::npos);
}

TEST_CASE("auth.refreshed tells the new expiry, or null for a token without exp") {
  auto doc = parsed(goring::protocol::encode_refreshed(1768732667));
  const auto& payload = payload_of(doc, "auth.refreshed");
  CHECK(keys_of(payload) == std::set<std::string>{"expires_at"});
  REQUIRE(payload["expires_at"].IsInt64());
  CHECK(payload["expires_at"].GetInt64() == 1768732667);
  auto none = parsed(goring::protocol::encode_refreshed(std::nullopt));
  CHECK(payload_of(none, "auth.refreshed")["expires_at"].IsNull());
}

TEST_CASE("a pub/sub payload is its tag byte, then the body unchanged") {
  using namespace goring::protocol;
  CHECK(tagged(signal_tag::relay, R"({"type":"webrtc.ice"})") == R"(R{"type":"webrtc.ice"})");
  CHECK(tagged(signal_tag::event, "") == "E");
  CHECK(tagged(signal_tag::replaced, "inst/run/7\0x"s) == "Xinst/run/7\0x"s);
}
