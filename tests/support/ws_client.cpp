#include "tests/support/ws_client.hpp"

#include <deque>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <doctest/doctest.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace goring::test {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
using clock_type = std::chrono::steady_clock;

// -- json ---------------------------------------------------------------------

json::json(const json& other) : valid_(other.valid_) {
  doc_.CopyFrom(other.doc_, doc_.GetAllocator());
}

json& json::operator=(const json& other) {
  if (this != &other) {
    valid_ = other.valid_;
    doc_.SetNull();
    doc_.CopyFrom(other.doc_, doc_.GetAllocator());
  }
  return *this;
}

json json::parse(std::string_view text) {
  json out;
  out.doc_.Parse(text.data(), text.size());
  out.valid_ = !out.doc_.HasParseError();
  if (!out.valid_)
    out.doc_.SetNull();
  return out;
}

json json::of(const rapidjson::Value& value) {
  json out;
  out.doc_.CopyFrom(value, out.doc_.GetAllocator());
  out.valid_ = true;
  return out;
}

bool json::has(const char* key) const {
  return is_object() && doc_.HasMember(key);
}

std::string json::str(const char* key) const {
  if (!has(key) || !doc_[key].IsString())
    return {};
  return std::string(doc_[key].GetString(), doc_[key].GetStringLength());
}

json json::at(const char* key) const {
  if (!has(key))
    return {};
  return of(doc_[key]);
}

std::string json::dump() const {
  if (!valid_)
    return "<no json>";
  rapidjson::StringBuffer out;
  rapidjson::Writer<rapidjson::StringBuffer> w(out);
  doc_.Accept(w);
  return std::string(out.GetString(), out.GetSize());
}

bool operator==(const json& a, const json& b) {
  if (!a.valid_ || !b.valid_)
    return a.valid_ == b.valid_;
  return a.doc_ == b.doc_;
}

std::ostream& operator<<(std::ostream& out, const json& value) {
  return out << value.dump();
}

std::string
json_fields(std::initializer_list<std::pair<std::string_view, std::string_view>> fields) {
  rapidjson::StringBuffer out;
  rapidjson::Writer<rapidjson::StringBuffer> w(out);
  w.StartObject();
  for (auto& [key, value] : fields) {
    w.Key(key.data(), static_cast<rapidjson::SizeType>(key.size()));
    w.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
  }
  w.EndObject();
  return std::string(out.GetString(), out.GetSize());
}

namespace {

/// Runs `ioc` until `done()` holds or `deadline` passes. Returns done().
template <class Done>
bool run_until(asio::io_context& ioc, Done done, clock_type::time_point deadline) {
  while (!done()) {
    auto now = clock_type::now();
    if (now >= deadline)
      return false;
    if (ioc.stopped())
      ioc.restart();
    if (ioc.run_one_for(deadline - now) == 0 && ioc.stopped() && !done())
      return false; // no work left: nothing will ever arrive
  }
  return true;
}

std::string describe(const ws_frame& f) {
  if (!f.text)
    return "a binary frame of " + std::to_string(f.data.size()) + " bytes";
  return "'" + f.data + "'";
}

std::string describe(const ws_close& c) {
  return "the close " + std::to_string(c.code) + " '" + c.reason + "'";
}

} // namespace

// -- http_get -----------------------------------------------------------------

http_response http_get(uint16_t port, const std::string& target,
                       std::chrono::milliseconds timeout) {
  asio::io_context ioc;
  tcp::socket socket(ioc);
  http::request<http::empty_body> req{http::verb::get, target, 11};
  req.set(http::field::host, "127.0.0.1:" + std::to_string(port));
  req.set(http::field::connection, "close");
  http::response<http::string_body> res;
  beast::flat_buffer buffer;
  bool done = false;
  error_code result;

  socket.async_connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port),
                       [&](error_code ec) {
                         if (ec) {
                           result = ec;
                           done = true;
                           return;
                         }
                         http::async_write(socket, req, [&](error_code ec, std::size_t) {
                           if (ec) {
                             result = ec;
                             done = true;
                             return;
                           }
                           http::async_read(socket, buffer, res, [&](error_code ec, std::size_t) {
                             result = ec;
                             done = true;
                           });
                         });
                       });
  run_until(
    ioc, [&] { return done; }, clock_type::now() + timeout);
  if (!done || result)
    return {};
  return {static_cast<int>(res.result_int()), res.body()};
}

