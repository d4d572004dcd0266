/// A plain TCP client for what ws_client cannot do: a request that stops
/// halfway, a huge header, any header at all, WebSocket frames written by
/// hand and sent all at once. Every wait is bounded.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace goring::test {

class raw_client {
public:
  raw_client();
  ~raw_client();
  raw_client(raw_client&&) noexcept;
  raw_client& operator=(raw_client&&) noexcept;

  /// Connects to 127.0.0.1:`port`; false when it could not.
  bool connect(uint16_t port, std::chrono::milliseconds timeout = std::chrono::seconds(3));
  /// Writes all of `bytes`; false when the connection failed.
  bool send(const std::string& bytes, std::chrono::milliseconds timeout = std::chrono::seconds(3));
  /// Reads until `received()` holds a whole HTTP response header, the
  /// server closes, or `timeout` passes; returns the status (0 without).
  int read_status(std::chrono::milliseconds timeout = std::chrono::seconds(3));
  /// Reads until the server closes the connection (EOF or reset) or
  /// `timeout` passes; returns whether it closed.
  bool wait_closed(std::chrono::milliseconds timeout);
  /// Whether the server has closed the connection, as seen so far.
  bool closed() const;
  /// Everything received so far.
  const std::string& received() const;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// The text of a WebSocket upgrade request for `target`, with `headers`
/// ("Name: value\r\n" lines) added; the request is complete.
std::string upgrade_request(uint16_t port, const std::string& target,
                            const std::string& headers = {});

/// A client text frame carrying `payload` (masked, as RFC 6455 wants).
std::string client_text_frame(const std::string& payload);

/// A frame from the server (unmasked), read back from raw bytes.
struct server_frame {
  uint8_t opcode = 0; // 1 text, 8 close
  std::string payload;
  /// For a close frame: its code and reason.
  uint16_t close_code() const;
  std::string close_reason() const;
};

/// The WebSocket frames in `bytes` after the HTTP response header; a frame
/// cut short at the end is left out.
std::vector<server_frame> server_frames(const std::string& bytes);

} // namespace goring::test
