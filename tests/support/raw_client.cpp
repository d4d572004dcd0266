#include "tests/support/raw_client.hpp"

#include <optional>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>

namespace goring::test {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
using clock_type = std::chrono::steady_clock;

struct raw_client::impl {
  asio::io_context ioc;
  tcp::socket socket{ioc};
  std::string received;
  bool closed = false;
  bool reading = false;
  char chunk[4096];

  /// Runs until `done()` or the deadline; keeps one read pending.
  template <class Done>
  bool run_until(Done done, clock_type::time_point deadline) {
    while (!done()) {
      start_read();
      auto now = clock_type::now();
      if (now >= deadline)
        return false;
      if (ioc.stopped())
        ioc.restart();
      if (ioc.run_one_for(deadline - now) == 0 && ioc.stopped() && !done())
        return false;
    }
    return true;
  }

  void start_read() {
    if (reading || closed || !socket.is_open())
      return;
    reading = true;
    socket.async_read_some(asio::buffer(chunk), [this](error_code ec, std::size_t n) {
      reading = false;
      if (ec) {
        closed = true;
        return;
      }
      received.append(chunk, n);
    });
  }
};

raw_client::raw_client() : impl_(std::make_unique<impl>()) {
  // nop
}

raw_client::~raw_client() = default;
raw_client::raw_client(raw_client&&) noexcept = default;
raw_client& raw_client::operator=(raw_client&&) noexcept = default;

bool raw_client::connect(uint16_t port, std::chrono::milliseconds timeout) {
  auto& self = *impl_;
  std::optional<error_code> result;
  self.socket.async_connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port),
                            [&](error_code ec) { result = ec; });
  auto deadline = clock_type::now() + timeout;
  while (!result) {
    auto now = clock_type::now();
    if (now >= deadline || self.ioc.run_one_for(deadline - now) == 0)
      break;
  }
  return result && !*result;
}

bool raw_client::send(const std::string& bytes, std::chrono::milliseconds timeout) {
  auto& self = *impl_;
  auto data = std::make_shared<std::string>(bytes);
  auto result = std::make_shared<std::optional<error_code>>();
  asio::async_write(self.socket, asio::buffer(*data),
                    [data, result](error_code ec, std::size_t) { *result = ec; });
  self.run_until([&] { return result->has_value(); }, clock_type::now() + timeout);
  return result->has_value() && !**result;
}

int raw_client::read_status(std::chrono::milliseconds timeout) {
  auto& self = *impl_;
  self.run_until([&] { return self.closed || self.received.find("\r\n\r\n") != std::string::npos; },
                 clock_type::now() + timeout);
  // "HTTP/1.1 101 Switching Protocols"
  if (self.received.rfind("HTTP/1.", 0) != 0 || self.received.size() < 12)
    return 0;
  return std::atoi(self.received.substr(9, 3).c_str());
}

bool raw_client::wait_closed(std::chrono::milliseconds timeout) {
  auto& self = *impl_;
  return self.run_until([&] { return self.closed; }, clock_type::now() + timeout);
}

bool raw_client::closed() const {
  return impl_->closed;
}

const std::string& raw_client::received() const {
  return impl_->received;
}

std::string upgrade_request(uint16_t port, const std::string& target, const std::string& headers) {
  return "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port)
         + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
         + headers + "\r\n";
}

std::string client_text_frame(const std::string& payload) {
  std::string out;
  out.push_back(static_cast<char>(0x81)); // FIN, text
  auto n = payload.size();
  if (n < 126) {
    out.push_back(static_cast<char>(0x80 | n));
  } else if (n < 65536) {
    out.push_back(static_cast<char>(0x80 | 126));
    out.push_back(static_cast<char>(n >> 8));
    out.push_back(static_cast<char>(n & 0xff));
  } else {
    out.push_back(static_cast<char>(0x80 | 127));
    for (int shift = 56; shift >= 0; shift -= 8)
      out.push_back(static_cast<char>((static_cast<uint64_t>(n) >> shift) & 0xff));
  }
  const unsigned char mask[4] = {0x12, 0x34, 0x56, 0x78};
  for (auto m : mask)
    out.push_back(static_cast<char>(m));
  for (std::size_t i = 0; i < n; ++i)
    out.push_back(static_cast<char>(payload[i] ^ mask[i % 4]));
  return out;
}

uint16_t server_frame::close_code() const {
  if (opcode != 8 || payload.size() < 2)
    return 0;
  return static_cast<uint16_t>((static_cast<unsigned char>(payload[0]) << 8)
                               | static_cast<unsigned char>(payload[1]));
}

std::string server_frame::close_reason() const {
  return opcode == 8 && payload.size() > 2 ? payload.substr(2) : std::string{};
}

std::vector<server_frame> server_frames(const std::string& bytes) {
  std::vector<server_frame> out;
  auto at = bytes.find("\r\n\r\n");
  if (at == std::string::npos)
    return out;
  at += 4;
  auto byte = [&](std::size_t i) { return static_cast<unsigned char>(bytes[i]); };
  while (at + 2 <= bytes.size()) {
    server_frame f;
    f.opcode = byte(at) & 0x0f;
    uint64_t n = byte(at + 1) & 0x7f;
    std::size_t head = 2;
    if (n == 126) {
      if (at + 4 > bytes.size())
        break;
      n = (uint64_t{byte(at + 2)} << 8) | byte(at + 3);
      head = 4;
    } else if (n == 127) {
      if (at + 10 > bytes.size())
        break;
      n = 0;
      for (int i = 0; i < 8; ++i)
        n = (n << 8) | byte(at + 2 + i);
      head = 10;
    }
    if (at + head + n > bytes.size())
      break;
    f.payload = bytes.substr(at + head, n);
    out.push_back(std::move(f));
    at += head + n;
  }
  return out;
}

} // namespace goring::test