// -- ws_client ----------------------------------------------------------------

struct ws_client::impl {
  asio::io_context ioc;
  websocket::stream<tcp::socket> ws{ioc};
  beast::flat_buffer buffer;
  bool open = false;
  bool reading = false;
  std::deque<ws_frame> inbox;
  /// Set when the read loop ended: the server closed or the TCP went away.
  std::optional<ws_close> closed;

  /// Keeps one read pending while the connection is open; frames queue up
  /// in `inbox` whenever the io_context runs.
  void start_read() {
    if (!open || reading || closed)
      return;
    reading = true;
    ws.async_read(buffer, [this](error_code ec, std::size_t) { on_read(ec); });
  }

  void on_read(error_code ec) {
    reading = false;
    if (ec) {
      open = false;
      auto reason = ws.reason();
      if (reason.code != websocket::close_code::none)
        closed = ws_close{static_cast<uint16_t>(reason.code), std::string(reason.reason.c_str())};
      else
        closed = ws_close{1006, ec.message()};
      return;
    }
    ws_frame f;
    f.text = ws.got_text();
    f.data = beast::buffers_to_string(buffer.data());
    buffer.consume(buffer.size());
    if (f.text) {
      auto doc = json::parse(f.data);
      if (doc.is_object() && doc.has("type")) {
        f.type = doc.str("type");
        f.payload = doc.at("payload");
      }
    }
    inbox.push_back(std::move(f));
    start_read();
  }

  /// Runs until `done()` or `timeout`, keeping the read loop going.
  template <class Done>
  bool run_for(Done done, std::chrono::milliseconds timeout) {
    start_read();
    return run_until(ioc, done, clock_type::now() + timeout);
  }

  /// Writes one message; returns the error (timed_out when it hung).
  error_code write(bool text, std::string data) {
    if (!open)
      return asio::error::not_connected;
    auto payload = std::make_shared<std::string>(std::move(data));
    auto result = std::make_shared<std::optional<error_code>>();
    ws.text(text);
    ws.async_write(asio::buffer(*payload),
                   [payload, result](error_code ec, std::size_t) { *result = ec; });
    if (!run_for([&] { return result->has_value(); }, frame_timeout))
      return asio::error::timed_out;
    return **result;
  }
};

ws_client::ws_client(std::string label)
  : label_(std::move(label)), impl_(std::make_unique<impl>()) {
  // nop
}

ws_client::~ws_client() = default;
ws_client::ws_client(ws_client&&) noexcept = default;
ws_client& ws_client::operator=(ws_client&&) noexcept = default;

int ws_client::try_connect_target(uint16_t port, const std::string& target,
                                  std::chrono::milliseconds timeout) {
  return try_connect_with(port, target, {}, timeout).status;
}

upgrade_answer ws_client::try_connect_with(uint16_t port, const std::string& target,
                                           const header_list& headers,
                                           std::chrono::milliseconds timeout) {
  impl_ = std::make_unique<impl>(); // a fresh connection each time
  auto& self = *impl_;
  auto deadline = clock_type::now() + timeout;

  auto connected = std::make_shared<std::optional<error_code>>();
  beast::get_lowest_layer(self.ws).async_connect(
    tcp::endpoint(asio::ip::make_address("127.0.0.1"), port),
    [connected](error_code ec) { *connected = ec; });
  if (!run_until(
        self.ioc, [&] { return connected->has_value(); }, deadline)
      || **connected)
    return {};

  auto res = std::make_shared<websocket::response_type>();
  auto shaken = std::make_shared<std::optional<error_code>>();
  self.ws.auto_fragment(false);
  if (!headers.empty())
    self.ws.set_option(websocket::stream_base::decorator([headers](websocket::request_type& req) {
      for (auto& [name, value] : headers)
        req.insert(name, value);
    }));
  self.ws.async_handshake(*res, "127.0.0.1:" + std::to_string(port), target,
                          [res, shaken](error_code ec) { *shaken = ec; });
  if (!run_until(
        self.ioc, [&] { return shaken->has_value(); }, deadline))
    return {};
  upgrade_answer answer;
  answer.subprotocol = std::string{(*res)[http::field::sec_websocket_protocol]};
  answer.body = res->body();
  if (!**shaken) {
    self.open = true;
    self.start_read();
    answer.status = 101;
    return answer;
  }
  answer.status = static_cast<int>(res->result_int());
  return answer;
}

