/// A WebSocket test client for goring: connects with a token, sends frames,
/// and reads what the server sends with every wait bounded by a timeout.
#pragma once

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <rapidjson/document.h>

namespace goring::test {

using namespace std::chrono_literals;

/// How long a test waits for one expected frame.
inline constexpr std::chrono::milliseconds frame_timeout = 3s;

/// A parsed JSON value that owns its memory; copies are deep.
class json {
public:
  json() = default;
  json(const json& other);
  json& operator=(const json& other);
  json(json&&) noexcept = default;
  json& operator=(json&&) noexcept = default;

  /// Parses `text`; the result is not valid() when it is not JSON.
  static json parse(std::string_view text);
  /// A copy of `value`.
  static json of(const rapidjson::Value& value);

  bool valid() const {
    return valid_;
  }
  bool is_object() const {
    return valid_ && doc_.IsObject();
  }
  /// Whether the object has the member `key`.
  bool has(const char* key) const;
  /// The string member `key`, or "" when it is missing or not a string.
  std::string str(const char* key) const;
  /// A copy of the member `key`, not valid() when missing.
  json at(const char* key) const;
  /// The value as compact JSON text.
  std::string dump() const;
  const rapidjson::Value& value() const {
    return doc_;
  }

  /// Deep equality; object members compare regardless of order.
  friend bool operator==(const json& a, const json& b);
  friend bool operator!=(const json& a, const json& b) {
    return !(a == b);
  }

private:
  bool valid_ = false;
  rapidjson::Document doc_;
};

std::ostream& operator<<(std::ostream& out, const json& value);

/// JSON text of an object whose members are all strings.
std::string
json_fields(std::initializer_list<std::pair<std::string_view, std::string_view>> fields);

/// One frame from the server. For a text frame holding an envelope, `type`
/// and `payload` are filled in.
struct ws_frame {
  bool text = true;
  std::string data;
  std::string type;
  json payload;
};

/// How the server closed a connection. 1006 means no close frame came.
struct ws_close {
  uint16_t code = 0;
  std::string reason;
};

/// The answer to a plain HTTP request; status 0 when there was none.
struct http_response {
  int status = 0;
  std::string body;
};

/// What the server answered an upgrade request.
struct upgrade_answer {
  /// 101 when the WebSocket is open, the HTTP status of a refusal, 0 when
  /// nothing came.
  int status = 0;
  /// The Sec-WebSocket-Protocol the answer selected ("" when none).
  std::string subprotocol;
  /// The body of a refusal.
  std::string body;
};

/// Extra request headers, e.g. {"Authorization", "Bearer ..."}.
using header_list = std::vector<std::pair<std::string, std::string>>;

/// GET http://127.0.0.1:PORT{target}, bounded by `timeout`.
http_response http_get(uint16_t port, const std::string& target,
                       std::chrono::milliseconds timeout = frame_timeout);

/// A WebSocket client on 127.0.0.1. Its `label` (a user name, usually) names
/// it in failure messages. Every read runs the client's own io_context for at
/// most the given timeout.
class ws_client {
public:
  explicit ws_client(std::string label = "client");
  ~ws_client();
  ws_client(ws_client&&) noexcept;
  ws_client& operator=(ws_client&&) noexcept;

  const std::string& label() const {
    return label_;
  }

  /// Tries the upgrade GET `target` (e.g. "/ws?token=..."). Returns 101 when
  /// the WebSocket is open, the HTTP status when the server refused it, or 0
  /// when it did not answer within `timeout`.
  int try_connect_target(uint16_t port, const std::string& target,
                         std::chrono::milliseconds timeout = frame_timeout);
  /// try_connect_target with extra request headers; says what came back.
  upgrade_answer try_connect_with(uint16_t port, const std::string& target,
                                  const header_list& headers,
                                  std::chrono::milliseconds timeout = frame_timeout);
  /// try_connect_target with "/ws?token=TOKEN".
  int try_connect(uint16_t port, const std::string& token,
                  std::chrono::milliseconds timeout = frame_timeout);
  /// Opens ws://127.0.0.1:PORT/ws?token=TOKEN; the test stops (REQUIRE) when
  /// the upgrade fails.
  void connect(uint16_t port, const std::string& token);
  /// Whether the WebSocket is open as far as this client has seen.
  bool is_open() const;

  void send_text(const std::string& text);
  void send_binary(const std::string& bytes);
  /// Sends {"type": TYPE, "payload": PAYLOAD_JSON}; the payload text is sent
  /// as given, so a test can send malformed payloads too.
  void send(const std::string& type, const std::string& payload_json);

  /// Shorthands for the client-to-server call messages.
  void start_call(const std::string& callee_id);
  void accept(const std::string& session_id);
  void reject(const std::string& session_id);
  void end_call(const std::string& session_id);

  /// The next frame, or nothing when none comes within `timeout` or the
  /// connection is closed.
  std::optional<ws_frame> next(std::chrono::milliseconds timeout = frame_timeout);
  /// Reads the next frame; unless it is an envelope of `type`, the test stops
  /// with the frame's text (or the close) in the message. Returns the payload.
  json expect(const std::string& type, std::chrono::milliseconds timeout = frame_timeout);
  /// expect("error") and checks its `code` and that `message` says something.
  json expect_error(const std::string& code, std::chrono::milliseconds timeout = frame_timeout);
  /// Fails the check for every frame that arrives within `duration`.
  void expect_nothing(std::chrono::milliseconds duration = 300ms);
  /// Waits for the server to close the connection, skipping frames before the
  /// close. Nothing when it is still open after `timeout`.
  std::optional<ws_close> expect_close(std::chrono::milliseconds timeout = frame_timeout);

  /// Closes with 1000 and waits (bounded) for the server's close frame.
  void close();
  /// Drops the TCP connection without a close frame.
  void drop();

  /// Opens only the TCP connection to 127.0.0.1:PORT. A later try_upgrade
  /// sends its upgrade request over it: a connection the server accepted
  /// before, say, it began to drain. Returns whether it connected.
  bool open_tcp(uint16_t port, std::chrono::milliseconds timeout = frame_timeout);
  /// Sends the upgrade GET `target` over the connection open_tcp opened;
  /// answers as try_connect_target does.
  int try_upgrade(const std::string& target, std::chrono::milliseconds timeout = frame_timeout);

private:
  struct impl;

  std::string label_;
  std::unique_ptr<impl> impl_;
};

// -- Call steps many scenarios share. A client's label is its user id. --------

/// `caller` calls `callee`: the caller gets call.ringing and the callee
/// call.ring, both for one session. Returns its id (the test stops without).
std::string place_call(ws_client& caller, ws_client& callee);

/// place_call, then the callee accepts and the caller gets call.accepted.
std::string connect_call(ws_client& caller, ws_client& callee);

/// `client` gets call.ended for `session_id` with `reason`, and peer_info
/// names `peer_id`, within `timeout`. Returns the payload.
json expect_ended(ws_client& client, const std::string& session_id, const std::string& reason,
                  const std::string& peer_id, std::chrono::milliseconds timeout = frame_timeout);

/// `client` gets call.resumed for `session_id` with `peer_id`, `state`
/// ("ringing", "accepted") and `role` ("caller", "callee"). Returns the
/// payload.
json expect_resumed(ws_client& client, const std::string& session_id, const std::string& peer_id,
                    const std::string& state, const std::string& role);

/// `from` sends a webrtc.ice for `session_id` with a candidate never sent
/// before, and `to` gets it unchanged. Returns the payload sent.
json check_relay(ws_client& from, ws_client& to, const std::string& session_id);

} // namespace goring::test