int ws_client::try_connect(uint16_t port, const std::string& token,
                           std::chrono::milliseconds timeout) {
  return try_connect_target(port, "/ws?token=" + token, timeout);
}

void ws_client::connect(uint16_t port, const std::string& token) {
  auto status = try_connect(port, token);
  INFO(label_, " connecting to port ", port);
  REQUIRE(status == 101);
}

bool ws_client::is_open() const {
  return impl_->open;
}

void ws_client::send_text(const std::string& text) {
  auto ec = impl_->write(true, text);
  CHECK_MESSAGE(!ec, label_, " could not send '", text, "': ", ec.message());
}

void ws_client::send_binary(const std::string& bytes) {
  auto ec = impl_->write(false, bytes);
  CHECK_MESSAGE(!ec, label_, " could not send a binary frame: ", ec.message());
}

void ws_client::send(const std::string& type, const std::string& payload_json) {
  send_text(R"({"type":")" + type + R"(","payload":)" + payload_json + "}");
}

void ws_client::start_call(const std::string& callee_id) {
  send("call.start", json_fields({{"callee_id", callee_id}}));
}

void ws_client::accept(const std::string& session_id) {
  send("call.accept", json_fields({{"session_id", session_id}}));
}

void ws_client::reject(const std::string& session_id) {
  send("call.reject", json_fields({{"session_id", session_id}}));
}

void ws_client::end_call(const std::string& session_id) {
  send("call.end", json_fields({{"session_id", session_id}}));
}

std::optional<ws_frame> ws_client::next(std::chrono::milliseconds timeout) {
  auto& self = *impl_;
  self.run_for([&] { return !self.inbox.empty() || self.closed.has_value(); }, timeout);
  if (self.inbox.empty())
    return std::nullopt;
  auto f = std::move(self.inbox.front());
  self.inbox.pop_front();
  return f;
}

json ws_client::expect(const std::string& type, std::chrono::milliseconds timeout) {
  auto f = next(timeout);
  if (!f) {
    if (impl_->closed)
      FAIL(label_, " expected ", type, " but got ", describe(*impl_->closed));
    FAIL(label_, " expected ", type, " but got nothing in ", timeout.count(), " ms");
  }
  if (f->type != type)
    FAIL(label_, " expected ", type, " but got ", describe(*f));
  if (!f->payload.is_object())
    FAIL(label_, " got ", type, " without a payload object: ", describe(*f));
  return std::move(f->payload);
}

json ws_client::expect_error(const std::string& code, std::chrono::milliseconds timeout) {
  auto payload = expect("error", timeout);
  INFO(label_, " got error ", payload);
  CHECK(payload.str("code") == code);
  CHECK(!payload.str("message").empty());
  return payload;
}

void ws_client::expect_nothing(std::chrono::milliseconds duration) {
  auto& self = *impl_;
  auto deadline = clock_type::now() + duration;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now());
    if (left <= 0ms)
      return;
    auto f = next(left);
    if (f) {
      FAIL_CHECK(label_, " expected nothing but got ", describe(*f));
    } else if (self.closed) {
      FAIL_CHECK(label_, " expected nothing but got ", describe(*self.closed));
      return;
    }
  }
}

std::optional<ws_close> ws_client::expect_close(std::chrono::milliseconds timeout) {
  auto& self = *impl_;
  self.run_for([&] { return self.closed.has_value(); }, timeout);
  self.inbox.clear(); // frames before the close are not what this waits for
  return self.closed;
}

void ws_client::close() {
  auto& self = *impl_;
  if (!self.open || self.closed)
    return;
  self.ws.async_close(websocket::close_code::normal, [](error_code) {
    // nop: the read loop below sees how the handshake ends
  });
  // The close handshake ends when the read loop sees the server's close.
  if (!self.run_for([&] { return self.closed.has_value(); }, frame_timeout))
    drop();
}

void ws_client::drop() {
  auto& self = *impl_;
  error_code ignored;
  beast::get_lowest_layer(self.ws).shutdown(tcp::socket::shutdown_both, ignored);
  beast::get_lowest_layer(self.ws).close(ignored);
  self.open = false;
  if (!self.closed)
    self.closed = ws_close{1006, "dropped by the client"};
}

bool ws_client::open_tcp(uint16_t port, std::chrono::milliseconds timeout) {
  impl_ = std::make_unique<impl>(); // a fresh connection each time
  auto& self = *impl_;
  auto connected = std::make_shared<std::optional<error_code>>();
  beast::get_lowest_layer(self.ws).async_connect(
    tcp::endpoint(asio::ip::make_address("127.0.0.1"), port),
    [connected](error_code ec) { *connected = ec; });
  return run_until(
           self.ioc, [&] { return connected->has_value(); }, clock_type::now() + timeout)
         && !**connected;
}

int ws_client::try_upgrade(const std::string& target, std::chrono::milliseconds timeout) {
  auto& self = *impl_;
  error_code ec;
  auto port = beast::get_lowest_layer(self.ws).remote_endpoint(ec).port();
  if (ec)
    return 0;
  auto res = std::make_shared<websocket::response_type>();
  auto shaken = std::make_shared<std::optional<error_code>>();
  self.ws.auto_fragment(false);
  self.ws.async_handshake(*res, "127.0.0.1:" + std::to_string(port), target,
                          [res, shaken](error_code ec) { *shaken = ec; });
  if (!run_until(
        self.ioc, [&] { return shaken->has_value(); }, clock_type::now() + timeout))
    return 0;
  if (!**shaken) {
    self.open = true;
    self.start_read();
    return 101;
  }
  return static_cast<int>(res->result_int());
}

// -- call steps ---------------------------------------------------------------

std::string place_call(ws_client& caller, ws_client& callee) {
  caller.start_call(callee.label());
  auto ringing = caller.expect("call.ringing");
  auto session_id = ringing.str("session_id");
  INFO("call.ringing ", ringing);
  REQUIRE(!session_id.empty());
  CHECK(ringing.str("callee_id") == callee.label());
  auto ring = callee.expect("call.ring");
  INFO("call.ring ", ring);
  CHECK(ring.str("session_id") == session_id);
  CHECK(ring.str("caller_id") == caller.label());
  return session_id;
}

std::string connect_call(ws_client& caller, ws_client& callee) {
  auto session_id = place_call(caller, callee);
  callee.accept(session_id);
  auto accepted = caller.expect("call.accepted");
  INFO("call.accepted ", accepted);
  CHECK(accepted.str("session_id") == session_id);
  CHECK(accepted.at("callee_info").str("user_id") == callee.label());
  return session_id;
}

json expect_ended(ws_client& client, const std::string& session_id, const std::string& reason,
                  const std::string& peer_id, std::chrono::milliseconds timeout) {
  auto ended = client.expect("call.ended", timeout);
  INFO(client.label(), " got call.ended ", ended);
  CHECK(ended.str("session_id") == session_id);
  CHECK(ended.str("reason") == reason);
  CHECK(ended.at("peer_info").str("user_id") == peer_id);
  return ended;
}

json expect_resumed(ws_client& client, const std::string& session_id, const std::string& peer_id,
                    const std::string& state, const std::string& role) {
  auto resumed = client.expect("call.resumed");
  INFO(client.label(), " got call.resumed ", resumed);
  CHECK(resumed.str("session_id") == session_id);
  CHECK(resumed.str("peer_id") == peer_id);
  CHECK(resumed.str("state") == state);
  CHECK(resumed.str("role") == role);
  return resumed;
}

json check_relay(ws_client& from, ws_client& to, const std::string& session_id) {
  static int sent = 0;
  ++sent;
  auto ice = R"({"session_id":")" + session_id + R"(","candidate":"candidate:)"
             + std::to_string(sent) + R"( 1 UDP 2122252543 192.0.2.)" + std::to_string(sent % 250)
             + R"( 40)" + std::to_string(100 + sent % 900) + R"( typ host \u00e9",)"
             + R"("sdpMid":"0","sdpMLineIndex":)" + std::to_string(sent % 3) + "}";
  INFO(from.label(), " relays ", ice, " to ", to.label());
  from.send("webrtc.ice", ice);
  auto sent_payload = json::parse(ice);
  CHECK(to.expect("webrtc.ice") == sent_payload);
  return sent_payload;
}

} // namespace goring::test
